"""The AgentInstance lifecycle, top to bottom.

=================================  =========================================
What happens                       What the operator does
=================================  =========================================
instance created (by a user, or    agentinstance-create pipeline: validate,
by the Agent's default-instance    authorize + resolve agentRef, slug,
step)                              duplicate check, build, persist, IAM
                                   (ServiceAccount, Role, RoleBinding), publish;
                                   a default instance in its Agent's run,
                                   and kopf calls no handler for it
                                   (:mod:`.children`)
instance edited                    agentinstance-update pipeline
operator (re)started               agentinstance-resume pipeline
instance deleted                   agentinstance-delete pipeline; the garbage
                                   collector removes its IAM objects
its Agent does not exist yet       Ready=False, reason AgentNotFound, no retry
                                   loop: the Agent's handlers re-run it when
                                   the Agent appears (see :mod:`.agent`)
any instance event                 :class:`.References` records which Agent it
                                   references and whether it waits for it;
                                   the start-up listing takes that version
                                   (an Agent whose resume used an older one
                                   is re-run)
a default instance is deleted, or  agent-resume pipeline for the owner Agent:
its Ready condition flips          recreates the instance / updates Ready
                                   (a new default instance is reconciled in
                                   its Agent's run, which makes it Ready:
                                   that is no flip, see :mod:`.children`)
an instance squatting an Agent's   the blocked Agent is re-run
default instance name is deleted
=================================  =========================================

Handlers sit in the module of the kind they watch: the last three rows
re-run Agents, but they watch AgentInstances, so they are here. kopf runs
the event handlers of one kind in the order they are registered; the
bookkeeping ones come first, so a deletion updates :class:`.References`
and wakes blocked Agents before the instance's own delete pipeline runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from stigmer_operator.api.kinds import DEFAULT_INSTANCE_LABEL, INSTANCES, Kind
from stigmer_operator.handlers.common import (
    forget,
    is_deletion,
    reconcile,
    reconcile_quietly,
    rerun,
    retry_until_mirrored,
)
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.references import name_of
from stigmer_operator.handlers.startup_listing import rerun_stale
from stigmer_operator.pipeline.conditions import ConditionType, is_true
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ObjectKind, controller_ref
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.pipeline.steps.reconcile_default_instance import never_reconciled


@kopf.on.event(*INSTANCES)
async def instance_observed(
    event: kopf.RawEvent, body: kopf.Body, memo: OperatorMemo, **_: Any
) -> None:
    """Keep :class:`.References` and the start-up listing current with what the watch shows."""
    references, listing = memo.references, memo.deps.listing
    if is_deletion(event):
        references.instance_gone(body)
        stale = listing.gone(ObjectKind.AGENT_INSTANCE, *name_of(body))
    else:
        references.instance_seen(body)
        stale = listing.observed(ObjectKind.AGENT_INSTANCE, body)
    if stale is not None:  # an Agent's resume used an older version of it
        rerun_stale(stale, memo)


@kopf.on.event(*INSTANCES, when=is_deletion)
def squatter_deleted(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
    """An AgentInstance that blocked an Agent's default instance is gone: re-run the Agent."""
    namespace, name = name_of(body)
    for agent_name in memo.references.blocked_by((namespace, name)):
        rerun(Kind.AGENT, namespace, agent_name, memo)


@kopf.on.event(*INSTANCES, labels={DEFAULT_INSTANCE_LABEL: "true"})
def default_instance_changed(
    event: kopf.RawEvent, body: kopf.Body, memo: OperatorMemo, **_: Any
) -> None:
    """Level-triggered: a deleted or flipped default instance re-runs its Agent."""
    owner = controller_ref(body)
    if owner is None or owner.get("kind") != Kind.AGENT.value:
        return
    uid = str(body.get("metadata", {}).get("uid", ""))
    if not is_deletion(event) and (
        never_reconciled(body)  # nothing to tell the Agent: its run reconciles a new instance
        or not memo.coordination.readiness_changed(uid, _is_ready(body))
    ):
        return
    # Not if the Agent is going away (the garbage collector handles the rest),
    # nor for an Agent of the same name that is not the owner.
    namespace = str(body["metadata"]["namespace"])
    rerun(Kind.AGENT, namespace, str(owner["name"]), memo, uid=str(owner.get("uid")))


@kopf.on.create(*INSTANCES)
def instance_created(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    retry_until_mirrored(reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, body, memo, retry))


@kopf.on.update(*INSTANCES)
def instance_updated(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    retry_until_mirrored(reconcile(Kind.AGENT_INSTANCE, Operation.UPDATE, body, memo, retry))


@kopf.on.resume(*INSTANCES)
def instance_resumed(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    retry_until_mirrored(reconcile(Kind.AGENT_INSTANCE, Operation.RESUME, body, memo, retry))


@kopf.on.event(*INSTANCES, when=is_deletion)
def instance_deleted(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
    reconcile_quietly(Kind.AGENT_INSTANCE, Operation.DELETE, body, memo)
    forget(Kind.AGENT_INSTANCE, body, memo)


def _is_ready(body: Mapping[str, Any]) -> bool:
    return is_true(conditions_of(body), ConditionType.READY)
