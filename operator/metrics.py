"""Prometheus metrics: what a platform team graphs and alerts on.

Step durations and failures come from the pipeline's observer hook, so steps
stay free of metrics code. Store counts and size are read on scrape by a
collector, so an idle operator does no work to keep them current; the store
keeps its counts up to date as it writes, so a scrape is a few point reads,
never a scan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import (
    GC_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from stigmer_operator.backlog import Backlog
from stigmer_operator.store import Store, StoreError

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
# What every Python exporter offers: the process's CPU, memory and file
# descriptors, and the garbage collector's collections per generation.
REGISTRY.register(PROCESS_COLLECTOR)
REGISTRY.register(GC_COLLECTOR)

STEP_DURATION = Histogram(
    "stigmer_pipeline_step_duration_seconds",
    "Duration of one pipeline step.",
    ["pipeline", "step"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
    registry=REGISTRY,
)
STEP_FAILURES = Counter(
    "stigmer_pipeline_step_failures_total",
    "Pipeline steps that raised, by reason.",
    ["pipeline", "step", "reason"],
    registry=REGISTRY,
)
RECONCILES = Counter(
    "stigmer_reconcile_total",
    "Handler invocations by kind, operation and result.",
    ["kind", "operation", "result"],
    registry=REGISTRY,
)
STARTUP_LISTING = Counter(
    "stigmer_startup_listing_answers_total",
    "What the start-up listing answered the resumes, by kind and answer "
    "(listed, absent: no read needed; unknown: read from the API).",
    ["kind", "answer"],
    registry=REGISTRY,
)
API_WRITES = Counter(
    "stigmer_kubernetes_writes_total",
    "Writes the operator sent to the Kubernetes API, by verb and resource.",
    ["verb", "resource"],
    registry=REGISTRY,
)


class StoreCollector(Collector):
    """Reads store counts and size at scrape time."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "stigmer_store_writable",
            "1 while the store takes writes; 0 while its volume is full or read-only "
            "(the cluster is still reconciled, the mirror is behind).",
            value=1 if self._store.writable else 0,
        )
        try:
            stats = self._store.stats()
        except StoreError as error:  # a closed store during shutdown
            logger.debug("store stats unavailable: %s", error)
            return
        resources = GaugeMetricFamily(
            "stigmer_store_resources", "Live mirrored resources.", labels=["kind"]
        )
        resources.add_metric(["Agent"], stats.agents)
        resources.add_metric(["AgentInstance"], stats.agent_instances)
        yield resources
        yield GaugeMetricFamily(
            "stigmer_store_history_entries",
            "Stored versions of resources, live and deleted.",
            value=stats.history_entries,
        )
        yield GaugeMetricFamily(
            "stigmer_store_change_log_entries",
            "Entries in the change log (published or not).",
            value=stats.change_log_entries,
        )
        yield GaugeMetricFamily(
            "stigmer_store_bytes", "Bytes the store occupies on disk.", value=stats.bytes_on_disk
        )
        yield GaugeMetricFamily(
            "stigmer_store_last_sequence", "Newest change-log sequence.", value=stats.last_sequence
        )


class BacklogCollector(Collector):
    """The watch backlogs (:mod:`.backlog`), read at scrape time, summed per kind."""

    def __init__(self) -> None:
        self._backlogs: list[tuple[str, Backlog]] = []

    def track(self, plural: str, backlog: Backlog) -> None:
        self._backlogs.append((plural, backlog))

    def untrack(self, plural: str, backlog: Backlog) -> None:
        self._backlogs = [(p, b) for p, b in self._backlogs if b is not backlog]

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "admitted": GaugeMetricFamily(
                "stigmer_watch_backlog_admitted",
                "Objects handed to kopf's workers (queued for one or held by one).",
                labels=["resource"],
            ),
            "parked": GaugeMetricFamily(
                "stigmer_watch_backlog_parked",
                "Objects whose newest watch event waits, compressed, for room among the admitted.",
                labels=["resource"],
            ),
            "parked_bytes": GaugeMetricFamily(
                "stigmer_watch_backlog_parked_bytes",
                "Bytes the parked watch events occupy.",
                labels=["resource"],
            ),
            "parked_total": CounterMetricFamily(
                "stigmer_watch_backlog_parks",
                "Objects parked because the backlog was full (a sign of a backlog, not a fault).",
                labels=["resource"],
            ),
        }
        totals: dict[str, dict[str, float]] = {}
        for plural, backlog in list(self._backlogs):
            total = totals.setdefault(plural, dict.fromkeys(families, 0.0))
            total["admitted"] += backlog.admitted
            total["parked"] += backlog.parked
            total["parked_bytes"] += backlog.parked_bytes
            total["parked_total"] += backlog.parked_total
        for plural, total in totals.items():
            for name, family in families.items():
                family.add_metric([plural], total[name])
        yield from families.values()


BACKLOG = BacklogCollector()
REGISTRY.register(BACKLOG)


def serve(port: int, store: Store) -> None:
    """Expose ``/metrics`` on ``port`` (0 disables) with the store collector attached."""
    if port == 0:
        return
    REGISTRY.register(StoreCollector(store))
    start_http_server(port, registry=REGISTRY)
    logger.info("metrics on :%d/metrics", port)
