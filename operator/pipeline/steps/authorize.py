"""Step 2, Authorize: who owns this object, and may it use that Agent?

The org is decided by the Namespace (:mod:`~stigmer_operator.pipeline.orgs`:
its admin-set ``agentic.stigmer.ai/org`` label, else its name). An object
may carry the same label only if it agrees: one that names another org is
refused with ``OrgMismatch`` -- whoever can write an object could otherwise
make it act for any org. Then:

* ``scope: platform`` marks a resource every org may use. Only the
  operator's platform namespaces may declare it; anywhere else it would let
  any namespace publish to everyone. Refused with reason ``Forbidden``.
* An AgentInstance may deploy an Agent of its own org, a platform Agent, or
  an Agent shared with its org -- per the Agent's ownership record (written
  by the Agent's CreateIamPolicies step) or, if the Agent is not mirrored
  yet, its ``spec.sharing``.
* An AgentInstance may name only Secrets and ConfigMaps that consent to it
  (:mod:`~stigmer_operator.pipeline.consent`), else ``EnvironmentRefNotAllowed``.

Nothing is disclosed about what the requester may not read: an Agent in
another namespace that does not exist, is not accepted, or is not shared
with the requester's org is one and the same refusal, ``AgentNotFound``
with "not found or not shared with you" -- no org, no sharing, no
existence. Only an Agent in the instance's own namespace is described in
detail.

The referenced Agent is looked up in the store first (no API round trip),
then in the API (the Agent may simply not have been reconciled yet). While
the store cannot write, its entries and ownership records may be behind the
cluster (:mod:`~stigmer_operator.pipeline.mirror`), so the Agent and its
sharing are read from the API only: a stale record must never grant access
the Agent no longer gives. If it
does not exist, the error is ``AgentNotFound`` and not retryable: applying an
instance before its Agent is normal with GitOps tools, and the Agent's own
handlers re-run the instances waiting for it the moment it appears or is
fixed (``wake_instances`` in :mod:`stigmer_operator.handlers.common`), so a
timed retry would only add load.
"""

from __future__ import annotations

from typing import Any

from stigmer_operator.api.convert import scope_from_proto
from stigmer_operator.api.kinds import ORG_LABEL, Kind, Resource
from stigmer_operator.api.models import AgentInstanceSpec, Scope
from stigmer_operator.api.v1 import agent_pb2
from stigmer_operator.pipeline.consent import check_environment_refs
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.frozen import freeze, mapping_at, str_at
from stigmer_operator.pipeline.keys import AGENT_TARGET, ORG, SPEC, AgentTarget
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.meta import id_of, refusal_of, scope_of
from stigmer_operator.pipeline.orgs import InvalidOrgLabel
from stigmer_operator.store.errors import NotFoundError


class Authorize:
    name = "Authorize"

    def run(self, ctx: RequestContext[Resource]) -> None:
        spec = ctx.values.get(SPEC)
        org = _own_org(ctx)
        ctx.values.put(ORG, org)
        _check_scope(ctx, spec.scope)
        if isinstance(spec, AgentInstanceSpec):
            namespace = spec.agent_ref.namespace or ctx.namespace
            target = _resolve_agent(ctx, namespace, spec.agent_ref.name)
            _check_agent_access(ctx, org, target)
            check_environment_refs(ctx, spec)
            ctx.values.put(AGENT_TARGET, target)


def _own_org(ctx: RequestContext[Resource]) -> str:
    """The Namespace's org; the object's own org label may only repeat it."""
    try:
        org = ctx.deps.orgs.org_of(ctx.deps.kube, ctx.namespace)
    except InvalidOrgLabel as exc:
        raise PipelineError(
            Reason.FORBIDDEN,
            f"Namespace {ctx.namespace} has an invalid {ORG_LABEL} label ({exc}); "
            "a cluster admin must fix it",
            retryable=False,
        ) from exc
    label = ctx.labels.get(ORG_LABEL)
    if label is not None and label != org:
        raise PipelineError(
            Reason.ORG_MISMATCH,
            f"metadata.labels[{ORG_LABEL}] is {label!r}, but namespace {ctx.namespace} belongs "
            f"to org {org!r}: the org is set by cluster admins on the Namespace; remove the "
            "label or make it agree",
            retryable=False,
        )
    return org


