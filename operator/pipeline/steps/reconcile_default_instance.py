"""After CreateDefaultInstance (Agent only): the new default instance is reconciled in this run.

A default instance nobody has reconciled yet -- the one CreateDefaultInstance
just created, or one a crash left without status -- is handed to
``Deps.children``, which runs the AgentInstance pipeline on it right here
(under the instance's own lock, with its own status, Events and retries).
The Agent's next step then sees the instance as it is now: a new Agent is
Ready in its first run, instead of saying ``DefaultInstanceNotReady`` and
waiting for the instance's own reconcile to re-run it (one status write,
and the two reads of that re-run, fewer per Agent).

An instance with status has been reconciled and is left to its own
handlers; so is every instance when there is no ``Deps.children``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.frozen import str_at
from stigmer_operator.pipeline.keys import DEFAULT_INSTANCE
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.meta import conditions_of


class ReconcileDefaultInstance:
    name = "ReconcileDefaultInstance"

    def run(self, ctx: RequestContext[Resource]) -> None:
        if ctx.kind is not Kind.AGENT:
            raise TypeError("ReconcileDefaultInstance runs for Agents only")
        children = ctx.deps.children
        instance = ctx.values.get(DEFAULT_INSTANCE)
        if children is None or not never_reconciled(instance):
            ctx.mark_unchanged()
            return
        if ctx.operation is not Operation.CREATE:
            # Not the object this run created: perhaps the start-up listing's
            # trimmed copy (no annotations), which must not be mirrored as is.
            name = str_at(instance, "metadata", "name")
            fresh = ctx.deps.kube.get(ObjectKind.AGENT_INSTANCE, ctx.namespace, name)
            if fresh is None or not never_reconciled(fresh):
                ctx.mark_unchanged()
                return
            instance = fresh
        reconciled = children.reconcile(Kind.AGENT_INSTANCE, instance)
        if reconciled is not None:
            ctx.values.put(DEFAULT_INSTANCE, reconciled)


def never_reconciled(obj: Mapping[str, Any]) -> bool:
    """No reconcile has written status yet (every one writes ``Ready``), and it is not going."""
    return find_condition(conditions_of(obj), ConditionType.READY) is None and not str_at(
        obj, "metadata", "deletionTimestamp"
    )
