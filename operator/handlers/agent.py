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
                                   (:func:`.common.recheck_claim`)
operator (re)started               agent-resume pipeline (re-mirror; steps
                                   already done are no-ops), when kopf would
                                   resume it (:mod:`.observers`); instances
                                   waiting for it are re-run
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

import asyncio
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
    wake_instances,
)
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.observers import on_event, on_resume
from stigmer_operator.handlers.references import name_of
from stigmer_operator.pipeline.context import Operation


@kopf.on.create(*AGENTS)
def agent_created(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    try:
        reconciled = reconcile(Kind.AGENT, Operation.CREATE, body, memo, retry)
    finally:
        wake_duplicates(body, memo)
    wake_instances(body, memo, only_waiting=True)
    retry_until_mirrored(reconciled)


@kopf.on.update(*AGENTS)
def agent_updated(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    try:
        reconciled = reconcile(Kind.AGENT, Operation.UPDATE, body, memo, retry)
    finally:  # refused or not, the edit may have freed a slug or dropped grants
        wake_instances(body, memo)
        wake_duplicates(body, memo)
    retry_until_mirrored(reconciled)


@on_resume(Kind.AGENT)
def agent_resumed(body: kopf.Body, memo: OperatorMemo, retry: int) -> None:
    try:
        reconciled = reconcile(Kind.AGENT, Operation.RESUME, body, memo, retry)
    finally:
        wake_duplicates(body, memo)
    wake_instances(body, memo, only_waiting=True)
    retry_until_mirrored(reconciled)


@on_event(Kind.AGENT)
async def agent_event(event: kopf.RawEvent, memo: OperatorMemo) -> None:
    """Every Agent event: a deletion's pipeline; :class:`.References` kept current.

    On the event loop (:mod:`.observers`): only a deletion needs a thread.
    """
    body = kopf.Body(event["object"])
    if is_deletion(event):
        try:
            await asyncio.to_thread(agent_deleted, body, memo)
        finally:
            memo.references.agent_gone(body)  # after: the deletion wakes whom it names
    else:
        memo.references.agent_seen(body)


def agent_deleted(body: kopf.Body, memo: OperatorMemo) -> None:
    reconcile_quietly(Kind.AGENT, Operation.DELETE, body, memo)
    forget(Kind.AGENT, body, memo)
    wake_instances(body, memo)
    wake_duplicates(body, memo)


def wake_duplicates(body: Mapping[str, Any], memo: OperatorMemo) -> None:
    """Re-run the Agents refused with DuplicateSlug because this one held their slug.

    It may have freed it (deleted, refused, or another display name).
    """
    for namespace, name in memo.references.duplicates_of(name_of(body)):
        rerun_agent(namespace, name, memo)


def rerun_agent(namespace: str, name: str, memo: OperatorMemo) -> None:
    """Re-run one Agent, and the instances waiting for it.

    One accepted now is as good as created. One refused again with
    DuplicateSlug re-checks its new holder (:func:`.common.recheck_claim`).
    """
    rerun(Kind.AGENT, namespace, name, memo)
    wake_instances({"metadata": {"namespace": namespace, "name": name}}, memo,
                   only_waiting=True)  # fmt: skip
