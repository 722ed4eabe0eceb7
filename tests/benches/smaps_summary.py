#!/usr/bin/env python3
"""Where a process's resident set lies, from a copy of its /proc/PID/smaps.

Usage: smaps_summary.py SMAPS_FILE [SMAPS_FILE ...]

Sums Rss (KiB) per kind of mapping: the server binary's segments by permission (code, constants, relocated
data), shared libraries, compiled plugin artifacts (`.cwasm` files of the plugin cache), the `[heap]`, anonymous
mappings by size class (malloc's second arena and wasmtime's pool slots are large anonymous mappings; thread
stacks are 2-8 MiB ones with a guard page), and the rest. The benches write such copies with `MCP_BENCH_SMAPS=DIR`.
"""
import re
import sys

HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$")


def mappings(path):
    """(start, end, perms, name, rss_kib, anon_kib) for each mapping of an smaps file."""
    current = None
    with open(path) as lines:
        for line in lines:
            header = HEADER.match(line)
            if header:
                if current:
                    yield current
                start, end, perms, name = header.groups()
                current = [int(start, 16), int(end, 16), perms, name.strip(), 0, 0]
            elif current and line.startswith("Rss:"):
                current[4] = int(line.split()[1])
            elif current and line.startswith("Anonymous:"):
                current[5] = int(line.split()[1])
    if current:
        yield current


def kind(perms, name, size, binary):
    """The row a mapping is summed into; `binary` is the executable's path (the first mapping's)."""
    if name == binary:
        return {"r-xp": "binary: code", "r--p": "binary: constants / relro", "rw-p": "binary: data"}.get(
            perms, f"binary: {perms}")
    if ".so" in name:
        return "shared libraries"
    if name.endswith(".cwasm") or "plugin" in name:
        return "plugin artifacts (file)"
    if name == "[heap]":
        return "[heap] (main arena)"
    if name.startswith("[stack"):
        return "main stack"
    if name.startswith("["):
        return name
    if name:
        return f"other files ({name.rsplit('/', 1)[-1]})" if size < (1 << 20) else "other files"
    if size >= 64 << 20:
        return "anon >= 64 MiB (malloc arena / wasm pool reservations)"
    if size >= 1 << 20:
        return "anon 1-64 MiB (thread stacks, pool slots)"
    return "anon < 1 MiB"


def main():
    for path in sys.argv[1:]:
        rows = {}
        binary = None
        for start, end, perms, name, rss, _anon in mappings(path):
            binary = binary or name
            if rss == 0:
                continue
            key = kind(perms, name, end - start, binary)
            rows[key] = rows.get(key, 0) + rss
        total = sum(rows.values())
        print(f"{path}: {total / 1024:.1f} MB resident")
        for key, rss in sorted(rows.items(), key=lambda kv: -kv[1]):
            print(f"  {rss / 1024:6.2f} MB  {key}")


if __name__ == "__main__":
    main()
