#!/usr/bin/env python3
"""Resident memory of one MCP stdio server through a working session (run on demand, never as a test).

Usage: memory_workload.py [--surface-only] SERVER_COMMAND FAKE_APP_SERVER

The session the MCP benchmark's durable series runs, in `inline` mode with the scripted fake app-server in
`hang` mode (turns start and never finish, so every submit dispatches and stays running): 20 tools/list and 20
codex_health_summary, 320 codex_submit_task over 20 projects, 300 more each into a new project, 1 000
codex_get_operation_status, 120 codex_start_plan_workflow (the plan-workflow plugin runs) and 1 000
codex_get_workflow_status, then 12 s idle. Prints VmRSS / RssAnon / RssFile from /proc/PID/status after each part;
SMAPS_OUT=FILE copies /proc/PID/smaps at the end. FAKE_APP_SERVER is the tests package's `fake-app-server`
binary (`cargo build --release --workspace --bins` builds it). --surface-only stops after the surface series.
"""
import json, os, random, shutil, subprocess, sys, time

from isolated_server import isolated_env
from proc_memory import resident_kib

surface_only = "--surface-only" in sys.argv[1:]
binary, fake_app_server = [arg for arg in sys.argv[1:] if arg != "--surface-only"]
root, env = isolated_env("memworkload", "inline", CODEX_BINARY_PATH=fake_app_server, FAKE_APP_SERVER_MODE="hang",
                         CODEX_MCP_APP_SERVER_REQUEST_TIMEOUT_MS="600000")
p = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
n = 0

def call(method, params):
    global n
    n += 1
    p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params}) + "\n")
    p.stdin.flush()
    while True:
        reply = json.loads(p.stdout.readline())
        if reply.get("id") == n:
            return reply

def tool(name, args):
    result = call("tools/call", {"name": name, "arguments": args})["result"]
    payload = result.get("structuredContent") or json.loads(result["content"][0]["text"])
    if payload.get("ok") is False:
        sys.exit(f"{name} failed: {payload}")
    return payload

def status(label):
    print(f"after {label} (KiB)", resident_kib(p.pid), flush=True)

def project(name):
    path = f"{root}/projects/{name}"
    os.makedirs(path, exist_ok=True)
    return path

rng = random.Random(7)
def message(i, salt):
    words = " ".join("".join(rng.choice("abcdefghijklmnop") for _ in range(6)) for _ in range(10))
    return f"{salt} task {i}: {words}"

call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}})
p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
p.stdin.flush()
for _ in range(20):
    call("tools/list", {})
for _ in range(20):
    tool("codex_health_summary", {})
status("the surface series")
if surface_only:
    p.stdin.close()
    p.wait(timeout=30)
    shutil.rmtree(root, ignore_errors=True)
    sys.exit(0)
shared = [project(f"p{i:02}") for i in range(20)]
ids = [tool("codex_submit_task", {"operation_type": "start_chat", "message": message(i, "shared"),
                                  "project_id": shared[i % 20]})["operationId"] for i in range(320)]
for i in range(300):
    tool("codex_submit_task", {"operation_type": "start_chat", "message": message(i, "solo"),
                               "project_id": project(f"solo{i:03}")})
for i in range(1000):
    tool("codex_get_operation_status", {"operation_id": ids[i % len(ids)]})
status("620 submits + 1 000 polls")
workflow_project = project("workflow")
workflows = []
for i in range(120):
    args = {"project_id": workflow_project, "message": message(i, "workflow")}
    if i % 2 == 0:
        args["goal"] = f"ship task {i}"
    workflows.append(tool("codex_start_plan_workflow", args)["workflowId"])
for i in range(1000):
    tool("codex_get_workflow_status", {"workflow_id": workflows[i % len(workflows)]})
time.sleep(0.3)
status("120 plan workflows + 1 000 workflow polls")
# What the server keeps once left alone (the heap trimmer runs every 5 s; the workflows stay live).
time.sleep(12)
status("12 s idle")
if os.environ.get("SMAPS_OUT"):
    shutil.copy(f"/proc/{p.pid}/smaps", os.environ["SMAPS_OUT"])
p.stdin.close()
p.wait(timeout=30)
shutil.rmtree(root, ignore_errors=True)
