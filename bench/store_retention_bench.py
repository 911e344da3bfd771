"""Store size under sustained edits: with the retention policy against without.

Why: every spec change stores a full copy of the resource and a change-log
entry, so without limits the store grows with every edit until its volume
is full. This measures how big the store is after 10,000, 50,000 and
100,000 edits of the same 100 Agents (1,000 edits each), once with the
default retention policy (50 versions per resource, the change log's
published entries capped) and once keeping everything, and derives the
bytes one stored Agent version costs -- the number the volume sizing in
``docs/operations.md`` is based on.

Each edit changes an Agent's instructions (~2 KB of prose, different words
every time, so compression cannot cheat) and bumps its generation, as a
``kubectl apply`` of a new prompt would. Every change-log entry is marked
published, as the operator's Publish step does. At each checkpoint the
store runs ``prune`` (the operator's periodic maintenance), flushes, and is
measured; then fully compacted and measured again (the floor).

Usage: ``python -P bench/store_retention_bench.py [--edits 100000] [--agents 100]
[--log-max-entries 10000] [--json out.json]``. Sizes are what RocksDB
writes on this machine; they do not depend on its speed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from stigmer_operator.api.kinds import API_VERSION, Kind
from stigmer_operator.api.v1 import agent_pb2, resource_pb2
from stigmer_operator.store.retention import KEEP_ALL, Retention
from stigmer_operator.store.rocks import RocksStore

SEED = 20240601
INSTRUCTION_WORDS = 300
_WORDS = """
answer customer order refund invoice shipping billing account password reset escalate
politely never guess cite policy summarize ticket priority urgent delay carrier tracking
number warehouse return label exchange warranty subscription renewal discount coupon tax
region currency language tone
"""
VOCABULARY = tuple(_WORDS.split())
MIB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    policy: str
    edits: int
    history_entries: int
    log_entries: int
    flushed_bytes: int
    compacted_bytes: int
    seconds: float


def agent(number: int, generation: int, rng: random.Random) -> agent_pb2.Agent:
    message = agent_pb2.Agent(api_version=API_VERSION, kind=Kind.AGENT.value)
    meta = message.metadata
    meta.id = f"agt-{number:020x}"
    meta.name = f"support-agent-{number}"
    meta.namespace = meta.org = f"org-{number % 10}"
    meta.slug = meta.name
    meta.generation = generation
    meta.owner_scope = resource_pb2.OWNER_SCOPE_ORGANIZATION
    meta.labels["app.kubernetes.io/part-of"] = "support"
    spec = message.spec
    spec.display_name = f"Support Agent {number}"
    spec.description = "Answers order questions."
    spec.instructions = " ".join(rng.choice(VOCABULARY) for _ in range(INSTRUCTION_WORDS))
    github = spec.mcp_servers.add(name="github")
    github.stdio.command = "npx"
    github.stdio.args.extend(["-y", "@modelcontextprotocol/server-github"])
    github.stdio.env_placeholders["GITHUB_TOKEN"] = "${GITHUB_TOKEN}"
    spec.env.add(name="GITHUB_TOKEN", description="GitHub token", secret=True, required=True)
    return message


def run(
    policy: str, retention: Retention, edits: int, agents: int, checkpoints: list[int]
) -> tuple[list[Row], int]:
    """Edit round-robin; returns a row per checkpoint and the serialized Agent size."""
    rng = random.Random(SEED)
    directory = Path(tempfile.mkdtemp(prefix=f"retention-bench-{policy}-"))
    rows: list[Row] = []
    agent_bytes = 0
    started = time.perf_counter()
    try:
        store = RocksStore.open(directory / "store", create=True, retention=retention)
        with store:
            for edit in range(1, edits + 1):
                number, generation = edit % agents, edit // agents + 1
                resource = agent(number, generation, rng)
                agent_bytes = resource.ByteSize()
                entry = store.save(resource)
                if entry is not None:
                    store.mark_published(entry.sequence)
                if edit in checkpoints:
                    rows.append(_measure(store, policy, edit, time.perf_counter() - started))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows, agent_bytes


def _measure(store: RocksStore, policy: str, edits: int, seconds: float) -> Row:
    store.prune()
    store.flush()
    flushed = store.stats()
    store.compact()
    compacted = store.stats()
    return Row(
        policy=policy,
        edits=edits,
        history_entries=compacted.history_entries,
        log_entries=compacted.change_log_entries,
        flushed_bytes=flushed.bytes_on_disk,
        compacted_bytes=compacted.bytes_on_disk,
        seconds=round(seconds, 1),
    )


def print_table(rows: list[Row]) -> None:
    print(
        f"{'policy':<10} {'edits':>8} {'history':>8} {'log':>8} "
        f"{'flushed MiB':>12} {'compacted MiB':>14} {'s':>7}"
    )
    for row in rows:
        print(
            f"{row.policy:<10} {row.edits:>8} {row.history_entries:>8} {row.log_entries:>8} "
            f"{row.flushed_bytes / MIB:>12.2f} {row.compacted_bytes / MIB:>14.2f} {row.seconds:>7}"
        )


def print_ratios(kept: list[Row], capped: list[Row]) -> None:
    print("\ncompacted size, keep-all / retention:")
    for all_row, cap_row in zip(kept, capped, strict=True):
        ratio = all_row.compacted_bytes / cap_row.compacted_bytes
        print(f"  after {all_row.edits:>7} edits: {ratio:6.1f}x")
    first, last = capped[0], capped[-1]
    print(
        f"retention: size after {last.edits} edits / after {first.edits}: "
        f"{last.compacted_bytes / first.compacted_bytes:.2f} (compacted), "
        f"{last.flushed_bytes / first.flushed_bytes:.2f} (flushed)"
    )


def bytes_per_version(kept: list[Row]) -> float:
    """Marginal bytes of one more stored version (history + log entry), compacted."""
    first, last = kept[0], kept[-1]
    return (last.compacted_bytes - first.compacted_bytes) / (last.edits - first.edits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--edits", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument(
        "--log-max-entries",
        type=int,
        default=Retention().log_max_entries,
        help="published change-log entries kept under the retention policy",
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    checkpoints = sorted({args.edits // 10, args.edits // 2, args.edits})
    retention = Retention(log_max_entries=args.log_max_entries)
    print(f"retention policy: {retention}", flush=True)
    capped, agent_bytes = run("retention", retention, args.edits, args.agents, checkpoints)
    kept, _ = run("keep-all", KEEP_ALL, args.edits, args.agents, checkpoints)
    print(f"{args.agents} Agents of {agent_bytes} bytes (protobuf), {args.edits} edits\n")
    print_table(capped + kept)
    print_ratios(kept, capped)
    per_version = bytes_per_version(kept)
    print(f"bytes per stored Agent version (keep-all, compacted): {per_version:.0f}")
    if args.json:
        document = {
            "agent_bytes": agent_bytes,
            "bytes_per_version": per_version,
            "rows": [asdict(row) for row in capped + kept],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
