"""Flags, and one run: control plane, operator, the chosen phases, the report."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stigmer_testing.controlplane import ControlPlane

from . import __doc__ as PACKAGE_DOC
from . import audit
from .client import Api
from .common import REPO_ROOT, WATCHED, log
from .phases import PHASES, Bench
from .procstats import MemorySampler, loadavg
from .report import plot, report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(PACKAGE_DOC or "").split("\n")[0])
    parser.add_argument("--n", type=int, help="Agents in the burst and baseline (1000)")
    parser.add_argument("--clients", type=int, default=16, help="client threads creating Agents")
    parser.add_argument("--steady-rate", type=float, default=20.0, help="Agents/s")
    parser.add_argument("--steady-seconds", type=float, help="(60)")
    parser.add_argument("--scale-n", type=int, help="Agents held at the scale phase (10000)")
    parser.add_argument("--restart-delete", type=int, default=10, help="Agents deleted while down")
    parser.add_argument(
        "--quick", action="store_true", help="n=100, steady 5 s, scale 500 (explicit sizes win)"
    )
    parser.add_argument("--phases", default=",".join(PHASES), help=f"subset of {','.join(PHASES)}")
    parser.add_argument(
        "--baseline-reads",
        action="store_true",
        help="replay the operator's GETs in the baseline too",
    )
    parser.add_argument(
        "--baseline-unwatched",
        action="store_true",
        help="replay without the bench's two watches, as this bench used to (the burst has them)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per-phase wait for Ready")
    parser.add_argument(
        "--quiet",
        type=float,
        default=3.0,
        help="seconds without operator activity that count as done",
    )
    parser.add_argument(
        "--restart-timeout",
        type=float,
        default=900.0,
        help="give up waiting for the restarted operator to resume everything after this",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--png", type=Path, help="latency histogram (needs matplotlib)")
    parser.add_argument("--py-spy", type=Path, help="py-spy record each phase into this folder")
    parser.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="py-spy samples only the thread holding the GIL (CPU, not waiting)",
    )
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        help="extra argument for stigmer-operator run (repeatable)",
    )
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        help="NAME=VALUE for the operator's environment (repeatable)",
    )
    parser.add_argument(
        "--image",
        help="run the operator from this image as the chart's Pod, under its memory limit",
    )
    parser.add_argument(
        "--chart-set",
        action="append",
        default=[],
        help="with --image: a helm --set for the chart, e.g. resources.limits.memory=256Mi",
    )
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        help="the operator writes tracemalloc snapshots here every 20 s "
        "(bench/tracemalloc_summary.py reads them; process mode only)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the control plane and store here")
    parser.add_argument(
        "--hold", type=float, default=0, help="keep everything running this long at the end"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    sizes = {"n": (1000, 100), "steady_seconds": (60.0, 5.0), "scale_n": (10000, 500)}
    for name, (full, quick) in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return args


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM, and SIGINT even when a non-interactive shell started us in the
    # background with it ignored: unwind, so the operator and the control
    # plane are stopped by the context managers instead of left behind.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": {"cpus": os.cpu_count(), "load_start": loadavg()},
    }
    failed = False
    started = time.monotonic()
    try:
        log(f"control plane starting (workdir {workdir}, load {loadavg()})")
        plane = ControlPlane(
            crds=REPO_ROOT / "crds",
            workdir=workdir / "controlplane",
            keep_workdir=args.workdir is not None,
            audit_policy=audit.write_policy(workdir),
        )
        with plane:
            results["environment"]["kubernetes"] = plane.versions.kubernetes
            api = Api(plane.admin_kubeconfig, maxsize=max(args.clients, 2 * int(args.steady_rate)))
            for namespace in WATCHED:
                api.ensure_namespace(namespace)
            bench = Bench(args, plane, api, workdir / "store", results=results)
            results["controlplane_seconds"] = plane.startup_seconds
            with MemorySampler(bench.memory_now) as bench.sampler:
                try:
                    bench.start_operator()
                    time.sleep(args.quiet)  # let kopf settle after its initial listings
                    results["idle_memory"] = bench.memory_phase()
                    results["idle_rss_mb"] = results["idle_memory"]["now"].get("rss", math.nan)
                    for phase in PHASES:
                        if phase in args.phases:
                            began = time.monotonic()
                            getattr(bench, phase)()
                            results.setdefault("phase_seconds", {})[phase] = (
                                time.monotonic() - began
                            )
                    if args.hold:
                        log(
                            f"--hold: operator pid {bench.operator and bench.operator.pid}, "
                            f"KUBECONFIG={plane.admin_kubeconfig}; holding {args.hold:g} s"
                        )
                        time.sleep(args.hold)
                finally:
                    if bench.operator is not None:
                        bench.operator.stop(timeout=60)
                        if bench.operator.returncode not in (0, None):
                            log(
                                f"operator exited with {bench.operator.returncode}:\n"
                                f"{bench.operator.log_tail(40)}"
                            )
                            failed = True
    except Exception:
        failed = True
        raise
    finally:
        results["wall_seconds"] = time.monotonic() - started
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2, default=str))
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    checks = report(results)
    if args.png:
        plot(results, args.png)
    incomplete = any(
        results.get(p, {}).get("ready", 0)
        < results.get(p, {}).get("created", results.get(p, {}).get("n", 0))
        for p in ("burst", "steady", "scale")
        if p in results
    )
    if failed or incomplete:
        return 2
    return 1 if args.strict and not all(ok for ok, _ in checks) else 0
