"""The printed tables and the targets, one :class:`Section` per phase.

Each section is data: a heading, its rows (a labelled value, or a nested
table of API requests) and the target it is checked against. :func:`report`
prints the sections of the phases that ran, then every target as PASS or
FAIL; adding a row is adding a line to :data:`SECTIONS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import WRITE_VERBS, log, percentile

Result = Mapping[str, Any]

# Targets on the 2-core reference machine (docs/performance.md lists them).
TARGET_BURST_RATE = 40.0  # 1,000 Agents all Ready in <= 25 s
TARGET_BASELINE_FRACTION = 0.9
TARGET_STEADY_P99 = 2.0
TARGET_RSS_MB = 256.0  # MiB, holding 10,000 Agents + 10,000 instances (after a burst, a restart)
TARGET_IDLE_RSS_MB = 128.0
TARGET_RESTART_S = 60.0

#: The pipeline's write counter names a verb the way the API server's does not.
_VERB_OF = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}


def _fmt(value: Any, spec: str = ".2f") -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


# --------------------------------------------------------------------------
# Rows and sections
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One ``label  value`` line."""

    label: str
    value: Callable[[Result], str]

    def lines(self, result: Result) -> list[str]:
        return [f"  {self.label:<28}{self.value(result)}"]


@dataclass(frozen=True)
class Lines:
    """Lines that are not one labelled value (a heading and a nested table)."""

    render: Callable[[Result], list[str]]

    def lines(self, result: Result) -> list[str]:
        return self.render(result)


@dataclass(frozen=True)
class Target:
    """What a phase must reach on the reference machine, and how to say it."""

    met: Callable[[Result], bool]
    text: Callable[[Result], str]


@dataclass(frozen=True)
class Section:
    """The table of one phase's results (``results[phase]``)."""

    phase: str
    heading: Callable[[Result], str]
    rows: tuple[Row | Lines, ...]
    target: Target


def _latency(result: Result) -> str:
    lat = result["latency"]
    return (
        f"{_fmt(lat['p50'])} / {_fmt(lat['p95'])} / {_fmt(lat['p99'])} s (max {_fmt(lat['max'])})"
    )


def _rss(result: Result) -> str:
    return f"{_fmt(result['rss_mb'], '.0f')} MB ({_fmt(result['peak_rss_mb'], '.0f')} MB)"


def _request_rows(requests: Mapping[str, int], per: int, pipeline: Mapping[str, int]) -> list[str]:
    """``VERB resource[/sub]  count/per``, with the pipeline's share where ``pipeline`` has it."""
    lines = []
    for key, count in requests.items():
        verb, resource, *sub = key.split(" ")
        label = f"{resource}/{sub[0]}" if sub else resource
        mine = pipeline.get(f"{_VERB_OF.get(verb, verb.lower())} {label}")
        source = (
            ""
            if mine is None
            else f"  (pipeline {mine / per:.2f}, kopf/other {(count - mine) / per:.2f})"
        )
        lines.append(f"    {verb:<7}{label:<24}{count / per:6.2f}{source}")
    return lines


# -- burst


def _machine_cpu(cpu: Mapping[str, float] | None) -> str:
    """CPU seconds by process, then how busy the machine was and how much was stolen."""
    if not cpu:
        return "-"
    summary = ("busy", "busy_fraction", "stolen_fraction", "other")
    names = [k for k in cpu if k not in summary] + ["other"]
    used = ", ".join(f"{name} {_fmt(cpu[name], '.1f')}" for name in names)
    stolen = cpu.get("stolen_fraction", math.nan)
    return (
        f"{used} s; machine busy {_fmt(100 * cpu['busy_fraction'], '.0f')} %, "
        f"stolen {_fmt(100 * stolen, '.0f')} %"
    )


def _burst_n(burst: Result) -> int:
    return max(1, int(burst["n"]))