def _not_found_or_not_shared(namespace: str, name: str) -> PipelineError:
    """The one refusal for an Agent in another namespace the requester may not use."""
    return PipelineError(
        Reason.AGENT_NOT_FOUND,
        f"spec.agentRef: Agent {namespace}/{name} not found or not shared with you",
        retryable=False,
    )


def _check_scope(ctx: RequestContext[Resource], scope: Scope) -> None:
    allowed = ctx.deps.settings.platform_namespaces
    if scope is Scope.PLATFORM and ctx.namespace not in allowed:
        where = ", ".join(sorted(allowed)) or "none configured"
        raise PipelineError(
            Reason.FORBIDDEN,
            f"spec.scope 'platform' is only allowed in the platform namespaces ({where}); "
            f"{ctx.kind.value} {ctx.namespace}/{ctx.name} is in namespace {ctx.namespace!r}",
            retryable=False,
        )


def _resolve_agent(ctx: RequestContext[Resource], namespace: str, name: str) -> AgentTarget:
    """The Agent, with the org of its Namespace; refusals per the disclosure rule."""
    try:
        if not ctx.deps.store.writable:  # the mirror may be behind: ask the cluster
            return _agent_from_api(ctx, namespace, name)
        try:
            stored = ctx.deps.store.get_by_name(Kind.AGENT, namespace, name)
        except NotFoundError:
            return _agent_from_api(ctx, namespace, name)
        if not isinstance(stored, agent_pb2.Agent):
            raise TypeError(f"store returned {type(stored).__name__} for an Agent")
        return _agent_from_store(ctx, stored)
    except PipelineError as refusal:
        if namespace != ctx.namespace and refusal.reason.refuses_object:
            raise _not_found_or_not_shared(namespace, name) from None
        raise


def _namespace_org(ctx: RequestContext[Resource], namespace: str, name: str) -> str:
    try:
        return ctx.deps.orgs.org_of(ctx.deps.kube, namespace)
    except InvalidOrgLabel as exc:
        raise PipelineError(
            Reason.FORBIDDEN,
            f"spec.agentRef: Namespace {namespace} of Agent {name} has an invalid "
            f"{ORG_LABEL} label ({exc}); a cluster admin must fix it",
            retryable=False,
        ) from exc


def _agent_from_store(ctx: RequestContext[Resource], agent: agent_pb2.Agent) -> AgentTarget:
    meta = agent.metadata
    return AgentTarget(
        id=meta.id,
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        org=_namespace_org(ctx, meta.namespace, meta.name),
        scope=scope_from_proto(meta.owner_scope),
        sharing=tuple(agent.spec.sharing),
    )


def _agent_from_api(ctx: RequestContext[Resource], namespace: str, name: str) -> AgentTarget:
    raw = ctx.deps.kube.get(ObjectKind.AGENT, namespace, name)
    if raw is None:
        raise PipelineError(
            Reason.AGENT_NOT_FOUND,
            f"spec.agentRef: Agent {namespace}/{name} does not exist (will retry)",
            retryable=False,
        )
    obj: Any = freeze(raw)
    refusal = refusal_of(obj)
    if refusal is not None:
        raise PipelineError(
            Reason.AGENT_NOT_FOUND,
            f"spec.agentRef: Agent {namespace}/{name} was not accepted ({refusal}); "
            "will retry once it is fixed",
            retryable=False,
        )
    sharing = mapping_at(obj, "spec").get("sharing") or ()
    return AgentTarget(
        id=id_of(Kind.AGENT, obj),
        namespace=namespace,
        name=name,
        uid=str_at(obj, "metadata", "uid"),
        org=_namespace_org(ctx, namespace, name),
        scope=scope_of(obj),
        sharing=tuple(s for s in sharing if isinstance(s, str)),
    )


def _check_agent_access(ctx: RequestContext[Resource], org: str, target: AgentTarget) -> None:
    if target.scope is Scope.PLATFORM or target.org == org:
        return
    if org in _shared_with(ctx, target):
        return
    raise _not_found_or_not_shared(target.namespace, target.name)


def _shared_with(ctx: RequestContext[Resource], target: AgentTarget) -> frozenset[str]:
    """Orgs the Agent is shared with: its ownership record, else its spec."""
    if not ctx.deps.store.writable:  # the record may be stale: the spec is current
        return frozenset(target.sharing)
    try:
        record = ctx.deps.store.get_ownership(target.id)
    except NotFoundError:
        return frozenset(target.sharing)
    return frozenset(record.shared_with_orgs)
