#!/usr/bin/env python3
"""Latency of single calls and submit scaling over MCP stdio (run on demand, never as a test).

Usage:
  stdio_probe.py latency SERVER_COMMAND     ping, tools/list, health and a status poll: p50 / p90 of 300 calls each
  stdio_probe.py queue SERVER_COMMAND       one session submitting 600 prompts into one project: p50 per 20 submits
  stdio_probe.py clients SERVER_COMMAND N   N sessions (N server processes on one database), each submitting into its
                                            own project for 4 s: aggregate submits/s

Each run gets a fresh state directory and `client` execution mode (nothing is dispatched, every operation stays
queued). Timings include this client's own work (reading a 180 KB `tools/list` line costs it a few tenths of a
millisecond), so compare figures of this script with each other, not with `--bench mcp`.
"""
import json, os, random, subprocess, sys, tempfile, threading, time

root = tempfile.mkdtemp(prefix="stdio-probe-")
ENV = dict(PATH=os.environ["PATH"], HOME=root, CODEX_HOME=root + "/codex-home",
           CODEX_PROJECTS_ROOT=root + "/projects", CODEX_ALLOWED_ROOTS=root + "/projects",
           CODEX_MCP_STATE_DB=root + "/state/state.sqlite3", CODEX_MCP_EXECUTION_MODE="client",
           CODEX_CONTROL_PLANE_MCP_LOG=root + "/server.log", CODEX_BINARY="/nonexistent/codex")


class Session:
    def __init__(self, binary, project):
        self.cwd = f"{root}/projects/{project}"
        os.makedirs(self.cwd, exist_ok=True)
        self.proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV, bufsize=0)
        # A buffered reader: readline on the raw pipe would read one byte per system call.
        self.reader = os.fdopen(self.proc.stdout.fileno(), "rb", buffering=1 << 20)
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "stdio-probe", "version": "0"}})
        self.proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')

    def request(self, method, params):
        """(seconds from writing the request to reading its reply line, the line)."""
        self.next_id += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}).encode()
        started = time.perf_counter()
        self.proc.stdin.write(line + b"\n")
        reply = self.reader.readline()
        return time.perf_counter() - started, reply

    def submit(self, text):
        _, reply = self.request("tools/call", {"name": "codex_submit_task", "arguments": {
            "operation_type": "start_chat", "message": text, "cwd": self.cwd}})
        payload = json.loads(reply)["result"]["structuredContent"]
        assert payload["ok"], payload
        return payload

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def unique_prompt(tag):
    words = " ".join("w%x" % random.getrandbits(32) for _ in range(8))
    return f"task {tag} please summarise {words}"


def latency(binary):
    session = Session(binary, "p")
    op = session.submit(unique_prompt("probe"))["operationId"]
    series = [("ping", "ping", {}), ("tools/list", "tools/list", {}),
              ("codex_health_summary", "tools/call", {"name": "codex_health_summary", "arguments": {}}),
              ("status poll", "tools/call", {"name": "codex_get_operation_status",
                                             "arguments": {"operation_id": op}})]
    for label, method, params in series:
        session.request(method, params)
        times = sorted(session.request(method, params)[0] for _ in range(300))
        print(f"{label:22s} p50 {times[150] * 1e3:.3f} ms  p90 {times[270] * 1e3:.3f} ms")
    session.close()


def queue(binary):
    session = Session(binary, "p")
    times = []
    for i in range(600):
        started = time.perf_counter()
        session.submit(unique_prompt(i))
        times.append(time.perf_counter() - started)
    for low in (0, 100, 180, 260, 400, 580):
        part = sorted(times[low:low + 20])
        print(f"submits {low}-{low + 20} (that many live prompts before them): p50 {part[10] * 1e3:.2f} ms")
    session.close()


def clients(binary, count, seconds=4.0):
    sessions = [Session(binary, f"p{i}") for i in range(count)]
    done = [0] * count
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        deadline = time.time() + seconds
        while time.time() < deadline:
            sessions[i].submit(unique_prompt(f"{i}x{done[i]}"))
            done[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"{count} sessions: {sum(done) / seconds:.0f} submits/s")
    for session in sessions:
        session.close()


if __name__ == "__main__":
    mode, binary = sys.argv[1], sys.argv[2]
    if mode == "latency":
        latency(binary)
    elif mode == "queue":
        queue(binary)
    elif mode == "clients":
        clients(binary, int(sys.argv[3]))
    else:
        sys.exit(__doc__)
