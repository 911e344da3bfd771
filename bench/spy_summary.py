"""Where the operator's CPU goes: a table from a ``reconcile_bench --py-spy`` profile.

``reconcile_bench.py --py-spy DIR --py-spy-gil`` records each phase with
``py-spy record --format raw`` (one collapsed stack per line, then a sample
count). This groups those samples by who is on the stack -- kopf's reactor,
the synchronous Kubernetes client, each pipeline step, the store -- and
prints each group's share of all samples. Groups overlap: a step's API call
counts for the step and for the client.

Usage::

    python bench/spy_summary.py DIR/burst.txt
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

#: Named groups: a sample belongs to every group whose pattern its stack matches.
GROUPS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("kopf reactor (watch, queueing, its own patches)", re.compile(r"kopf/|aiohttp")),
    (
        "kubernetes client (serialization, urllib3/TLS, JSON)",
        re.compile(r"kubernetes/client|urllib3"),
    ),
    ("pipeline steps, inclusive", re.compile(r"operator/pipeline/steps/")),
    ("store (RocksDB)", re.compile(r"operator/store/")),
    ("prometheus", re.compile(r"prometheus_client")),
)
_STEP = re.compile(r"operator/pipeline/steps/(\w+)\.py")


def read_samples(path: Path) -> Iterable[tuple[str, int]]:
    """(collapsed stack, samples) per line of a py-spy raw profile."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack, int(count)


def summarize(samples: Iterable[tuple[str, int]]) -> tuple[int, Counter[str]]:
    """Total samples, and samples per group and per pipeline step."""
    total, shares = 0, Counter[str]()
    for stack, count in samples:
        total += count
        for name, pattern in GROUPS:
            if pattern.search(stack):
                shares[name] += count
        for step in set(_STEP.findall(stack)):
            shares[f"  step {step}"] += count
    return total, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="a py-spy raw profile (e.g. DIR/burst.txt)")
    args = parser.parse_args()
    total, shares = summarize(read_samples(args.profile))
    print(f"{args.profile}: {total} samples")
    for name, _ in GROUPS:
        print(f"{100 * shares[name] / max(total, 1):6.1f} %  {name}")
    steps = sorted((k for k in shares if k.startswith("  step ")), key=lambda k: -shares[k])
    for name in steps:
        print(f"{100 * shares[name] / max(total, 1):6.1f} %  {name}")


if __name__ == "__main__":
    main()
