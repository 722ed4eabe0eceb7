#!/usr/bin/env python3
"""Writes host/link/symbol-order.txt: the server's functions a profiled session executes (run on demand).

Usage: link_order.py [--check]   (needs valgrind)

Builds the release binaries the way the README does (`cargo build --release`, the whole workspace, so the
symbol names match that build), runs the memory series (tests/benches/memory_series.py, in `inline` and
`client` mode) and the working session of tests/benches/memory_workload.py (submits dispatched to the
scripted app-server, plan workflows) under valgrind's callgrind, and lists every function of the server
binary that ran, sorted by name. host/build.rs gives the list to the linker, which places those functions side by side; functions not
listed keep the linker's order after them. With --check it only reports how much of the current list the
built binary still has (names change with dependency versions, features and the compiler).
"""
import os, re, subprocess, sys, tempfile

repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
order_file = os.path.join(repo, "host", "link", "symbol-order.txt")
target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target"))
binary = os.path.join(target_dir, "release", "codex-control-plane-mcp")

def text_symbols(path):
    """Function symbols of the binary with their sizes (`nm -S`)."""
    out = subprocess.run(["nm", "-S", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            sizes.setdefault(parts[3], int(parts[1], 16))
    return sizes

def executed(callgrind_out, object_name):
    """Names of the functions of `object_name` that callgrind saw run (its output compresses names to ids)."""
    names, objects, current, seen = {}, {}, None, set()
    for line in open(callgrind_out):
        m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            if m.group(3): objects[m.group(2)] = m.group(3)
            if m.group(1) == "ob": current = objects[m.group(2)]
            continue
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            if m.group(3): names[m.group(2)] = m.group(3)
            if m.group(1) == "fn" and current and os.path.basename(current) == object_name:
                # callgrind marks recursion depth as name'2; the symbol is the name before it.
                seen.add(names[m.group(2)].split("'")[0])
    return seen

def build():
    subprocess.run(["cargo", "build", "--release", "--locked", "--workspace", "--bins"], cwd=repo, check=True)

def check():
    build()
    listed = [l.strip() for l in open(order_file) if l.strip() and not l.startswith("#")]
    sizes = text_symbols(binary)
    present = [n for n in listed if n in sizes]
    print(f"{len(present)} of {len(listed)} listed functions are in {binary} "
          f"({sum(sizes[n] for n in present) / 1e6:.2f} MB of code)")

def profile():
    build()
    sizes = text_symbols(binary)
    work = tempfile.mkdtemp(prefix="link-order")
    wrapper = os.path.join(work, "server")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=callgrind --demangle=no --smc-check=all-non-file "
                f"--callgrind-out-file={work}/callgrind.%p {binary} \"$@\" 2>>{work}/valgrind.log\n")
    os.chmod(wrapper, 0o755)
    benches = os.path.join(repo, "tests", "benches")
    series = [sys.executable, os.path.join(benches, "memory_series.py")]
    workload = [sys.executable, os.path.join(benches, "memory_workload.py")]
    fake_app_server = os.path.join(target_dir, "release", "fake-app-server")
    # A first run without valgrind compiles the default plugins into a shared cache, as a server's first start
    # does once per install; the profiled runs then see what every later start runs.
    env = dict(os.environ, PLUGIN_CACHE=os.path.join(work, "plugin-cache"))
    # Each run is profiled on its own and lists, in order, the functions no earlier run executed.
    runs = [("start-up, tools/list and codex_health_summary", workload + ["--surface-only", wrapper, fake_app_server]),
            ("submits and polls, inline", series + [wrapper, "CODEX_MCP_EXECUTION_MODE=inline"]),
            ("submits and polls, client", series + [wrapper, "CODEX_MCP_EXECUTION_MODE=client"]),
            ("turns dispatched to app-server, plan workflows", workload + [wrapper, fake_app_server])]
    subprocess.run(series + [binary, "CODEX_MCP_EXECUTION_MODE=inline"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    seen, groups = set(), []
    for label, command in runs:
        for name in os.listdir(work):
            if name.startswith("callgrind."):
                os.remove(os.path.join(work, name))
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        ran = set()
        for name in os.listdir(work):
            if name.startswith("callgrind."):
                ran |= executed(os.path.join(work, name), os.path.basename(binary))
        fresh = sorted(n for n in ran - seen if n in sizes)
        seen |= ran
        groups.append((label, fresh))
    listed = [n for _, fresh in groups for n in fresh]
    with open(order_file, "w") as f:
        f.write("# Functions of the release server that a profiled session runs, placed side by side by the linker\n"
                "# (host/build.rs). Written by `python3 tests/benches/link_order.py`; do not edit by hand.\n")
        for label, fresh in groups:
            f.write(f"# first run by: {label} ({len(fresh)} functions, "
                    f"{sum(sizes[n] for n in fresh) / 1e6:.2f} MB)\n")
            f.write("".join(n + "\n" for n in fresh))
    print(f"{len(listed)} functions, {sum(sizes[n] for n in listed) / 1e6:.2f} MB of code -> {order_file}")

if __name__ == "__main__":
    check() if "--check" in sys.argv[1:] else profile()