def _burst_requests(burst: Result) -> list[str]:
    n = _burst_n(burst)
    writes = sum(v for k, v in burst["requests"].items() if k.split(" ")[0] in WRITE_VERBS)
    return [
        "  API requests per Agent (apiserver_request_total; bench's own creates excluded):",
        *_request_rows(burst["requests"], n, burst["pipeline_writes"]),
        f"    {'writes':<31}{writes / n:6.2f}",
        *_reader_rows(burst.get("readers"), n),
        f"  reconciles: {', '.join(f'{k}={v}' for k, v in burst['reconciles'].items())}",
    ]


def _reader_rows(readers: Mapping[str, int] | None, n: int) -> list[str]:
    """Who sent the reads of Agents and AgentInstances (the API server's audit log)."""
    if readers is None:
        return []
    if not readers:
        return ["  reads of Agents and AgentInstances by client (audit log): none"]
    rows = ["  reads of Agents and AgentInstances per Agent, by client (audit log):"]
    for read, count in readers.items():
        verb, resource, client = read.split(" ", 2)
        rows.append(f"    {verb:<7}{resource:<24}{count / n:6.2f}  {client}")
    return rows


BURST = Section(
    "burst",
    lambda b: f"burst: {b['n']} Agents, {b['clients']} clients",
    (
        Row("created in", lambda b: f"{_fmt(b['create_seconds'])} s"),
        Row(
            "all Ready in",
            lambda b: f"{_fmt(b['all_ready_seconds'])} s ({b['ready']}/{b['n']} Ready)",
        ),
        Row("throughput", lambda b: f"{_fmt(b['agents_per_second'], '.1f')} Agents/s"),
        Row("create->Ready p50/p95/p99", _latency),
        Row(
            "operator CPU",
            lambda b: (
                f"{_fmt(b['operator_cpu_seconds'], '.1f')} s "
                f"({_fmt(1000 * b['operator_cpu_seconds'] / _burst_n(b), '.1f')} ms/Agent)"
            ),
        ),
        Row("CPU, create to all Ready", lambda b: _machine_cpu(b.get("machine_cpu"))),
        Row("full GC collections", lambda b: str(b.get("full_collections", "-"))),
        Lines(_burst_requests),
    ),
    Target(
        lambda b: bool(b["agents_per_second"] >= TARGET_BURST_RATE * 0.999),
        lambda b: (
            f"burst: {_fmt(b['agents_per_second'], '.1f')} Agents/s "
            f"(target >= {TARGET_BURST_RATE:g}/s, i.e. 1,000 in <= {1000 / TARGET_BURST_RATE:g} s)"
        ),
    ),
)

# -- baseline

BASELINE = Section(
    "baseline",
    lambda b: (
        f"baseline (API-bound limit: the same writes, no operator, {b['clients']} clients, "
        + ("the bench's two watches on as in the burst)" if b.get("watched") else "no watches)")
    ),
    (
        Row(
            "requests",
            lambda b: (
                f"{b['requests']} ({_fmt(b['requests_per_agent'])} per Agent"
                f"{', reads included' if b['includes_reads'] else ', writes only'})"
            ),
        ),
        Row("time", lambda b: f"{_fmt(b['seconds'])} s"),
        Row(
            "limit",
            lambda b: (
                f"{_fmt(b['agents_per_second'], '.1f')} Agents/s "
                f"({_fmt(b['requests_per_second'], '.0f')} requests/s)"
            ),
        ),
        Row("operator / limit", lambda b: f"{_fmt(100 * b['operator_fraction'], '.0f')} %"),
        Row("CPU", lambda b: _machine_cpu(b.get("machine_cpu"))),
        Row(
            "operator / limit at most",
            lambda b: (
                f"{_fmt(100 * b.get('cpu_bound_fraction', math.nan), '.0f')} % "
                "(the burst's CPU spread over every core)"
            ),
        ),
    ),
    Target(
        lambda b: bool(b["operator_fraction"] >= TARGET_BASELINE_FRACTION),
        lambda b: (
            f"burst at {_fmt(100 * b['operator_fraction'], '.0f')} % of the API-bound "
            f"limit (target >= {100 * TARGET_BASELINE_FRACTION:.0f} %)"
        ),
    ),
)

# -- steady

