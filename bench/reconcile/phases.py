"""The five phases, in order, against one control plane and one operator process."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess

from . import audit
from .baseline import (
    READ_ORDER,
    WRITE_ORDER,
    operator_requests,
    per_agent_plans,
    replay_agent,
    templates_from,
)
from .client import Api, create_agents, wait_ready, watching
from .common import (
    API,
    NS_BASELINE,
    NS_BURST,
    NS_SCALE,
    NS_STEADY,
    WATCHED,
    WRITE_VERBS,
    latency_summary,
    log,
    percentile,
)
from .container import ContainerOperator, announce
from .procstats import (
    FULL_COLLECTION,
    CpuMeter,
    MemorySampler,
    PySpy,
    cpu_seconds,
    loadavg,
    operator_counters,
    rss_mb,
    smaps_mb,
    store_bytes,
    sweep_count,
    wait_quiet,
)

#: The phases in the order they run; each is the :class:`Bench` method of that name.
PHASES = ("burst", "baseline", "steady", "scale", "restart")


@dataclass
class Bench:
    args: argparse.Namespace
    plane: ControlPlane
    api: Api
    store_path: Path
    operator: OperatorProcess | ContainerOperator | None = None
    results: dict[str, Any] = field(default_factory=dict)
    agents_created: dict[str, int] = field(default_factory=dict)  # namespace -> count
    container: ContainerOperator | None = None
    sampler: MemorySampler | None = None

    # -- operator lifecycle
    def start_operator(self) -> OperatorProcess | ContainerOperator:
        if self.args.image:
            return self._start_container()
        args = [f"--namespace={ns}" for ns in WATCHED] + list(self.args.operator_arg)
        env = dict(item.split("=", 1) for item in self.args.operator_env)
        if self.args.tracemalloc:
            env["PYTHONPATH"] = str(Path(__file__).parent / "tracemalloc_site")
            env["STIGMER_BENCH_TRACEMALLOC"] = str(self.args.tracemalloc.resolve())
        process = OperatorProcess(
            self.plane.admin_kubeconfig,
            self.store_path,
            log_path=self.store_path.parent / "operator.log",
            args=args,
            env=env,
            startup_timeout=300,
        )
        self.operator = process  # before start: an interrupted start is still stopped
        process.start()
        return process

    def _start_container(self) -> ContainerOperator:
        """The chart's Pod from ``--image``; the same store volume on every start."""
        if self.container is None:
            self.container = ContainerOperator(
                self.plane,
                self.args.image,
                self.store_path.parent / "pod",
                extra_args=list(self.args.operator_arg),
                chart_values=list(self.args.chart_set),
            )
            self.store_path = self.container.store_path
            announce(self.container)
        self.operator = self.container
        self.container.start()
        return self.container

    def memory_now(self) -> dict[str, float]:
        """The operator's VmRSS and, in a container, its cgroup's figures (MiB)."""
        if self.operator is None:
            return {}
        values = {"rss": rss_mb(self.operator.pid).get("VmRSS", math.nan)}
        if isinstance(self.operator, ContainerOperator):
            cgroup = self.operator.cgroup_memory()
            if cgroup is not None:
                values |= {
                    "cgroup_usage": cgroup.usage,
                    "cgroup_working_set": cgroup.working_set,
                    "cgroup_rss": cgroup.rss,
                }
        return values

    def memory_phase(self) -> dict[str, Any]:
        """Peak memory since the last call and the settled values now, plus any OOM kill."""
        record: dict[str, Any] = self.sampler.take() if self.sampler else {"now": self.memory_now()}
        if self.operator is not None:
            record["hwm"] = rss_mb(self.operator.pid).get("VmHWM", math.nan)
        if isinstance(self.operator, ContainerOperator):
            record |= self.operator.oom_record()
            record["limit"] = self.operator.memory_limit_mb
        return record

    def quiet_operator(self, timeout: float = 120.0) -> float:
        """Wait until the operator stops writing and reconciling."""
        assert self.operator is not None
        operator = self.operator

        def probe() -> tuple[int, int]:
            counters = operator_counters(operator)
            return sum(counters["writes"].values()), sum(counters["reconciles"].values())

        return wait_quiet(probe, self.args.quiet, timeout)

    def cpu_meter(self) -> CpuMeter:
        """CPU of the operator, each control-plane process and the bench, and the machine's."""
        return CpuMeter(
            lambda: {"operator": self.operator.pid if self.operator else None, **self.plane.pids}
        )

    # -- 1. burst
    def burst(self) -> None:
        n, clients = self.args.n, self.args.clients
        log(f"burst: {n} Agents, {clients} clients (load {loadavg()})")
        assert self.operator is not None
        names = [f"burst-{i:05d}" for i in range(n)]
        api_before = self.api.apiserver_requests()
        op_before = operator_counters(self.operator)
        cpu_before = cpu_seconds(self.operator.pid)
        reads_from = datetime.now(UTC)
        self.memory_phase()  # the phase's peak starts here
        meter = self.cpu_meter()
        with (
            watching(self.api, NS_BURST) as (agents, instances),
            PySpy(self.args.py_spy, self.operator.pid, "burst", gil=self.args.py_spy_gil),
        ):
            meter.start()
            created = create_agents(self.api, NS_BURST, names, clients)
            create_done = time.monotonic()
            ok = [name for name in names if name not in created.failed]
            done = wait_ready(ok, agents, instances, self.args.timeout, "burst")
            machine_cpu = meter.take()
            watch_events = agents.events + instances.events
        self.agents_created[NS_BURST] = len(ok)
        first = min(created.sent.values())
        last = max(done.values()) if done else math.nan
        latencies = [done[name] - created.sent[name] for name in done]
        elapsed = last - first
        self.quiet_operator()
        cpu = cpu_seconds(self.operator.pid) - cpu_before
        api_after = self.api.apiserver_requests()
        op_after = operator_counters(self.operator)
        requests = operator_requests(api_before, api_after, len(ok))
        pipeline_writes = op_after["writes"] - op_before["writes"]
        readers = audit.reads_since(self.plane.audit_log, reads_from)
        self.results["burst"] = {
            "n": n,
            "clients": clients,
            "failed_creates": len(created.failed),
            "ready": len(done),
            "create_seconds": create_done - first,
            "all_ready_seconds": elapsed,
            "agents_per_second": len(done) / elapsed if elapsed > 0 else math.nan,
            "latency": latency_summary(latencies),
            "latencies": latencies,
            "operator_cpu_seconds": cpu,
            "machine_cpu": machine_cpu,
            "full_collections": op_after["collections"].get(FULL_COLLECTION, math.nan)
            - op_before["collections"].get(FULL_COLLECTION, math.nan),
            "watch_events": watch_events,
            "requests": {" ".join(k).strip(): v for k, v in sorted(requests.items())},
            "readers": {" ".join(k): v for k, v in sorted(readers.items())},
            "pipeline_writes": {" ".join(k): v for k, v in sorted(pipeline_writes.items())},
            "reconciles": {
                " ".join(k): v
                for k, v in sorted((op_after["reconciles"] - op_before["reconciles"]).items())
            },
            "memory": self.memory_phase(),
            "load": loadavg(),
        }
        self._requests = requests
        if created.failed:
            log(f"  {len(created.failed)} creates failed, e.g. {min(created.failed.values())}")
        if len(done) < len(ok):
            log(f"  TIMEOUT: {len(ok) - len(done)} Agents not Ready after {self.args.timeout}s")

    # -- 2. baseline
    def baseline(self) -> None:
        requests = getattr(self, "_requests", None)
        if requests is None:
            log("baseline: needs the burst phase; skipped")
            return
        n, clients = self.args.n, self.args.clients
        verbs = WRITE_VERBS + (("GET",) if self.args.baseline_reads else ())
        replayable = set(WRITE_ORDER) | (set(READ_ORDER) if self.args.baseline_reads else set())
        totals = {k: v for k, v in requests.items() if k[0] in verbs}
        skipped = {" ".join(k): v for k, v in totals.items() if k not in replayable}
        totals = {k: v for k, v in totals.items() if k in replayable}
        log(
            f"baseline: {sum(totals.values()) + n} requests for {n} Agents, {clients} clients "
            f"(load {loadavg()})"
        )
        if skipped:
            log(f"  not replayable, left out: {skipped}")
        templates = templates_from(self.api, NS_BURST, "burst-00000")
        plans = per_agent_plans(totals, n)
        self.api.ensure_namespace(NS_BASELINE)
        names = [f"base-{i:05d}" for i in range(n)]
        # The burst ran under the bench's own two watches (how it sees Ready):
        # the API server serves them here too, unless asked not to.
        watched = not self.args.baseline_unwatched
        meter = self.cpu_meter()
        with (
            watching(self.api, NS_BASELINE) if watched else contextlib.nullcontext(),
            ThreadPoolExecutor(clients, thread_name_prefix="baseline") as pool,
        ):
            meter.start()
            started = time.monotonic()
            sent = sum(
                pool.map(
                    lambda i: replay_agent(self.api, NS_BASELINE, names[i], plans[i], templates),
                    range(n),
                )
            )
            elapsed = time.monotonic() - started
            machine_cpu = meter.take()
        burst = self.results.get("burst", {})
        burst_busy = burst.get("machine_cpu", {}).get("busy", math.nan)
        rate = n / elapsed
        self.results["baseline"] = {
            "n": n,
            "clients": clients,
            "requests": sent,
            "requests_per_agent": sent / n,
            "includes_reads": self.args.baseline_reads,
            "watched": watched,
            "not_replayed": skipped,
            "seconds": elapsed,
            "agents_per_second": rate,
            "requests_per_second": sent / elapsed,
            "operator_fraction": burst.get("agents_per_second", math.nan) / rate,
            "machine_cpu": machine_cpu,
            # The burst cannot take less than its CPU spread over every core:
            # the highest operator / limit its CPU per Agent allows.
            "cpu_bound_fraction": elapsed * (os.cpu_count() or 1) / burst_busy,
            "load": loadavg(),
        }

    # -- 3. steady
    def steady(self) -> None:
        rate, seconds = self.args.steady_rate, self.args.steady_seconds
        count = int(rate * seconds)
        log(f"steady: {rate:g} Agents/s for {seconds:g} s ({count}) (load {loadavg()})")
        assert self.operator is not None
        names = [f"steady-{i:05d}" for i in range(count)]
        self.memory_phase()
        with (
            watching(self.api, NS_STEADY) as (agents, instances),
            PySpy(self.args.py_spy, self.operator.pid, "steady", gil=self.args.py_spy_gil),
        ):
            created = create_agents(self.api, NS_STEADY, names, self.args.clients, rate=rate)
            ok = [name for name in names if name not in created.failed]
            done = wait_ready(ok, agents, instances, self.args.timeout, "steady")
        self.agents_created[NS_STEADY] = len(ok)
        latencies = [done[name] - created.sent[name] for name in done]
        self.results["steady"] = {
            "rate": rate,
            "seconds": seconds,
            "created": len(ok),
            "failed_creates": len(created.failed),
            "ready": len(done),
            "latency": latency_summary(latencies),
            "latencies": latencies,
            "schedule_lag_p99": percentile(created.lag, 0.99),
            "load": loadavg(),
        }
        self.quiet_operator()
        self.results["steady"]["memory"] = self.memory_phase()

    # -- 4. scale
    def scale(self) -> None:
        assert self.operator is not None
        have = sum(self.agents_created.values())
        more = max(0, self.args.scale_n - have)
        log(f"scale: {more} more Agents to reach {self.args.scale_n} (load {loadavg()})")
        names = [f"scale-{i:05d}" for i in range(more)]
        self.memory_phase()
        started = time.monotonic()
        with watching(self.api, NS_SCALE) as (agents, instances):
            created = create_agents(self.api, NS_SCALE, names, self.args.clients)
            ok = [name for name in names if name not in created.failed]
            done = wait_ready(ok, agents, instances, self.args.timeout + more / 10, "scale")
        elapsed = time.monotonic() - started
        self.agents_created[NS_SCALE] = len(ok)
        self.quiet_operator()
        total = sum(self.agents_created.values())
        memory = rss_mb(self.operator.pid)
        self.results["scale"] = {
            "agents": total,
            "instances": total,
            "created": len(ok),
            "ready": len(done),
            "seconds": elapsed,
            "agents_per_second": len(done) / elapsed if elapsed > 0 else math.nan,
            "rss_mb": memory.get("VmRSS", math.nan),
            "peak_rss_mb": memory.get("VmHWM", math.nan),
            "idle_rss_mb": self.results.get("idle_rss_mb", math.nan),
            "store_bytes": store_bytes(self.store_path),
            "smaps_mb": smaps_mb(self.operator.pid),
            "memory": self.memory_phase(),
            "load": loadavg(),
        }

    # -- 5. restart
    def restart(self) -> None:
        assert self.operator is not None
        self.operator.stop(timeout=60)
        victims_ns = NS_SCALE if self.agents_created.get(NS_SCALE) else NS_BURST
        victims = self._names(victims_ns)[: self.args.restart_delete]
        log(
            f"restart: operator stopped; deleting {len(victims)} Agents in {victims_ns} "
            f"(load {loadavg()})"
        )
        for name in victims:
            self.api.call("DELETE", f"{API}/namespaces/{victims_ns}/agents/{name}")
        # The garbage collector removes the default instances: wait, so the sweep has both kinds.
        deadline = time.monotonic() + 120
        for name in victims:
            path = f"{API}/namespaces/{victims_ns}/agentinstances/{name}-default"
            while self.api.call("GET", path)[0] != 404 and time.monotonic() < deadline:
                time.sleep(0.2)
        live_agents = sum(self._count(ns, "agents") for ns in WATCHED)
        live_instances = sum(self._count(ns, "agentinstances") for ns in WATCHED)
        api_before = self.api.apiserver_requests()
        self.memory_phase()  # the stopped operator's readings end here
        # A process appends every run to one log; a container's log is its own run's.
        earlier_lines = 0 if self.args.image else len(self.operator.log_tail(_ALL).splitlines())
        meter = self.cpu_meter()
        meter.start()  # the operator is stopped: all its CPU from here on counts
        started = time.monotonic()
        process = self.start_operator()
        healthy = time.monotonic() - started
        idle_mark = self.args.quiet

        def probe() -> tuple[int, int, int]:
            counters = operator_counters(process)["reconciles"]
            agents = sum(v for (k, op, _), v in counters.items() if k == "Agent" and op == "resume")
            instances = sum(
                v for (k, op, _), v in counters.items() if k == "AgentInstance" and op == "resume"
            )
            deletes = sum(v for (_, op, _), v in counters.items() if op == "delete")
            return agents, instances, deletes

        with PySpy(self.args.py_spy, process.pid, "restart", gil=self.args.py_spy_gil):
            # Every scrape makes the operator count its store: poll gently.
            deadline = started + self.args.restart_timeout
            finished = False
            while time.monotonic() < deadline:
                agents, instances, _ = probe()
                resumed = agents >= live_agents and instances >= live_instances
                # The start-up sweep runs beside the resumes: done when it logged its count.
                if resumed and sweep_count(this_run_log(process, earlier_lines)) is not None:
                    finished = True
                    break
                time.sleep(1.0)
            last_change = wait_quiet(probe, idle_mark, 120) if finished else time.monotonic()
        remirror = last_change - started
        machine_cpu = meter.take()
        agents, instances, _ = probe()
        requests = operator_requests(api_before, self.api.apiserver_requests(), 0)
        sweep = sweep_count(this_run_log(process, earlier_lines))
        verify = subprocess.run(
            [
                sys.executable,
                "-P",
                "-m",
                "stigmer_operator",
                "store",
                "verify",
                f"--path={self.store_path}",
                *(f"--namespace={ns}" for ns in WATCHED),
            ],
            env={**os.environ, "KUBECONFIG": str(self.plane.admin_kubeconfig)},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        memory = rss_mb(process.pid)
        self.results["restart"] = {
            "live_agents": live_agents,
            "live_instances": live_instances,
            "machine_cpu": machine_cpu,
            "full_collections": operator_counters(process)["collections"].get(
                FULL_COLLECTION, math.nan
            ),
            "deleted_while_down": len(victims),
            "healthy_seconds": healthy,
            "remirror_seconds": remirror,
            "finished": finished,
            "resumes_agent": agents,
            "resumes_instance": instances,
            "swept": sweep,
            "requests": {" ".join(k).strip(): v for k, v in sorted(requests.items())},
            "verify_exit": verify.returncode,
            "verify_tail": (verify.stdout + verify.stderr)[-400:],
            "rss_mb": memory.get("VmRSS", math.nan),
            "peak_rss_mb": memory.get("VmHWM", math.nan),
            "memory": self.memory_phase(),
            "load": loadavg(),
        }

    def _names(self, namespace: str) -> list[str]:
        listing = self.api.json("GET", f"{API}/namespaces/{namespace}/agents")
        return sorted(item["metadata"]["name"] for item in listing.get("items") or [])

    def _count(self, namespace: str, plural: str) -> int:
        listing = self.api.json("GET", f"{API}/namespaces/{namespace}/{plural}")
        return len(listing.get("items") or [])


#: ``log_tail`` lines that stand for the whole log.
_ALL = 10**9


def this_run_log(process: OperatorProcess | ContainerOperator, earlier_lines: int) -> str:
    """The log of the operator's current run: what came after ``earlier_lines``."""
    return "\n".join(process.log_tail(_ALL).splitlines()[earlier_lines:])
