"""Objects nothing is reconciling any more: found by the periodic sweep, re-run.

Every reconcile ends by writing status at the generation it handled, so an
object whose ``status.observedGeneration`` lags its ``metadata.generation``
has work pending. Normally someone holds it: kopf's queue, a kopf retry, a
:class:`.Retries` entry. But a retry can be lost on the way -- kopf records
a retry's due time in a patch of its own, and when that patch fails for an
API server restarting for longer than kopf's few attempts, no retry is ever
scheduled and the object waits for its next edit.

An Agent refused with ``DuplicateSlug`` is current with its generation,
yet waits too: for its slug's holder to let go, which wakes the Agents this
process recorded as kept out (:mod:`.references`). A lost record (a late
DELETED event of an earlier Agent of the same name once took it) leaves
the Agent refused after the slug is free. So a ``DuplicateSlug`` refusal
this process holds no record of counts as left behind as well.

The periodic sweep therefore lists the objects anyway (:mod:`.startup`);
an object left behind, unchanged (same ``resourceVersion``), at the
previous sweep as well has had a whole interval for its run and is re-run
here. A run that was merely slow is not hurt: runs of one object take its
lock, and a reconcile that finds the object already reconciled does
nothing; a re-run refusal is recorded, and its holder wakes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.agent import rerun_agent
from stigmer_operator.handlers.common import rerun
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.references import name_of, ready_reason
from stigmer_operator.pipeline.errors import Reason

logger = logging.getLogger(__name__)

#: (kind, uid, resourceVersion) of an object whose status lagged its generation.
Lag = tuple[Kind, str, str]


def lags(body: Mapping[str, Any]) -> bool:
    """Whether the object's status is behind its generation (and it is not being deleted)."""
    metadata = body.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return False
    observed = (body.get("status") or {}).get("observedGeneration")
    return observed != metadata.get("generation")


def waits_unrecorded(kind: Kind, body: Mapping[str, Any], memo: OperatorMemo) -> bool:
    """An Agent refused with DuplicateSlug that no holder would wake (no record of it)."""
    if kind is not Kind.AGENT or ready_reason(body) != Reason.DUPLICATE_SLUG.value:
        return False
    return not memo.references.knows_refusal(name_of(body))


@dataclass
class Stragglers:
    """What lagged at the last sweep; :meth:`check` re-runs what still does, unchanged."""

    _previous: set[Lag] = field(default_factory=set)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def check(self, memo: OperatorMemo, listed: Mapping[Kind, Iterable[Mapping[str, Any]]]) -> int:
        """Re-run the objects left behind now and at the previous check; returns how many."""
        lagging: dict[Lag, Mapping[str, Any]] = {}
        for kind, bodies in listed.items():
            for body in bodies:
                if lags(body) or waits_unrecorded(kind, body, memo):
                    metadata = body["metadata"]
                    lag = (kind, str(metadata["uid"]), str(metadata.get("resourceVersion", "")))
                    lagging[lag] = body
        with self._guard:
            stuck = [lag for lag in lagging if lag in self._previous]
            self._previous = set(lagging)
        for lag in stuck:
            _rerun(lag[0], lagging[lag], memo)
        return len(stuck)


def _rerun(kind: Kind, body: Mapping[str, Any], memo: OperatorMemo) -> None:
    metadata = body["metadata"]
    namespace, name = str(metadata["namespace"]), str(metadata["name"])
    if lags(body):
        logger.info("%s %s/%s: status still at generation %s of %s; re-running it",
                    kind.value, namespace, name,
                    (body.get("status") or {}).get("observedGeneration"),
                    metadata.get("generation"))  # fmt: skip
    else:
        logger.info("%s %s/%s: refused with DuplicateSlug, and no holder would wake it; "
                    "re-running it", kind.value, namespace, name)  # fmt: skip
    if kind is Kind.AGENT:
        rerun_agent(namespace, name, memo)
    else:
        rerun(kind, namespace, name, memo, uid=str(metadata["uid"]))
