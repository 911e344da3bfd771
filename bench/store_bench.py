"""Store benchmark: RocksStore against the SQLite designs it replaces.

Why: the seed moved Stigmer's store from SQLite + JSON text to an embedded
key-value store with binary protobuf and *expected* 10-50x faster writes,
5-10x faster reads and 30-50% less disk, "to be measured next sprint". This
measures it, in one process, on the same N realistic Agents (~0.5 KB of
protobuf: 50 orgs, two MCP servers, declared env, labels):

* ``rocks``       RocksStore through the real Store API: every write carries
                  the resource, its indexes, a history entry and a change-log
                  entry in one WriteBatch (WAL on, no fsync per write).
* ``rocks-sync``  the same with ``sync_writes=True`` (fsync per write).
* ``sqlite-json`` SQLite + protobuf JSON text, a row per resource with
                  id/kind/org/slug columns and indexes, autocommit per write,
                  default rollback journal and synchronous=FULL: the seed's
                  "before".
* ``sqlite-json-wal`` the same in WAL mode with synchronous=NORMAL, which
                  has RocksDB's durability (survives a process crash, may
                  lose the last commits on power loss).
* ``sqlite-blob`` SQLite + binary protobuf, WAL, synchronous=NORMAL:
                  upstream's current design.

Usage: ``python bench/store_bench.py [--n 20000] [--json out.json]``.
Prints a table, the ratios rocks/sqlite-json and rocks/sqlite-blob, and
PASS/FAIL for the targets of issue 3. Timings are wall-clock on whatever
machine runs it; read them as ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import enum
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import google.protobuf
from google.protobuf import json_format

from stigmer_operator.api.kinds import API_VERSION, Kind
from stigmer_operator.api.v1 import agent_pb2, resource_pb2
from stigmer_operator.store.rocks import RocksStore

ORGS = 50
BATCH = 1000
SEED = 20240601

T = TypeVar("T")


# -- data ---------------------------------------------------------------------------


def make_agents(count: int) -> list[agent_pb2.Agent]:
    """``count`` Agents spread over 50 orgs, with random-looking ids."""
    rng = random.Random(SEED)
    return [_agent(rng, number) for number in range(count)]


def _agent(rng: random.Random, number: int) -> agent_pb2.Agent:
    org = f"org-{number % ORGS:02d}"
    message = agent_pb2.Agent(api_version=API_VERSION, kind=Kind.AGENT.value)
    meta = message.metadata
    meta.id = f"agt-{rng.getrandbits(80):020x}"
    meta.name = f"support-agent-{number}"
    meta.display_name = f"Support Agent {number}"
    meta.slug = meta.name
    meta.org = org
    meta.namespace = org
    meta.uid = str(uuid.UUID(int=rng.getrandbits(128)))
    meta.owner_scope = resource_pb2.OWNER_SCOPE_ORGANIZATION
    meta.labels["app.kubernetes.io/part-of"] = "support"
    meta.generation = 1
    meta.resource_version = str(rng.randrange(10**6, 10**7))
    spec = message.spec
    spec.display_name = meta.display_name
    spec.description = f"Answers {rng.choice(['billing', 'shipping', 'account'])} questions."
    spec.instructions = f"You are support agent {number}. Answer order questions; never guess."
    github = spec.mcp_servers.add(name="github")
    github.stdio.command = "npx"
    github.stdio.args.extend(["-y", "@modelcontextprotocol/server-github"])
    github.stdio.env_placeholders["GITHUB_TOKEN"] = "${GITHUB_TOKEN}"
    search = spec.mcp_servers.add(name="search")
    search.http.url = f"https://{org}.example.com/mcp"
    search.http.headers["Authorization"] = "Bearer ${SEARCH_KEY}"
    search.http.timeout_seconds = 30
    search.enabled_tools.extend(["query", "fetch"])
    spec.env.add(name="GITHUB_TOKEN", description="GitHub token", secret=True, required=True)
    spec.env.add(name="SEARCH_KEY", description="Search API key", secret=True, required=True)
    return message


# -- backends ---------------------------------------------------------------------------


class Backend(Protocol):
    """What the benchmark does to a store."""

    def write_one(self, agent: agent_pb2.Agent) -> None: ...
    def write_batch(self, agents: Sequence[agent_pb2.Agent]) -> None: ...
    def get(self, agent_id: str) -> agent_pb2.Agent: ...
    def list_by_org(self, org: str) -> list[agent_pb2.Agent]: ...
    def scan(self) -> Iterator[agent_pb2.Agent]: ...
    def settle(self) -> None:
        """Finish background work of the writes, so reads are measured alone."""

    def bytes_on_disk(self) -> int: ...
    def close(self) -> None: ...


class RocksBackend:
    def __init__(self, path: Path, *, sync: bool) -> None:
        self._store = RocksStore.open(path, create=True, sync_writes=sync)

    def write_one(self, agent: agent_pb2.Agent) -> None:
        self._store.save(agent)

    def write_batch(self, agents: Sequence[agent_pb2.Agent]) -> None:
        self._store.save_many(agents)

    def get(self, agent_id: str) -> agent_pb2.Agent:
        return _agent_of(self._store.get(Kind.AGENT, agent_id))

    def list_by_org(self, org: str) -> list[agent_pb2.Agent]:
        return [_agent_of(r) for r in self._store.list_by_org(Kind.AGENT, org)]

    def scan(self) -> Iterator[agent_pb2.Agent]:
        return (_agent_of(r) for r in self._store.list(Kind.AGENT))

    def settle(self) -> None:
        self._store.compact()  # flush, and let no compaction run under the reads

    def bytes_on_disk(self) -> int:
        self._store.compact()
        return self._store.stats().bytes_on_disk

    def close(self) -> None:
        self._store.close()


def _agent_of(resource: object) -> agent_pb2.Agent:
    assert isinstance(resource, agent_pb2.Agent)
    return resource


class Codec(enum.Enum):
    JSON = "TEXT"
    BLOB = "BLOB"


class SqliteBackend:
    """One table, one row per resource, indexed like the seed's SQLite store."""

    def __init__(self, path: Path, *, codec: Codec, wal: bool) -> None:
        path.mkdir(parents=True)
        self._file = path / "store.db"
        self._codec = codec
        self._db = sqlite3.connect(self._file, isolation_level=None)  # autocommit
        if wal:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            f"CREATE TABLE resources (id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
            f"org TEXT NOT NULL, slug TEXT NOT NULL, data {codec.value} NOT NULL)"
        )
        self._db.execute("CREATE INDEX resources_org ON resources (kind, org)")
        self._db.execute("CREATE UNIQUE INDEX resources_slug ON resources (kind, org, slug)")

    def _row(self, agent: agent_pb2.Agent) -> tuple[str, str, str, str, str | bytes]:
        meta = agent.metadata
        data: str | bytes
        if self._codec is Codec.JSON:
            data = json_format.MessageToJson(agent, indent=None)
        else:
            data = agent.SerializeToString()
        return (meta.id, Kind.AGENT.value, meta.org, meta.slug, data)

    def _parse(self, data: str | bytes) -> agent_pb2.Agent:
        if isinstance(data, str):
            return json_format.Parse(data, agent_pb2.Agent())
        return agent_pb2.Agent.FromString(data)

    def write_one(self, agent: agent_pb2.Agent) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?, ?)", self._row(agent)
        )

    def write_batch(self, agents: Sequence[agent_pb2.Agent]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?, ?)",
            [self._row(agent) for agent in agents],
        )
        self._db.execute("COMMIT")

    def get(self, agent_id: str) -> agent_pb2.Agent:
        row = self._db.execute("SELECT data FROM resources WHERE id = ?", (agent_id,)).fetchone()
        return self._parse(row[0])

    def list_by_org(self, org: str) -> list[agent_pb2.Agent]:
        rows = self._db.execute(
            "SELECT data FROM resources WHERE kind = ? AND org = ? ORDER BY id",
            (Kind.AGENT.value, org),
        )
        return [self._parse(data) for (data,) in rows]

    def scan(self) -> Iterator[agent_pb2.Agent]:
        rows = self._db.execute(
            "SELECT data FROM resources WHERE kind = ? ORDER BY id", (Kind.AGENT.value,)
        )
        return (self._parse(data) for (data,) in rows)

    def settle(self) -> None:
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def bytes_on_disk(self) -> int:
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        siblings = self._file.parent.glob(self._file.name + "*")
        return sum(path.stat().st_size for path in siblings)

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    open: Callable[[Path], Backend]


