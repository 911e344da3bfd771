"""``stigmer-operator run``: open the store, configure kopf, run until signalled.

Everything that lives for the whole process is built here once (settings,
store, Kubernetes client, metrics) and handed to the handlers through kopf's
``memo``, so the handlers stay thin and tests can build the same objects.
The store is closed on every exit path: kopf returns on SIGTERM/SIGINT, and
the ``finally`` flushes RocksDB before the process ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import logging
import sys
from typing import Any

import kopf
import kubernetes

from stigmer_operator import kopf_compat, logs, metrics
from stigmer_operator.api.kinds import GROUP, Kind
from stigmer_operator.first_listing import FirstListings
from stigmer_operator.handlers import common
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.observers import OBSERVERS, RESUMES
from stigmer_operator.kubeclient import load_api_client
from stigmer_operator.pipeline.deps import Deps, PipelineSettings
from stigmer_operator.pipeline.kube_api import ApiKubeEffects
from stigmer_operator.settings import LogFormat, OperatorSettings
from stigmer_operator.store import Store, StoreOpenError, maintenance
from stigmer_operator.store.opening import open_for_operator

logger = logging.getLogger(__name__)

FIELD_MANAGER = "stigmer-operator"
EXIT_STORE = 3

#: The garbage collector's thresholds (generation 0, 1, 2); Python's
#: defaults are (700, 10, 10). See :func:`tune_gc`.
GC_THRESHOLDS = (10_000, 10, 10)


def register(subparsers: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser("run", help="run the operator against the current cluster")
    parser.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        help="namespace to watch (repeatable); default: all namespaces",
    )
    parser.add_argument("--store-path", help="RocksDB store directory (default .stigmer/store)")
    parser.add_argument(
        "--platform-namespace",
        dest="platform_namespaces",
        action="append",
        help="namespace whose Agents may use scope: platform (repeatable)",
    )
    parser.add_argument("--log-format", choices=[f.value for f in LogFormat])
    parser.add_argument("--log-level")
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--health-port", type=int)
    parser.add_argument("--peering", help="kopf peering name; empty = standalone")
    parser.add_argument("--priority", type=int)
    parser.add_argument("--max-workers", type=int)
    parser.add_argument(
        "--worker-limit", type=int, help="objects per kind and namespace processed at once; 0: all"
    )
    parser.add_argument(
        "--backlog-limit",
        type=int,
        help="objects per kind and namespace handed to kopf at once; others wait parked; 0: all",
    )
    parser.add_argument(
        "--worker-idle-seconds", type=float, help="a worker without events frees its slot after"
    )
    parser.add_argument("--sweep-interval", type=float, help="seconds; 0: only at start-up")
    parser.add_argument(
        "--rebuild-store",
        action="store_true",
        default=None,
        help="wipe the store and rebuild it from the cluster (history is lost)",
    )
    maintenance.add_arguments(parser)
    parser.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    fields = (
        "namespaces",
        "store_path",
        "platform_namespaces",
        "log_format",
        "log_level",
        "metrics_port",
        "health_port",
        "peering",
        "priority",
        "max_workers",
        "worker_limit",
        "backlog_limit",
        "worker_idle_seconds",
        "sweep_interval",
        "rebuild_store",
        *maintenance.FIELDS,
    )
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    return run(OperatorSettings(**overrides))


def run(settings: OperatorSettings) -> int:
    """Run the operator until it is told to stop; returns the process exit code."""
    logs.configure(settings.log_format, settings.log_level)
    try:
        store = open_for_operator(
            settings.store_path, rebuild=settings.rebuild_store, retention=settings.retention
        )
    except StoreOpenError as error:
        print(f"stigmer-operator: {error}", file=sys.stderr)
        return EXIT_STORE
    exit_code = 0
    upkeep = maintenance.Maintenance.start(store, settings.store_maintenance_seconds)
    try:
        # Every sync handler runs in one of max_workers threads, each holding
        # at most one connection at a time.
        api_client = load_api_client(pool_maxsize=settings.max_workers)
        deps = build_deps(settings, store, api_client)
        metrics.serve(settings.metrics_port, store)
        _import_handlers()
        tune_gc()
        asyncio.run(_operate(settings, deps, api_client))
    finally:
        upkeep.stop()
        try:
            store.close()
        except Exception as error:  # e.g. the disk filled up and the final flush fails
            detail = " ".join(str(error).split()) or type(error).__name__
            print(
                f"stigmer-operator: closing the store at {settings.store_path} failed: {detail}",
                file=sys.stderr,
            )
            exit_code = EXIT_STORE
        else:
            logger.info("store closed")
    return exit_code


def build_deps(
    settings: OperatorSettings, store: Store, api_client: kubernetes.client.ApiClient
) -> Deps:
    """The objects every pipeline run needs, built once per process."""
    pipeline_settings = PipelineSettings(
        platform_namespaces=frozenset(settings.platform_namespaces),
        field_manager=FIELD_MANAGER,
    )
    return Deps(
        store=store,
        kube=ApiKubeEffects.from_settings(pipeline_settings, api_client),
        settings=pipeline_settings,
    )


def tune_gc() -> None:
    """Fewer collections of the young generation; what exists at start is never scanned.

    The operator holds state for every object it watches (kopf's per-object
    memories, :class:`.References`, the start-up listing), so a collection
    of the oldest generation walks all of it. With Python's default
    thresholds the short-lived objects of sixteen pipeline threads and the
    event loop survive a young collection while still in use, are promoted,
    and trigger a full collection every couple of seconds of a large
    start-up, a large share of its CPU (``docs/performance.md``). A young
    generation of 10,000 allocations lets them die young. Objects alive
    before the watches start (modules, kopf's registry) are moved out of
    the collector's sight for good.
    """
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()


def _import_handlers() -> None:
    """Importing the handler modules registers them with kopf's default registry.

    It also registers the watch-event observers (:mod:`.handlers.observers`).
    """
    import stigmer_operator.handlers  # noqa: F401


async def _operate(
    settings: OperatorSettings, deps: Deps, api_client: kubernetes.client.ApiClient
) -> None:
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    listings = _first_listings(settings)
    with contextlib.ExitStack() as stack:
        if listings is not None:  # before the backlog: recorded as they arrive
            stack.enter_context(kopf_compat.recorded_first_listings(listings, GROUP))
        # inside the backlog's wrapper: an event is done after its observer and resume
        stack.enter_context(kopf_compat.observed_events(_observers(), _resumes()))
        if settings.backlog_limit:
            stack.enter_context(kopf_compat.parked_backlog(settings.backlog_limit, GROUP))
        await kopf.operator(
            clusterwide=settings.clusterwide,
            namespaces=settings.namespaces,
            standalone=not settings.peering,
            peering_name=settings.peering or None,
            priority=settings.priority,
            liveness_endpoint=liveness,
            memo=OperatorMemo(
                deps=deps, settings=settings, api_client=api_client, first_listings=listings
            ),
        )


def _observers() -> dict[tuple[str, str], kopf_compat.EventObserver]:
    """Each kind's watch-event observer, by the group and plural kopf's watches name."""
    return {(GROUP, kind.plural): observer for kind, observer in OBSERVERS.items()}


def _resumes() -> dict[tuple[str, str], kopf_compat.Resume]:
    """Each kind's resume (:func:`.common.resume` runs it), by group and plural."""
    return {
        (GROUP, kind.plural): functools.partial(common.resume, kind, handler)
        for kind, handler in RESUMES.items()
    }


def _first_listings(settings: OperatorSettings) -> FirstListings | None:
    """What kopf's first listing covers: each kind in each watched namespace.

    ``None`` with namespace globs: their namespaces come and go, so the
    start-up sweep lists the objects itself.
    """
    if settings.namespace_globs:
        return None
    namespaces: list[str | None] = [*settings.namespaces] or [None]
    return FirstListings((kind.plural, namespace) for kind in Kind for namespace in namespaces)