STEADY = Section(
    "steady",
    lambda s: (
        f"steady: {s['rate']:g} Agents/s for {s['seconds']:g} s ({s['ready']}/{s['created']} Ready)"
    ),
    (
        Row("create->Ready p50/p95/p99", _latency),
        Row(
            "client schedule lag p99",
            lambda s: f"{_fmt(1000 * s['schedule_lag_p99'], '.0f')} ms",
        ),
    ),
    Target(
        lambda s: bool(s["latency"]["p99"] <= TARGET_STEADY_P99 and s["ready"] == s["created"]),
        lambda s: (
            f"steady {s['rate']:g}/s: p99 {_fmt(s['latency']['p99'])} s "
            f"(target <= {TARGET_STEADY_P99:g} s)"
        ),
    ),
)

# -- scale

SCALE = Section(
    "scale",
    lambda s: f"scale: {s['agents']} Agents + {s['instances']} AgentInstances",
    (
        Row(
            "last batch",
            lambda s: (
                f"{s['created']} in {_fmt(s['seconds'], '.1f')} s "
                f"({_fmt(s['agents_per_second'], '.1f')} Agents/s)"
            ),
        ),
        Row("RSS idle", lambda s: f"{_fmt(s['idle_rss_mb'], '.0f')} MB"),
        Row("RSS at scale (peak)", _rss),
        Row("store on disk", lambda s: f"{s['store_bytes'] / 1e6:.1f} MB"),
    ),
    Target(
        lambda s: bool(s["rss_mb"] <= TARGET_RSS_MB),
        lambda s: (
            f"RSS {_fmt(s['rss_mb'], '.0f')} MB at {s['agents']} Agents "
            f"(target <= {TARGET_RSS_MB:g} MB at 10,000)"
        ),
    ),
)

# -- restart


def _objects(restart: Result) -> int:
    return max(1, int(restart["live_agents"] + restart["live_instances"]))


def _remirrored(restart: Result) -> str:
    done = "" if restart.get("finished", True) else "NOT FINISHED after "
    return (
        f"{done}{_fmt(restart['remirror_seconds'])} s "
        f"(resumes: {restart['resumes_agent']} Agent, {restart['resumes_instance']} "
        f"AgentInstance; swept {restart['swept']})"
    )


RESTART = Section(
    "restart",
    lambda r: (
        f"restart: {r['live_agents']} Agents + {r['live_instances']} "
        f"AgentInstances, {r['deleted_while_down']} Agents deleted while down"
    ),
    (
        Row("healthy after", lambda r: f"{_fmt(r['healthy_seconds'])} s"),
        Row("re-mirrored + swept in", _remirrored),
        Row("CPU, start to re-mirrored", lambda r: _machine_cpu(r.get("machine_cpu"))),
        Row("full GC collections", lambda r: str(r.get("full_collections", "-"))),
        Lines(
            lambda r: [
                "  API requests per object (Agent or AgentInstance):",
                *_request_rows(r["requests"], _objects(r), {}),
            ]
        ),
        Row(
            "store verify",
            lambda r: f"{'ok' if r['verify_exit'] == 0 else 'DRIFT'} (exit {r['verify_exit']})",
        ),
        Row("RSS after restart (peak)", _rss),
    ),
    Target(
        lambda r: bool(
            r["remirror_seconds"] <= TARGET_RESTART_S
            and r.get("finished", True)
            and r["verify_exit"] == 0
        ),
        lambda r: (
            f"restart re-mirror of {_objects(r)} objects: "
            f"{_fmt(r['remirror_seconds'], '.1f')} s (target <= {TARGET_RESTART_S:g} s "
            "for 10,000 Agents)"
        ),
    ),
)

#: The tables, in the order the phases run.
SECTIONS: tuple[Section, ...] = (BURST, BASELINE, STEADY, SCALE, RESTART)


# --------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------


#: The rows of the memory table: where ``results`` keeps each phase's readings.
MEMORY_PHASES = ("idle", "burst", "steady", "scale", "restart")


def _memory_of(results: Result, phase: str) -> Result | None:
    if phase == "idle":
        return results.get("idle_memory")
    memory: Result | None = (results.get(phase) or {}).get("memory")
    return memory


