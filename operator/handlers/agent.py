"""The Agent lifecycle, top to bottom.

=================================  =========================================
What happens                       What the operator does
=================================  =========================================
Agent created                      agent-create pipeline: validate, authorize,
                                   slug, duplicate check, build, persist, IAM
                                   records, default instance (reconciled in
                                   this run), status, publish;
                                   then the instances waiting for it are re-run
Agent spec/labels edited           agent-update pipeline (re-validates;
                                   history grows only when the spec changed);
                                   accepted or refused, every instance
                                   referencing it is re-run, and every Agent
                                   refused with DuplicateSlug because of it
                                   (the slug may be free now)
Agent refused with DuplicateSlug   re-run at once if the slug's holder let
                                   go of it before the refusal was recorded
operator (re)started               agent-resume pipeline (re-mirror; steps
                                   already done are no-ops); instances waiting
                                   for it are re-run
Agent deleted                      agent-delete pipeline (mirror entry goes,
                                   history stays); the garbage collector
                                   deletes the default instance it owns;
                                   every instance referencing it is re-run,
                                   and every Agent refused with DuplicateSlug
                                   because of it
any Agent event                    :class:`.References` records whether a
                                   squatting instance blocks it
default instance deleted, or its   agent-resume pipeline for the owner:
Ready condition flipped            recreates the instance / updates Ready
                                   (an AgentInstance event: see
                                   :mod:`.agent_instance`)
the AgentInstance squatting a      the blocked Agent is re-run (otherwise it
default instance's name is gone    is retried every 1-10 minutes; see
                                   :mod:`.agent_instance`)
=================================  =========================================

No finalizer: the mirror is rebuilt and swept on every start, so deletion
never waits for the operator (an Argo CD prune or ``kubectl delete`` must not
hang while the operator is down). kopf calls no ``on.delete`` handler for an
object that is already gone, so deletion is handled from the watch's DELETED
event; objects deleted while the operator was down are swept at start-up
(:mod:`.startup`). Which instances reference an Agent, and which Agent a
squatting instance blocks, is kept in process from watch events
(:mod:`.references`), not in kopf indexes, which stall a large start-up.
Handlers sit in the module of the kind they watch: this one watches Agents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from stigmer_operator.api.kinds import AGENTS, Kind
from stigmer_operator.handlers.common import (
    forget,
    is_deletion,
    reconcile,
    reconcile_quietly,
    rerun,
    retry_until_mirrored,
)
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.references import Contest, ObjectName, name_of
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.store.errors import NotFoundError, StoreError


@kopf.on.create(*AGENTS)
def agent_created(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    try:
        reconciled = reconcile(Kind.AGENT, Operation.CREATE, body, memo, retry)
    finally:
        settle_slug(body, memo)
    wake_instances(body, memo, only_waiting=True)
    retry_until_mirrored(reconciled)


@kopf.on.update(*AGENTS)
def agent_updated(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    try:
        reconciled = reconcile(Kind.AGENT, Operation.UPDATE, body, memo, retry)
    finally:  # refused or not, the edit may have freed a slug or dropped grants
        wake_instances(body, memo)
        settle_slug(body, memo)
    retry_until_mirrored(reconciled)


@kopf.on.resume(*AGENTS)
def agent_resumed(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    try:
        reconciled = reconcile(Kind.AGENT, Operation.RESUME, body, memo, retry)
    finally:
        settle_slug(body, memo)
    wake_instances(body, memo, only_waiting=True)
    retry_until_mirrored(reconciled)


@kopf.on.event(*AGENTS, when=is_deletion)
def agent_deleted(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
    reconcile_quietly(Kind.AGENT, Operation.DELETE, body, memo)
    forget(Kind.AGENT, body, memo)
    wake_instances(body, memo)
    wake_duplicates(body, memo)


@kopf.on.event(*AGENTS)
async def agent_observed(
    event: kopf.RawEvent, body: kopf.Body, memo: OperatorMemo, **_: Any
) -> None:
    """Keep :class:`.References` current: is this Agent blocked by a squatting instance?"""
    if is_deletion(event):
        memo.references.agent_gone(body)
    else:
        memo.references.agent_seen(body)


def wake_instances(
    body: Mapping[str, Any], memo: OperatorMemo, *, only_waiting: bool = False
) -> None:
    """Re-run the AgentInstances that reference this Agent.

    After a create or resume only instances waiting for this Agent can change;
    after an edit or a delete every referencing instance is re-authorized
    against the new state.
    """
    for namespace, name, waiting in memo.references.referrers(name_of(body)):
        if only_waiting and not waiting:
            continue
        rerun(Kind.AGENT_INSTANCE, namespace, name, memo)


def wake_duplicates(body: Mapping[str, Any], memo: OperatorMemo) -> None:
    """Re-run the Agents refused with DuplicateSlug because this one held their slug.

    It may have freed it (deleted, refused, or another display name).
    """
    for namespace, name in memo.references.duplicates_of(name_of(body)):
        rerun_agent(namespace, name, memo)


def rerun_agent(namespace: str, name: str, memo: OperatorMemo) -> None:
    """Re-run one Agent, and what follows from its verdict.

    One accepted now is as good as created: the instances waiting for it are
    re-run too. One refused with DuplicateSlug re-checks the slug's holder.
    """
    rerun(Kind.AGENT, namespace, name, memo)
    recheck_refusal((namespace, name), memo)
    wake_instances({"metadata": {"namespace": namespace, "name": name}}, memo,
                   only_waiting=True)  # fmt: skip


def settle_slug(body: Mapping[str, Any], memo: OperatorMemo) -> None:
    """After any run of this Agent, refused or not: settle who may have the slug.

    Whoever this Agent kept out may get in now; and this Agent, if refused,
    is re-run at once should its slug's holder have let go meanwhile.
    """
    wake_duplicates(body, memo)
    recheck_refusal(name_of(body), memo)


def recheck_refusal(agent: ObjectName, memo: OperatorMemo) -> None:
    """Re-run ``agent`` if the slug it was refused for is no longer its holder's.

    A refusal is recorded only after its run; a holder that changed or went
    in between woke the Agents it knew of, which did not include this one
    yet. Reading the slug index *after* recording closes that gap: either
    the holder's change comes later and wakes this Agent, or it came before
    and shows here.
    """
    contest = memo.references.contest_of(agent)
    if contest is None or _still_held(contest, memo):
        return
    namespace, name = agent
    memo.retries.schedule((Kind.AGENT, namespace, name), 0.0,
                          lambda: rerun_agent(namespace, name, memo))  # fmt: skip


def _still_held(contest: Contest, memo: OperatorMemo) -> bool:
    try:
        holder = memo.deps.store.get_by_slug(Kind.AGENT, contest.org, contest.slug)
    except NotFoundError:
        return False
    except StoreError:
        return True  # the store cannot tell; the holder's own change still wakes it
    return (holder.metadata.namespace, holder.metadata.name) == contest.holder
