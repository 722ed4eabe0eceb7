#!/usr/bin/env python3
"""Memory of a fleet of MCP stdio servers on one database, as N agents' clients run them (on demand, never a test).

Usage: memory_fleet.py N SERVER_COMMAND [VAR=VALUE ...]

Starts N server processes on one fresh state directory (one database), each its own stdio session, and drives
every one through the surface series of memory_series.py (initialize, 50 tools/list, 50 codex_health_summary),
then 30 codex_submit_task and 100 codex_get_operation_status each. Prints, per process and summed: VmRSS and
its anonymous / file-backed split from /proc/PID/status, and from /proc/PID/smaps_rollup the proportional set
size (Pss: a page shared by k processes counts 1/k in each) and the private (unshared) pages. RSS counts the
binary's code once per process; Pss is what one more process really costs the machine. Works for this server
and for the seed, which take the same environment variables.
"""
import json, os, random, subprocess, sys, time

from isolated_server import isolated_env
from proc_memory import resident_kib

count = int(sys.argv[1]); binary = sys.argv[2]; extra = sys.argv[3:]
# Trailing KEY=VALUE arguments add to or override the server's environment.
root, env = isolated_env("memfleet", "client", **{"CODEX_BINARY": "/nonexistent/codex",
                                               **dict(kv.split("=", 1) for kv in extra)})


class Session:
    def __init__(self, index):
        self.index = index
        self.p = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
                                  bufsize=1)
        self.n = 0
        self.ids = []

    def call(self, method, params):
        self.n += 1
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params}) + "\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit(f"session {self.index}: server closed stdout")
            r = json.loads(line)
            if r.get("id") == self.n:
                return r

    def memory(self):
        return resident_kib(self.p.pid, rollup=True)


def mb(kib):
    return f"{kib / 1024:.1f}"


def report(label, sessions):
    rows = [s.memory() for s in sessions]
    total = {k: sum(r[k] for r in rows) for k in rows[0]}
    per = {k: total[k] / len(rows) for k in total}
    private = per["Private_Clean"] + per["Private_Dirty"]
    print(f"{label}: per process VmRSS {mb(per['VmRSS'])} MB (anon {mb(per['RssAnon'])} + file {mb(per['RssFile'])}),"
          f" Pss {mb(per['Pss'])} MB (anon {mb(per['Pss_Anon'])} + file {mb(per['Pss_File'])}),"
          f" private {mb(private)} MB; all {len(rows)}: VmRSS {mb(total['VmRSS'])} MB, Pss {mb(total['Pss'])} MB")


rng = random.Random(7)
alphabet = "abcdefghijklmnopqrstuvwxyz"


def message(i, j):
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(4, 9))) for _ in range(12)]
    return f"task {i}.{j}: " + " ".join(words)


# Projects exist before the servers start: the seed scans the projects root once, at start-up.
for i in range(count):
    os.makedirs(f"{root}/projects/p{i:02}")
sessions = [Session(i) for i in range(count)]
try:
    for s in sessions:
        s.call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "fleet", "version": "1"}})
        s.p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        s.p.stdin.flush()
    for s in sessions:
        for _ in range(50):
            s.call("tools/list", {})
        for _ in range(50):
            s.call("tools/call", {"name": "codex_health_summary", "arguments": {}})
    time.sleep(0.3)
    report("after surface series", sessions)
    for s in sessions:
        project = f"{root}/projects/p{s.index:02}"
        for j in range(30):
            r = s.call("tools/call", {"name": "codex_submit_task", "arguments": {
                "operation_type": "start_chat", "message": message(s.index, j), "project_id": project}})
            sc = r.get("result", {}).get("structuredContent") or json.loads(r["result"]["content"][0]["text"])
            oid = sc.get("operationId") or sc.get("operation_id")
            if oid:
                s.ids.append(oid)
            elif not s.ids and j == 29:
                raise SystemExit(f"session {s.index}: no submit succeeded; last reply: {json.dumps(r)[:600]}")
        for j in range(100):
            s.call("tools/call", {"name": "codex_get_operation_status",
                                  "arguments": {"operation_id": s.ids[j % len(s.ids)]}})
    time.sleep(0.3)
    report(f"after {30 * count} submits + {100 * count} polls", sessions)
    time.sleep(6)
    report("after 6 s idle", sessions)
finally:
    for s in sessions:
        s.p.stdin.close()
    for s in sessions:
        s.p.wait(timeout=10)