VARIANTS = [
    Variant(
        "rocks",
        "RocksStore (Store API: resource+indexes+history+log per write; WAL, no fsync/write)",
        lambda path: RocksBackend(path, sync=False),
    ),
    Variant(
        "rocks-sync",
        "RocksStore with sync_writes=True (fsync per write)",
        lambda path: RocksBackend(path, sync=True),
    ),
    Variant(
        "sqlite-json",
        "SQLite + protobuf JSON, autocommit, rollback journal, synchronous=FULL (seed 'before')",
        lambda path: SqliteBackend(path, codec=Codec.JSON, wal=False),
    ),
    Variant(
        "sqlite-json-wal",
        "SQLite + protobuf JSON, WAL, synchronous=NORMAL (RocksDB-like durability)",
        lambda path: SqliteBackend(path, codec=Codec.JSON, wal=True),
    ),
    Variant(
        "sqlite-blob",
        "SQLite + protobuf blob, WAL, synchronous=NORMAL (upstream's current design)",
        lambda path: SqliteBackend(path, codec=Codec.BLOB, wal=True),
    ),
]


# -- measuring ------------------------------------------------------------------------


@dataclass
class Result:
    """Rates are operations (or rows) per second; list times are per list (median)."""

    single_writes_per_s: float
    batched_writes_per_s: float
    point_gets_per_s: float
    list_by_org_ms: float
    scan_filter_org_ms: float
    full_scan_rows_per_s: float
    bytes_on_disk: int

    @property
    def index_speedup(self) -> float:
        return self.scan_filter_org_ms / self.list_by_org_ms


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def interleaved(
    stores: dict[str, Backend], rounds: Sequence[T], action: Callable[[Backend, T], object]
) -> dict[str, list[float]]:
    """Seconds of ``action(store, item)`` per store and round.

    Every round visits every store (in a rotating order), so a load spike on
    a shared machine hits all variants alike instead of whichever happened
    to be running during it. Each store does exactly the same work.
    """
    names = list(stores)
    times: dict[str, list[float]] = {name: [] for name in names}
    for number, item in enumerate(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            action(stores[name], item)
            times[name].append(time.perf_counter() - start)
    return times


def total_rate(count: int, rounds: list[float]) -> float:
    """Operations per second over all rounds: writes include their stalls."""
    return rate(count, sum(rounds))


def median_rate(per_round: int, rounds: list[float]) -> float:
    """Operations per second in the median round: reads, robust to load spikes."""
    return rate(per_round, statistics.median(rounds))


def _write_each(store: Backend, chunk: Sequence[agent_pb2.Agent]) -> None:
    for agent in chunk:
        store.write_one(agent)


def _get_each(store: Backend, ids: Sequence[str]) -> None:
    for agent_id in ids:
        store.get(agent_id)


def _scan_filter(store: Backend, org: str) -> list[agent_pb2.Agent]:
    return [agent for agent in store.scan() if agent.metadata.org == org]


def _scan_all(store: Backend, _round: int) -> int:
    return sum(1 for _ in store.scan())


def _check_lists(stores: dict[str, Backend], orgs: list[str], agents: int) -> None:
    """Untimed: every variant answers list-by-org and scans completely and alike."""
    for name, store in stores.items():
        listed = [len(store.list_by_org(org)) for org in orgs]
        assert sum(listed) == agents, f"{name}: list_by_org lost or duplicated agents"
        assert len(_scan_filter(store, orgs[0])) == listed[0], f"{name}: scan disagrees"
        assert _scan_all(store, 0) == agents, f"{name}: full scan incomplete"


def measure(
    variants: list[Variant], agents: list[agent_pb2.Agent], workdir: Path
) -> dict[str, Result]:
    chunks = [agents[i : i + BATCH] for i in range(0, len(agents), BATCH)]
    singles = {v.name: v.open(workdir / f"{v.name}-single") for v in variants}
    single_s = interleaved(singles, chunks, _write_each)
    for store in singles.values():
        store.close()

    stores = {v.name: v.open(workdir / f"{v.name}-batched") for v in variants}
    try:
        batched_s = interleaved(stores, chunks, lambda store, chunk: store.write_batch(chunk))
        for store in stores.values():
            store.settle()
        rng = random.Random(SEED)
        rounds = max(1, len(agents) // BATCH)
        ids = [agent.metadata.id for agent in rng.choices(agents, k=rounds * BATCH)]
        id_rounds = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
        gets_s = interleaved(stores, id_rounds, _get_each)
        orgs = [f"org-{number:02d}" for number in range(ORGS)]
        _check_lists(stores, orgs, len(agents))
        list_s = interleaved(stores, orgs, lambda store, org: store.list_by_org(org))
        filter_orgs = orgs[:5]  # a full scan per org is slow; five give a stable mean
        filter_s = interleaved(stores, filter_orgs, _scan_filter)
        scans = 3
        scan_s = interleaved(stores, range(scans), _scan_all)
        sizes = {name: store.bytes_on_disk() for name, store in stores.items()}
    finally:
        for store in stores.values():
            store.close()
    return {
        name: Result(
            single_writes_per_s=total_rate(len(agents), single_s[name]),
            batched_writes_per_s=total_rate(len(agents), batched_s[name]),
            point_gets_per_s=median_rate(BATCH, gets_s[name]),
            list_by_org_ms=statistics.median(list_s[name]) * 1000,
            scan_filter_org_ms=statistics.median(filter_s[name]) * 1000,
            full_scan_rows_per_s=median_rate(len(agents), scan_s[name]),
            bytes_on_disk=sizes[name],
        )
        for name in stores
    }


# -- reporting ------------------------------------------------------------------------

ROWS: list[tuple[str, str, bool]] = [
    # (label, Result attribute, higher is better)
    ("single writes/s (1 txn or WriteBatch per write)", "single_writes_per_s", True),
    (f"batched writes/s ({BATCH} per txn / WriteBatch)", "batched_writes_per_s", True),
    ("point gets/s (random ids)", "point_gets_per_s", True),
    (f"list-by-org, 1 org of {ORGS} (ms per list)", "list_by_org_ms", False),
    ("same via full scan + filter (ms per list)", "scan_filter_org_ms", False),
    ("  index speed-up (scan+filter / list-by-org)", "index_speedup", True),
    ("full scan (rows/s, parsed)", "full_scan_rows_per_s", True),
    ("bytes on disk after flush/compaction", "bytes_on_disk", False),
]


def _cell(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def print_table(results: dict[str, Result]) -> None:
    names = list(results)
    width = max(len(label) for label, _, _ in ROWS)
    print(f"{'':<{width}}  " + "  ".join(f"{name:>15}" for name in names))
    for label, attribute, _ in ROWS:
        cells = [_cell(getattr(results[name], attribute)) for name in names]
        print(f"{label:<{width}}  " + "  ".join(f"{cell:>15}" for cell in cells))


def ratio(rocks: Result, other: Result, attribute: str, higher_is_better: bool) -> float:
    mine: float = getattr(rocks, attribute)
    theirs: float = getattr(other, attribute)
    return mine / theirs if higher_is_better else theirs / mine


def print_ratios(results: dict[str, Result]) -> None:
    rocks = results["rocks"]
    print("\nrocks advantage (x, >1 means rocks is better):")
    others = ["sqlite-json", "sqlite-json-wal", "sqlite-blob"]
    width = max(len(label) for label, _, _ in ROWS)
    print(f"{'':<{width}}  " + "  ".join(f"{'(a)/' + name:>19}" for name in others))
    for label, attribute, higher in ROWS:
        if attribute == "index_speedup":
            continue
        cells = [f"{ratio(rocks, results[o], attribute, higher):,.1f}x" for o in others]
        print(f"{label:<{width}}  " + "  ".join(f"{cell:>19}" for cell in cells))


@dataclass(frozen=True)
class Target:
    text: str
    achieved: float
    required: float

    @property
    def passed(self) -> bool:
        return self.achieved >= self.required


def targets(results: dict[str, Result]) -> list[Target]:
    rocks, json_ = results["rocks"], results["sqlite-json"]
    return [
        Target(
            "single writes >= 10x SQLite+JSON",
            ratio(rocks, json_, "single_writes_per_s", True),
            10,
        ),
        Target("point gets >= 20x SQLite+JSON", ratio(rocks, json_, "point_gets_per_s", True), 20),
        Target("list-by-org >= 20x full scan + filter (50 orgs)", rocks.index_speedup, 20),
        Target(
            "on disk >= 3x smaller than SQLite+JSON",
            ratio(rocks, json_, "bytes_on_disk", False),
            3,
        ),
    ]


def print_footer(variants: list[Variant], agents: list[agent_pb2.Agent]) -> None:
    proto_size = sum(a.ByteSize() for a in agents) / len(agents)
    json_size = sum(len(json_format.MessageToJson(a, indent=None)) for a in agents[:1000])
    print("\nvariants:")
    for variant in variants:
        print(f"  {variant.name:<16} {variant.description}")
    print(
        f"\nN={len(agents)} Agents, {ORGS} orgs, {proto_size:.0f} B protobuf / "
        f"{json_size / min(len(agents), 1000):.0f} B compact JSON each; "
        f"rocksdict {_version('rocksdict')}, "
        f"SQLite {sqlite3.sqlite_version}, protobuf {google.protobuf.__version__}, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        "method: all variants are open at once and measured in interleaved rounds (1000 "
        "writes or gets, one org, one scan per round), so machine load hits them alike. "
        "Write rates are totals over all rounds (stalls included); read figures come from "
        "each variant's median round. Reads start after each store settled (RocksDB "
        "flushed and compacted, SQLite checkpointed).\n"
        "durability: 'rocks' and the WAL/NORMAL SQLite variants survive a process crash but "
        "may lose the last writes on power loss; 'rocks-sync' and 'sqlite-json' (FULL) fsync "
        "every write. Compare like with like. rocks writes ~3 records per save "
        "(resource, history copy, log entry) plus indexes; SQLite writes one row."
    )


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="number of Agents (default 20000)")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument(
        "--only", action="append", help="run only these variants (repeatable; default all)"
    )
    args = parser.parse_args(argv)
    variants = [v for v in VARIANTS if not args.only or v.name in args.only]
    agents = make_agents(args.n)
    workdir = Path(tempfile.mkdtemp(prefix="stigmer-store-bench-"))
    print(f"measuring {', '.join(v.name for v in variants)} ...", file=sys.stderr, flush=True)
    try:
        results = measure(variants, agents, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results)
    if {"rocks", "sqlite-json", "sqlite-json-wal", "sqlite-blob"} <= set(results):
        print_ratios(results)
    checks = targets(results) if {"rocks", "sqlite-json"} <= set(results) else []
    if checks:
        print("\ntargets:")
        for check in checks:
            verdict = "PASS" if check.passed else "FAIL"
            print(f"  {verdict}  {check.text}: {check.achieved:.1f}x")
    print_footer(variants, agents)
    if args.json:
        document = {
            "n": args.n,
            "results": {name: asdict(result) for name, result in results.items()},
            "targets": [{**asdict(c), "passed": c.passed} for c in checks],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