def _mib(record: Result, when: str, name: str) -> str:
    return _fmt(float(record.get(when, {}).get(name, math.nan)), ".0f")


def memory_table(results: Result) -> list[tuple[bool, str]]:
    """Peak and settled memory per phase (MiB), OOM kills; the memory targets."""
    rows = [(phase, m) for phase in MEMORY_PHASES if (m := _memory_of(results, phase))]
    if not rows:
        return []
    limit = next((m.get("limit") for _, m in rows if m.get("limit")), None)
    print(
        "\nmemory (MiB; peak sampled every 0.5 s during the phase, settled = when it went quiet"
        + (f"; container limit {limit:g} MiB" if limit else "; no container limit")
        + ")"
    )
    print(f"  {'phase':<9}{'RSS peak':>9}{'settled':>9}{'cgroup peak':>13}{'settled':>9}  OOM")
    checks: list[tuple[bool, str]] = []
    for phase, record in rows:
        oom = (
            "-"
            if "restarts" not in record
            else (
                f"{'OOM-killed' if record['oom_killed'] else 'no'}, {record['restarts']} restarts"
            )
        )
        print(
            f"  {phase:<9}{_mib(record, 'peak', 'rss'):>9}{_mib(record, 'now', 'rss'):>9}"
            f"{_mib(record, 'peak', 'cgroup_usage'):>13}{_mib(record, 'now', 'cgroup_usage'):>9}"
            f"  {oom}"
        )
        if record.get("restarts") or record.get("oom_killed"):
            checks.append((False, f"{phase}: the operator was OOM-killed or restarted"))
    idle = _memory_of(results, "idle")
    if idle:
        rss = float(idle["now"].get("rss", math.nan))
        checks.append(
            (
                rss <= TARGET_IDLE_RSS_MB,
                f"idle RSS {rss:.0f} MiB (target <= {TARGET_IDLE_RSS_MB:g})",
            )
        )
    for phase in ("scale", "restart"):
        held = _memory_of(results, phase)
        if held:
            rss = float(held["now"].get("rss", math.nan))
            checks.append(
                (
                    rss <= TARGET_RSS_MB,
                    f"{phase}: settled RSS {rss:.0f} MiB (target <= {TARGET_RSS_MB:g} MiB "
                    "at 10,000 Agents + 10,000 instances)",
                )
            )
    return checks


def report(results: Result) -> list[tuple[bool, str]]:
    """Print the tables of the phases that ran and the targets; ``(met, text)`` per target."""
    environment = results["environment"]
    print(
        f"\nreconcile bench: {environment['cpus']} CPUs, load at start "
        f"{environment['load_start']}, kubernetes {environment['kubernetes']}"
    )
    checks: list[tuple[bool, str]] = []
    for section in SECTIONS:
        result = results.get(section.phase)
        if not result:
            continue
        print(f"\n{section.heading(result)}")
        for row in section.rows:
            for line in row.lines(result):
                print(line)
        checks.append((section.target.met(result), section.target.text(result)))
    checks += memory_table(results)
    if checks:
        print("\ntargets (2-core reference machine):")
        for ok, text in checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return checks


def plot(results: Result, path: Path) -> None:
    """A histogram of create->Ready per latency phase (needs matplotlib)."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        log("--png: matplotlib is not installed; no plot")
        return
    phases = [(p, results[p]["latencies"]) for p in ("burst", "steady") if results.get(p)]
    if not phases:
        return
    fig, axes = plt.subplots(1, len(phases), figsize=(6 * len(phases), 4), squeeze=False)
    for ax, (phase, values) in zip(axes[0], phases, strict=True):
        ax.hist(values, bins=50)
        ax.set_title(f"{phase}: create->Ready (n={len(values)})")
        ax.set_xlabel("seconds")
        for q, style in ((0.5, "--"), (0.99, ":")):
            ax.axvline(percentile(values, q), linestyle=style, color="k", label=f"p{int(q * 100)}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    log(f"latency histogram: {path}")
