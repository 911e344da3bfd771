"""``memo``: what every handler gets from the process that runs it, typed.

kopf passes its ``memo`` keyword to every handler and, for each object it
watches, hands out ``copy.copy`` of the one given to ``kopf.operator(memo=...)``.
The handlers need one store, one Kubernetes client and one
:class:`.Coordination` for the whole process -- per-object copies of the
coordination would lock nothing -- so :class:`OperatorMemo` returns itself
from ``__copy__``, and every handler sees the same fields, typed
(``memo.deps`` is a :class:`Deps`, not ``Any``).

The memo also makes its handlers the pipelines' ``Deps.children``: the
default instance an Agent's run creates is reconciled in that run
(:mod:`.children`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import kubernetes

from stigmer_operator.first_listing import FirstListings
from stigmer_operator.handlers.coordination import Coordination
from stigmer_operator.handlers.references import References
from stigmer_operator.handlers.retries import Retries
from stigmer_operator.pipeline.deps import Deps
from stigmer_operator.settings import OperatorSettings


@dataclass(frozen=True, slots=True)
class OperatorMemo:
    """Everything process-wide a handler may use."""

    #: What the pipelines run against (store, cluster, settings, clock).
    deps: Deps
    #: The operator's own settings (namespaces, workers, ...).
    settings: OperatorSettings
    #: For the start-up sweep's listing of the cluster.
    api_client: kubernetes.client.ApiClient
    #: Per-object locks and repeat detection (see :mod:`.coordination`).
    coordination: Coordination = field(default_factory=Coordination)
    #: Who references whom, fed from the watch (see :mod:`.references`).
    references: References = field(default_factory=References)
    #: Re-runs kopf does not retry (see :mod:`.retries`).
    retries: Retries = field(default_factory=Retries)
    #: The uids of kopf's first listing, for the start-up sweep (``None``: it lists).
    first_listings: FirstListings | None = None

    def __post_init__(self) -> None:
        from stigmer_operator.handlers.children import HandlerChildren  # imports the handlers

        self.deps.children = HandlerChildren(self)

    def __copy__(self) -> OperatorMemo:
        """kopf copies the memo per object; all objects must share this one."""
        return self
