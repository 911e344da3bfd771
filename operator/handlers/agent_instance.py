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
operator (re)started               agentinstance-resume pipeline, when kopf
                                   would resume it (:mod:`.observers`)
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
re-run Agents, but they watch AgentInstances, so they are here. One event
handler does all that an event sets off, in order: the bookkeeping first,
so a deletion updates :class:`.References` and wakes blocked Agents before
the instance's own delete pipeline runs.
"""

from __future__ import annotations

import asyncio
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
from stigmer_operator.handlers.observers import on_event, on_resume
from stigmer_operator.handlers.references import name_of
from stigmer_operator.handlers.startup_listing import rerun_stale
from stigmer_operator.pipeline.conditions import ConditionType, is_true
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ObjectKind, controller_ref
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.pipeline.steps.reconcile_default_instance import never_reconciled


@on_event(Kind.AGENT_INSTANCE)
async def instance_event(event: kopf.RawEvent, memo: OperatorMemo) -> None:
    """Every instance event, in this order: bookkeeping, the Agents it concerns, a deletion.

    On the event loop (:mod:`.observers`): only a re-run or a deletion
    needs a thread.
    """
    body = kopf.Body(event["object"])
    deleted = is_deletion(event)
    _observe(body, memo, deleted)
    agent = _owner_to_rerun(body, memo, deleted)
    if deleted or agent is not None:
        await asyncio.to_thread(_after_event, body, memo, deleted, agent)


def _observe(body: kopf.Body, memo: OperatorMemo, deleted: bool) -> None:
    """Keep :class:`.References` and the start-up listing current with what the watch shows."""
    references, listing = memo.references, memo.deps.listing
    if deleted:
        references.instance_gone(body)
        stale = listing.gone(ObjectKind.AGENT_INSTANCE, *name_of(body))
    else:
        references.instance_seen(body)
        stale = listing.observed(ObjectKind.AGENT_INSTANCE, body)
    if stale is not None:  # an Agent's resume used an older version of it
        rerun_stale(stale, memo)


def _owner_to_rerun(
    body: kopf.Body, memo: OperatorMemo, deleted: bool
) -> tuple[str, str, str] | None:
    """Level-triggered: a deleted or flipped default instance re-runs its Agent.

    Returns the owner Agent's namespace, name and uid -- not for an Agent
    of the same name that is not the owner.
    """
    metadata = body.get("metadata", {})
    if metadata.get("labels", {}).get(DEFAULT_INSTANCE_LABEL) != "true":
        return None
    owner = controller_ref(body)
    if owner is None or owner.get("kind") != Kind.AGENT.value:
        return None
    if not deleted and (
        never_reconciled(body)  # nothing to tell the Agent: its run reconciles a new instance
        or not memo.coordination.readiness_changed(str(metadata.get("uid", "")), _is_ready(body))
    ):
        return None
    return str(metadata["namespace"]), str(owner["name"]), str(owner.get("uid"))


def _after_event(
    body: kopf.Body, memo: OperatorMemo, deleted: bool, agent: tuple[str, str, str] | None
) -> None:
    """The Agents the event concerns are re-run; then a deleted instance leaves the mirror.

    The deletion's pipeline runs even if a re-run failed unexpectedly.
    """
    try:
        if deleted:  # an instance that blocked an Agent's default instance is gone
            namespace, name = name_of(body)
            for agent_name in memo.references.blocked_by((namespace, name)):
                rerun(Kind.AGENT, namespace, agent_name, memo)
        if agent is not None:
            namespace, name, uid = agent
            rerun(Kind.AGENT, namespace, name, memo, uid=uid)
    finally:
        if deleted:
            reconcile_quietly(Kind.AGENT_INSTANCE, Operation.DELETE, body, memo)
            forget(Kind.AGENT_INSTANCE, body, memo)


@kopf.on.create(*INSTANCES)
def instance_created(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    retry_until_mirrored(reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, body, memo, retry))


@kopf.on.update(*INSTANCES)
def instance_updated(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    retry_until_mirrored(reconcile(Kind.AGENT_INSTANCE, Operation.UPDATE, body, memo, retry))


@on_resume(Kind.AGENT_INSTANCE)
def instance_resumed(body: kopf.Body, memo: OperatorMemo, retry: int) -> None:
    retry_until_mirrored(reconcile(Kind.AGENT_INSTANCE, Operation.RESUME, body, memo, retry))


def _is_ready(body: Mapping[str, Any]) -> bool:
    return is_true(conditions_of(body), ConditionType.READY)
