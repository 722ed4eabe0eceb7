#!/usr/bin/env python3
"""Resident memory of one MCP stdio server through a series of calls (run on demand, never as a test).

Usage: memory_series.py SERVER_COMMAND [VAR=VALUE ...]

Spawns the server with a fresh state directory, sends initialize, 50 tools/list and 50 codex_health_summary, then
300 codex_submit_task (start_chat, 20 projects, unique prompts) and 1 000 codex_get_operation_status, and prints
VmRSS / RssAnon / RssFile from /proc/PID/status (and Pss / private pages from smaps_rollup) after each part and after 6 and 12 s idle. Works for this server and for
the seed, which take the same environment variables.
"""
import json, os, random, subprocess, sys, time

from isolated_server import isolated_env
from proc_memory import resident_kib
binary = sys.argv[1]; extra = sys.argv[2:]
# Trailing KEY=VALUE arguments add to or override the server's environment.
root, env = isolated_env("memseries", "client", **{"CODEX_BINARY": "/nonexistent/codex",
                                               **dict(kv.split("=", 1) for kv in extra)})
p = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
n = 0
def call(method, params):
    global n; n += 1
    p.stdin.write(json.dumps({"jsonrpc":"2.0","id":n,"method":method,"params":params})+"\n"); p.stdin.flush()
    while True:
        r = json.loads(p.stdout.readline())
        if r.get("id") == n: return r
def status():
    return resident_kib(p.pid, rollup=True)
call("initialize", {"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1"}})
p.stdin.write(json.dumps({"jsonrpc":"2.0","method":"notifications/initialized"})+"\n"); p.stdin.flush()
for i in range(50): call("tools/list", {})
for i in range(50): call("tools/call", {"name":"codex_health_summary","arguments":{}})
time.sleep(0.3); print("after surface series (KiB)", status())
projects = []
for i in range(20):
    d = f"{root}/projects/p{i:02}"; os.makedirs(d); projects.append(d)
rng = random.Random(7)
def msg(i):
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    toks = ["".join(rng.choice(alphabet) for _ in range(rng.randint(4,9))) for _ in range(12)]
    return f"task {i}: " + " ".join(toks)
ids = []
for i in range(300):
    r = call("tools/call", {"name":"codex_submit_task","arguments":{"operation_type":"start_chat","message":msg(i),"project_id":projects[i%20]}})
    sc = r.get("result",{}).get("structuredContent") or json.loads(r["result"]["content"][0]["text"])
    oid = sc.get("operationId") or sc.get("operation_id")
    if oid: ids.append(oid)
for i in range(1000):
    call("tools/call", {"name":"codex_get_operation_status","arguments":{"operation_id":ids[i%len(ids)]}})
print(f"submitted {len(ids)}")
time.sleep(0.3); print("after 300 submits + 1000 polls (KiB)", status())
time.sleep(6); print("after 6 s idle (KiB)", status())
time.sleep(6); print("after 12 s idle (KiB)", status())
p.stdin.close(); p.wait(timeout=10)
