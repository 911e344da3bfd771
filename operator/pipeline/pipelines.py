"""The pipelines, declared as readable lists of named steps.

Create, update and resume run the *same* steps: every step is idempotent,
so "create" after a crash, "update" with an unchanged spec and "resume" on
operator start all converge on the same store contents, the same children
and the same status, without duplicate history or Events. They are still
separate pipelines so metrics and logs say which cause ran.

=====================  ====================================================
agent-create/update/   ValidateFieldConstraints, Authorize, ResolveSlug,
resume                 CheckDuplicate, BuildNewState, Persist,
                       CreateIamPolicies, CreateDefaultInstance,
                       ReconcileDefaultInstance (the new instance's
                       own pipeline, run here by the handlers),
                       UpdateAgentStatusWithDefaultInstance, Publish,
                       TransformResponse, SendResponse
agentinstance-create/  ValidateFieldConstraints, Authorize (resolves
update/resume          spec.agentRef), ResolveSlug, CheckDuplicate,
                       BuildNewState, Persist, CreateIamPolicies, Publish,
                       TransformResponse, SendResponse
agent-delete,          DeleteResource, Publish
agentinstance-delete
agent-revoke,          RevokeGrants, DeleteResource, Publish -- run by
agentinstance-revoke   :func:`run` when a pipeline refuses the object
=====================  ====================================================

Delete pipelines do not validate: an object that was refused must still be
deletable.

A refusal revokes (the revoke pipelines): the moment an object is refused
(``Accepted=False``, whatever the reason) an AgentInstance's Role is
emptied, and the object leaves the mirror -- its entry, slug and name
index entries and an Agent's ownership record are removed as if it were
deleted (history kept, a ``Deleted`` Event). The rule is "the mirror holds
accepted objects only": a refused Agent can neither keep a slug, nor stay
usable through a stale sharing record, and it comes back as a new version
once fixed. Children (default instance, ServiceAccount/Role/RoleBinding) are
removed by the garbage collector through their ownerReferences.

:func:`run` is the one way to run a pipeline on an object: the handlers, the
start-up sweep, the tests and the benchmarks all call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.deps import Deps
from stigmer_operator.pipeline.errors import PipelineError
from stigmer_operator.pipeline.failure import report_failure
from stigmer_operator.pipeline.runner import Pipeline, Step, StepObserver
from stigmer_operator.pipeline.steps import (
    Authorize,
    BuildNewState,
    CheckDuplicate,
    CreateDefaultInstance,
    CreateIamPolicies,
    DeleteResource,
    Persist,
    Publish,
    ReconcileDefaultInstance,
    ResolveSlug,
    RevokeGrants,
    SendResponse,
    TransformResponse,
    UpdateAgentStatusWithDefaultInstance,
    ValidateFieldConstraints,
)

AGENT_STEPS: tuple[Step, ...] = (
    ValidateFieldConstraints(),
    Authorize(),
    ResolveSlug(),
    CheckDuplicate(),
    BuildNewState(),
    Persist(),
    CreateIamPolicies(),
    CreateDefaultInstance(),
    ReconcileDefaultInstance(),
    UpdateAgentStatusWithDefaultInstance(),
    Publish(),
    TransformResponse(),
    SendResponse(),
)

AGENT_INSTANCE_STEPS: tuple[Step, ...] = (
    ValidateFieldConstraints(),
    Authorize(),
    ResolveSlug(),
    CheckDuplicate(),
    BuildNewState(),
    Persist(),
    CreateIamPolicies(),
    Publish(),
    TransformResponse(),
    SendResponse(),
)

DELETE_STEPS: tuple[Step, ...] = (DeleteResource(), Publish())

REVOKE_STEPS: tuple[Step, ...] = (RevokeGrants(), DeleteResource(), Publish())

#: What a refusal undoes, by kind: ``agent-revoke``, ``agentinstance-revoke``.
REVOKE_PIPELINES: Mapping[Kind, Pipeline] = MappingProxyType(
    {kind: Pipeline(f"{kind.value.lower()}-revoke", REVOKE_STEPS) for kind in Kind}
)


def _declare() -> dict[tuple[Kind, Operation], Pipeline]:
    upsert = {Kind.AGENT: AGENT_STEPS, Kind.AGENT_INSTANCE: AGENT_INSTANCE_STEPS}
    declared: dict[tuple[Kind, Operation], Pipeline] = {}
    for kind in Kind:
        for operation in Operation:
            steps = DELETE_STEPS if operation is Operation.DELETE else upsert[kind]
            name = f"{kind.value.lower()}-{operation.value}"
            declared[(kind, operation)] = Pipeline(name, steps)
    return declared


#: Every pipeline, by (kind, operation); names like ``agent-create``.
PIPELINES: Mapping[tuple[Kind, Operation], Pipeline] = MappingProxyType(_declare())

AGENT_CREATE = PIPELINES[(Kind.AGENT, Operation.CREATE)]
AGENT_UPDATE = PIPELINES[(Kind.AGENT, Operation.UPDATE)]
AGENT_DELETE = PIPELINES[(Kind.AGENT, Operation.DELETE)]
AGENT_RESUME = PIPELINES[(Kind.AGENT, Operation.RESUME)]
AGENT_INSTANCE_CREATE = PIPELINES[(Kind.AGENT_INSTANCE, Operation.CREATE)]
AGENT_INSTANCE_UPDATE = PIPELINES[(Kind.AGENT_INSTANCE, Operation.UPDATE)]
AGENT_INSTANCE_DELETE = PIPELINES[(Kind.AGENT_INSTANCE, Operation.DELETE)]
AGENT_INSTANCE_RESUME = PIPELINES[(Kind.AGENT_INSTANCE, Operation.RESUME)]


def pipeline_for(kind: Kind, operation: Operation) -> Pipeline:
    return PIPELINES[(kind, operation)]


def run(
    kind: Kind,
    operation: Operation,
    body: Mapping[str, Any],
    deps: Deps,
    *,
    observer: StepObserver | None = None,
    report: bool = False,
) -> RequestContext[Resource]:
    """Build the context for ``body`` and run the pipeline for (kind, operation).

    Returns the finished context; raises :class:`~.errors.PipelineError` at
    the first failing step. A refusal first runs the kind's revoke pipeline
    (grants and mirror entry go); if revoking fails, its retryable error is
    raised after the refusal is reported, so the revoke is retried. With
    ``report`` the failure is first written
    where users see it (:func:`~.failure.report_failure`: status and a
    Warning Event), as the kopf handlers want; the start-up sweep does not.
    ``observer`` is called around every step (the operator's metrics).
    """
    ctx = RequestContext.for_kind(kind, body, operation, deps)
    try:
        return pipeline_for(kind, operation).run(ctx, observer)
    except PipelineError as error:
        unrevoked = _revoke(kind, operation, body, deps, observer, error)
        if report:
            report_failure(ctx, error)
        if unrevoked is not None:
            raise unrevoked from error
        raise


def _revoke(
    kind: Kind,
    operation: Operation,
    body: Mapping[str, Any],
    deps: Deps,
    observer: StepObserver | None,
    error: PipelineError,
) -> PipelineError | None:
    """Run the revoke pipeline after a refusal; its error if it failed."""
    if not error.reason.refuses_object or operation is Operation.DELETE:
        return None
    ctx = RequestContext.for_kind(kind, body, operation, deps)
    try:
        REVOKE_PIPELINES[kind].run(ctx, observer)
    except PipelineError as failure:
        return failure
    return None
