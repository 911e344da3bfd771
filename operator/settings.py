"""Operator configuration: flags and ``STIGMER_*`` environment variables.

One pydantic-settings model so the Helm chart (env vars), a developer (flags)
and the tests (constructor keywords) configure the same fields, validated the
same way. Flags win over environment, environment over defaults.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stigmer_operator.store.retention import Retention, days_ns


class LogFormat(enum.StrEnum):
    JSON = "json"
    TEXT = "text"


#: Threads for the synchronous pipelines (kopf's ``execution.max_workers``; the
#: API client's connection pool follows it). A pipeline spends most of its
#: time waiting for the API server, so the threads outnumber the cores; too
#: few leave the machine idle through a burst ("Tuning" in docs/performance.md).
MAX_WORKERS = 16
#: Per-object workers running at once, per watched kind and namespace (kopf's
#: ``queueing.worker_limit``). Every running worker holds its object's watch
#: bodies and handler state while it waits for a handler thread; a queued one
#: costs only its raw events. A few times ``max_workers``, so that workers
#: waiting for kopf's consistency or for their next event do not leave the
#: thread pool idle.
WORKER_LIMIT = 32
#: Objects of one watch handed to kopf at once (:mod:`.backlog`); the
#: others' newest events wait parked, compressed. Four times the worker limit:
#: enough queued behind the running workers that none idles between objects.
BACKLOG_LIMIT = 4 * WORKER_LIMIT
#: kopf's ``queueing.idle_timeout`` (its default is 5 s): a worker whose
#: object has no more events exits after this, giving its slot to the next.
#: The slot is idle meanwhile, so the linger caps throughput at
#: ``WORKER_LIMIT / WORKER_IDLE_SECONDS`` objects per second and kind (the
#: echo of kopf's own patch does not need it: kopf waits for that one with
#: ``consistency_timeout``). A restart of tens of thousands of objects,
#: one event each, is bounded by it once the operator's CPU is not
#: (docs/performance.md, "Tuning").
WORKER_IDLE_SECONDS = 0.1


class OperatorSettings(BaseSettings):
    """Everything ``stigmer-operator run`` can be told."""

    model_config = SettingsConfigDict(env_prefix="STIGMER_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch; empty means every namespace (cluster-wide).",
    )
    store_path: Path = Field(
        default=Path(".stigmer/store"), description="Directory of the RocksDB store."
    )
    platform_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["stigmer-system"],
        description="Namespaces whose Agents may use scope: platform.",
    )
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="0 disables /metrics.")
    health_port: int = Field(default=8081, ge=0, le=65535, description="0 disables /healthz.")
    peering: str = Field(default="", description="kopf peering name; empty = standalone.")
    priority: int = Field(default=0, description="kopf peering priority.")
    rebuild_store: bool = Field(
        default=False,
        description="Wipe the store and rebuild it from the cluster (history is lost).",
    )
    max_workers: int = Field(
        default=MAX_WORKERS, ge=1, le=256, description="Threads for sync handlers."
    )
    worker_limit: int = Field(
        default=WORKER_LIMIT,
        ge=0,
        description=(
            "Objects of one kind (per watched namespace) being processed at once; the others "
            "wait as queued watch events. Bounds memory under a backlog; 0: no limit."
        ),
    )
    backlog_limit: int = Field(
        default=BACKLOG_LIMIT,
        ge=0,
        description=(
            "Objects of one kind (per watched namespace) handed to kopf at once; the newest "
            "watch event of each other object waits compressed (about 1 KB). Bounds memory "
            "under any backlog; 0: kopf queues every event whole."
        ),
    )
    worker_idle_seconds: float = Field(
        default=WORKER_IDLE_SECONDS,
        gt=0,
        description="Seconds a processed object's worker waits for more events before it frees "
        "its slot.",
    )
    history_max_versions: int = Field(
        default=50, ge=0, description="Versions kept per resource, newest first; 0 keeps all."
    )
    history_max_age_days: float = Field(
        default=0, ge=0, description="Versions older than this are dropped (never the newest)."
    )
    deleted_history_days: float = Field(
        default=30, ge=0, description="Days the history of a deleted resource is kept; 0: forever."
    )
    change_log_max_entries: int = Field(
        default=100_000, ge=0, description="Published change-log entries kept; 0: all."
    )
    change_log_max_age_days: float = Field(
        default=30, ge=0, description="Published change-log entries older than this are dropped."
    )
    store_maintenance_seconds: float = Field(
        default=3600, ge=0, description="Seconds between retention runs (prune); 0 disables."
    )
    sweep_interval: float = Field(
        default=300.0,
        ge=0,
        description=(
            "Seconds between sweeps: mirror entries whose object is gone (deleted while a "
            "watch re-listed) are removed, and objects left behind for a whole interval are "
            "re-run; 0 sweeps only at start-up."
        ),
    )

    @field_validator("namespaces", "platform_namespaces", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """``STIGMER_NAMESPACES=a,b`` and ``--namespace a --namespace b`` mean the same."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def retention(self) -> Retention:
        """The store's retention policy, from the fields above (0 disables a limit)."""
        return Retention(
            max_versions=self.history_max_versions,
            max_age_ns=days_ns(self.history_max_age_days),
            deleted_ttl_ns=days_ns(self.deleted_history_days),
            log_max_entries=self.change_log_max_entries,
            log_max_age_ns=days_ns(self.change_log_max_age_days),
        )

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def namespace_globs(self) -> bool:
        """Whether ``namespaces`` holds kopf globs (``team-*``, ``!x``) rather than names.

        Globs make kopf watch the Namespace list; plain names and cluster-wide
        mode need no more than the chart's RBAC grants.
        """
        return has_globs(self.namespaces)


def has_globs(patterns: Sequence[str]) -> bool:
    """Whether any namespace pattern is a kopf glob rather than a plain name."""
    return not all(set(pattern).isdisjoint("*?!,") for pattern in patterns)
