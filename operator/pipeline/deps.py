"""What the steps depend on, passed in rather than imported.

Steps reach the store, the cluster and the clock only through :class:`Deps`,
so unit tests and the benchmark run the very same steps against
``MemoryStore``, ``RecordingKubeEffects`` and a fixed clock, and the
operator runs them against RocksDB and the API server.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.kube import KubeEffects
from stigmer_operator.pipeline.listing import StartupListing
from stigmer_operator.pipeline.locks import KeyedLocks
from stigmer_operator.pipeline.orgs import NamespaceOrgs
from stigmer_operator.pipeline.outbox import Outbox
from stigmer_operator.store.protocol import Store

#: DNS-1123 label limit; slugs are used as DNS labels.
DNS_LABEL_MAX = 63


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """Operator-wide knobs the steps read."""

    #: Namespaces where ``spec.scope: platform`` is allowed.
    platform_namespaces: frozenset[str] = frozenset()
    #: ``fieldManager`` on every write, and Events' ``reportingComponent``.
    field_manager: str = "stigmer-operator"
    #: Events' ``reportingInstance`` (the pod name, in a cluster).
    reporting_instance: str = field(default_factory=socket.gethostname)
    #: Upper bound of a slug (at most 63: slugs are DNS labels).
    max_slug_length: int = DNS_LABEL_MAX
    #: Seconds before retrying after a store/API/internal failure.
    retry_delay: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_slug_length <= DNS_LABEL_MAX:
            raise ValueError(f"max_slug_length must be within 1..{DNS_LABEL_MAX}")


class Children(Protocol):
    """Whoever runs the pipelines takes over a child object a pipeline creates.

    The operator's handlers do (:mod:`stigmer_operator.handlers.children`):
    the default instance an Agent's run creates is reconciled in that run,
    so the Agent's status can say Ready at once, and it is created marked as
    handled for kopf, which then calls no handler for it. Without this (the
    tests of single steps, the pipeline benchmark) the child waits for its
    own reconcile.
    """

    def annotations(self, body: Mapping[str, Any]) -> Mapping[str, str]:
        """Annotations ``body`` is created with (besides its own)."""
        ...

    def reconcile(self, kind: Kind, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Reconcile the just-created ``body`` now.

        Returns the object with the status this wrote, or ``None`` when it
        did not complete (a failure is reported and retried by the taker).
        """
        ...


@dataclass(slots=True)
class Deps:
    """Store, cluster, settings and clock for one operator process."""

    store: Store
    kube: KubeEffects
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    #: Returns an aware UTC ``datetime``.
    clock: Callable[[], datetime] = utc_now
    #: Unpublished change-log entries (one per process; see :mod:`.outbox`).
    outbox: Outbox = field(default_factory=Outbox)
    #: The org of each namespace, from its admin-set label (one cache per process).
    orgs: NamespaceOrgs = field(default_factory=NamespaceOrgs)
    #: Held from CheckDuplicate through Persist, per (kind, org, slug) (see :mod:`.locks`).
    slug_locks: KeyedLocks = field(default_factory=KeyedLocks)
    #: Who takes over the children a pipeline creates (``None``: their own reconciles).
    children: Children | None = None
    #: The operator's own objects as listed at start-up (see :mod:`.listing`).
    listing: StartupListing = field(default_factory=StartupListing)
