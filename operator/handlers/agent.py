"""The Agent lifecycle, top to bottom.

=================================  =========================================
What happens                       What the operator does
=================================  =========================================
Agent created                      agent-create pipeline: validate, authorize,
                                   slug, duplicate check, build, persist, IAM
                                   records, default instance, status, publish
Agent spec/labels edited           agent-update pipeline (re-validates;
                                   history grows only when the spec changed)
operator (re)started               agent-resume pipeline (re-mirror; steps
                                   already done are no-ops)
Agent deleted                      agent-delete pipeline (mirror entry goes,
                                   history stays); the garbage collector
                                   deletes the default instance it owns
default instance deleted, or its   agent-resume pipeline for the owner:
Ready condition flipped            recreates the instance / updates Ready
Agent appears or goes              instances that reference it are re-run
the AgentInstance squatting a      the blocked Agent is re-run (otherwise it
default instance's name is gone    is retried every 1-10 minutes)
=================================  =========================================

No finalizer: the mirror is rebuilt and swept on every start, so deletion
never waits for the operator (an Argo CD prune or ``kubectl delete`` must not
hang while the operator is down). kopf calls no ``on.delete`` handler for an
object that is already gone, so deletion is handled from the watch's DELETED
event; objects deleted while the operator was down are swept at start-up
(:mod:`.lifecycle`). Which instances reference an Agent, and which Agent a
squatting instance blocks, is kept in process from watch events
(:mod:`.references`), not in kopf indexes, which stall a large start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from stigmer_operator.api.kinds import GROUP, VERSION, Kind
from stigmer_operator.handlers.common import (
    forget,
    is_deletion,
    reconcile,
    reconcile_quietly,
    retry_soon,
)
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.references import name_of
from stigmer_operator.pipeline.conditions import ConditionType, is_true
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import KubeError, ObjectKind, controller_ref
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.pipeline.steps.create_default_instance import DEFAULT_INSTANCE_LABEL

AGENTS = (GROUP, VERSION, Kind.AGENT.plural)
INSTANCES = (GROUP, VERSION, Kind.AGENT_INSTANCE.plural)


@kopf.on.create(*AGENTS)
def agent_created(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    reconcile(Kind.AGENT, Operation.CREATE, body, memo, retry)
    wake_instances(body, memo, only_waiting=True)


@kopf.on.update(*AGENTS)
def agent_updated(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    reconcile(Kind.AGENT, Operation.UPDATE, body, memo, retry)
    wake_instances(body, memo)


@kopf.on.resume(*AGENTS)
def agent_resumed(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    reconcile(Kind.AGENT, Operation.RESUME, body, memo, retry)
    wake_instances(body, memo, only_waiting=True)


@kopf.on.event(*AGENTS, when=is_deletion)
def agent_deleted(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
    reconcile_quietly(Kind.AGENT, Operation.DELETE, body, memo)
    forget(Kind.AGENT, body, memo)
    wake_instances(body, memo)


@kopf.on.event(*AGENTS)
async def agent_observed(
    event: kopf.RawEvent, body: kopf.Body, memo: OperatorMemo, **_: Any
) -> None:
    """Keep :class:`.References` current: is this Agent blocked by a squatting instance?"""
    references = memo.references
    if is_deletion(event):
        references.agent_gone(body)
    else:
        references.agent_seen(body)


@kopf.on.event(*INSTANCES)
async def instance_observed(
    event: kopf.RawEvent, body: kopf.Body, memo: OperatorMemo, **_: Any
) -> None:
    """Keep :class:`.References` current: which Agent does this instance reference?"""
    references = memo.references
    if is_deletion(event):
        references.instance_gone(body)
    else:
        references.instance_seen(body)


@kopf.on.event(*INSTANCES, when=is_deletion)
def squatter_deleted(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
    """An AgentInstance that blocked an Agent's default instance is gone: re-run the Agent."""
    deps = memo.deps
    references = memo.references
    namespace, name = name_of(body)
    for agent_name in references.blocked_by((namespace, name)):
        agent = deps.kube.get(ObjectKind.AGENT, namespace, agent_name)
        if agent is not None:
            reconcile_quietly(Kind.AGENT, Operation.RESUME, agent, memo)


@kopf.on.event(*INSTANCES, labels={DEFAULT_INSTANCE_LABEL: "true"})
def default_instance_changed(
    event: kopf.RawEvent, body: kopf.Body, memo: OperatorMemo, **_: Any
) -> None:
    """Level-triggered: a deleted or flipped default instance re-runs its Agent."""
    owner = controller_ref(body)
    if owner is None or owner.get("kind") != Kind.AGENT.value:
        return
    uid = str(body.get("metadata", {}).get("uid", ""))
    if not is_deletion(event) and not memo.coordination.readiness_changed(uid, _is_ready(body)):
        return
    deps = memo.deps
    agent = deps.kube.get(ObjectKind.AGENT, body["metadata"]["namespace"], owner["name"])
    if agent is None or agent.get("metadata", {}).get("deletionTimestamp"):
        return  # the Agent is going away; the garbage collector handles the rest
    if agent.get("metadata", {}).get("uid") != owner.get("uid"):
        return  # an Agent of the same name, but not the owner
    reconcile_quietly(Kind.AGENT, Operation.RESUME, agent, memo)


def wake_instances(
    body: Mapping[str, Any], memo: OperatorMemo, *, only_waiting: bool = False
) -> None:
    """Re-run the AgentInstances that reference this Agent.

    After a create or resume only instances waiting for this Agent can change;
    after an edit or a delete every referencing instance is re-authorized
    against the new state.
    """
    deps = memo.deps
    references = memo.references
    for namespace, name, waiting in references.referrers(name_of(body)):
        if only_waiting and not waiting:
            continue
        try:
            instance = deps.kube.get(ObjectKind.AGENT_INSTANCE, namespace, name)
        except KubeError as error:
            raise retry_soon(error, deps) from None
        if instance is None or instance.get("metadata", {}).get("deletionTimestamp"):
            continue
        reconcile_quietly(Kind.AGENT_INSTANCE, Operation.RESUME, instance, memo)


def _is_ready(body: Mapping[str, Any]) -> bool:
    return is_true(conditions_of(body), ConditionType.READY)
