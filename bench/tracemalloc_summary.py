"""Where the operator's Python memory is: the snapshots of ``reconcile_bench.py --tracemalloc``.

Usage: ``python -P bench/tracemalloc_summary.py DIR`` (every snapshot in the
folder, oldest first: live traced memory at each) or ``... OLD NEW`` (what
grew between two snapshots). Each allocation is charged to the innermost
frame outside the standard library's plumbing (asyncio, json, threading,
...), grouped by package and function, so the table says which part of the
operator holds the memory: kopf's queues, the watch bodies it parsed, our
own maps, the Kubernetes client.

Only memory Python allocates is traced; RSS also holds free pymalloc arenas,
the allocator's own slack and RocksDB's C++ heap.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import tracemalloc
from collections import Counter
from pathlib import Path

STDLIB = sysconfig.get_paths()["stdlib"]
#: Standard-library frames that only pass memory through (charged to their caller).
PLUMBING = ("asyncio", "json", "threading", "concurrent", "copy", "functools", "collections")


def owner(trace: tracemalloc.Trace) -> str:
    """``package: function`` of the innermost frame that is not plumbing."""
    frames = list(reversed(trace.traceback))  # tracemalloc lists the oldest first
    for frame in frames:
        name = frame.filename
        if name.startswith(STDLIB) and any(f"/{p}" in name[len(STDLIB) :] for p in PLUMBING):
            continue
        if name.startswith("<"):
            continue
        return _label(name, frame.lineno)
    return _label(frames[0].filename, frames[0].lineno) if frames else "?"


def _label(filename: str, lineno: int) -> str:
    path = filename.replace("\\", "/")
    for marker in ("site-packages/", "/operator/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/operator/":
                path = "stigmer_operator/" + path
            break
    return f"{path}:{lineno}"


def by_owner(snapshot: tracemalloc.Snapshot) -> tuple[Counter[str], Counter[str]]:
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for trace in snapshot.traces:
        key = owner(trace)
        sizes[key] += trace.size
        counts[key] += 1
    return sizes, counts


def table(sizes: Counter[str], counts: Counter[str], top: int) -> None:
    total = sum(sizes.values())
    print(f"  total {total / 2**20:8.1f} MiB in {sum(counts.values())} blocks")
    for key, size in sizes.most_common(top):
        print(f"  {size / 2**20:8.1f} MiB {counts[key]:9d}  {key}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="a folder, or OLD NEW snapshots")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    if len(args.paths) == 1 and args.paths[0].is_dir():
        for path in sorted(args.paths[0].glob("snapshot-*.pickle")):
            snapshot = tracemalloc.Snapshot.load(str(path))
            total = sum(trace.size for trace in snapshot.traces)
            print(f"{path.name}: {total / 2**20:.1f} MiB traced")
        return 0
    if len(args.paths) == 1:
        print(args.paths[0])
        table(*by_owner(tracemalloc.Snapshot.load(str(args.paths[0]))), args.top)
        return 0
    if len(args.paths) != 2:
        parser.error("one folder, one snapshot, or OLD NEW")
    old, new = (by_owner(tracemalloc.Snapshot.load(str(p))) for p in args.paths)
    grown_sizes = Counter({k: v for k, v in (new[0] - old[0]).items() if v > 0})
    grown_counts = Counter({k: new[1][k] - old[1].get(k, 0) for k in grown_sizes})
    print(f"grew from {args.paths[0].name} to {args.paths[1].name}")
    table(grown_sizes, grown_counts, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
