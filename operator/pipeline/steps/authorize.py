"""Step 2, Authorize: who may own this object, and may it use that Agent?

Two rules, both about organizations (an org is a namespace, or what the
``agentic.stigmer.ai/org`` label says):

* ``scope: platform`` marks a resource every org may use. Only the
  operator's platform namespaces may declare it; anywhere else it would let
  any namespace publish to everyone. Refused with reason ``Forbidden``.
* An AgentInstance may deploy an Agent of its own org, a platform Agent, or
  an Agent shared with its org -- per the Agent's ownership record (written
  by the Agent's CreateIamPolicies step) or, if the Agent is not mirrored
  yet, its ``spec.sharing``. Anything else is ``Forbidden``.

The referenced Agent is looked up in the store first (no API round trip),
then in the API (the Agent may simply not have been reconciled yet). If it
does not exist, the error is ``AgentNotFound`` and not retryable: applying an
instance before its Agent is normal with GitOps tools, and the Agent's own
handlers re-run the instances waiting for it the moment it appears or is
fixed (``wake_instances`` in :mod:`stigmer_operator.handlers.agent`), so a
timed retry would only add load.
"""

from __future__ import annotations

from typing import Any

from stigmer_operator.api.convert import scope_from_proto
from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.models import AgentInstanceSpec, Scope
from stigmer_operator.api.v1 import agent_pb2
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.frozen import freeze, mapping_at, str_at
from stigmer_operator.pipeline.keys import AGENT_TARGET, ORG, SPEC, AgentTarget
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.meta import InvalidOrgLabel, id_of, org_of, refusal_of, scope_of
from stigmer_operator.store.errors import NotFoundError


class Authorize:
    name = "Authorize"

    def run(self, ctx: RequestContext[Resource]) -> None:
        spec = ctx.values.get(SPEC)
        _check_scope(ctx, spec.scope)
        if isinstance(spec, AgentInstanceSpec):
            org = ctx.values.get(ORG)
            namespace = spec.agent_ref.namespace or ctx.namespace
            target = _resolve_agent(ctx, namespace, spec.agent_ref.name)
            _check_agent_access(ctx, org, target)
            ctx.values.put(AGENT_TARGET, target)


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
    try:
        stored = ctx.deps.store.get_by_name(Kind.AGENT, namespace, name)
    except NotFoundError:
        return _agent_from_api(ctx, namespace, name)
    if not isinstance(stored, agent_pb2.Agent):
        raise TypeError(f"store returned {type(stored).__name__} for an Agent")
    return _agent_from_store(stored)


def _agent_from_store(agent: agent_pb2.Agent) -> AgentTarget:
    meta = agent.metadata
    return AgentTarget(
        id=meta.id,
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        org=meta.org,
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
    try:
        org = org_of(namespace, mapping_at(obj, "metadata", "labels"))
    except InvalidOrgLabel as exc:
        raise PipelineError(
            Reason.FORBIDDEN,
            f"spec.agentRef: Agent {namespace}/{name} has an invalid org label: {exc}",
            retryable=False,
        ) from exc
    sharing = mapping_at(obj, "spec").get("sharing") or ()
    return AgentTarget(
        id=id_of(Kind.AGENT, obj),
        namespace=namespace,
        name=name,
        uid=str_at(obj, "metadata", "uid"),
        org=org,
        scope=scope_of(obj),
        sharing=tuple(s for s in sharing if isinstance(s, str)),
    )


def _check_agent_access(ctx: RequestContext[Resource], org: str, target: AgentTarget) -> None:
    if target.scope is Scope.PLATFORM or target.org == org:
        return
    if org in _shared_with(ctx, target):
        return
    raise PipelineError(
        Reason.FORBIDDEN,
        f"spec.agentRef: Agent {target.namespace}/{target.name} belongs to org {target.org!r} "
        f"and is not shared with org {org!r} (the Agent's spec.sharing must list it)",
        retryable=False,
    )


def _shared_with(ctx: RequestContext[Resource], target: AgentTarget) -> frozenset[str]:
    """Orgs the Agent is shared with: its ownership record, else its spec."""
    try:
        record = ctx.deps.store.get_ownership(target.id)
    except NotFoundError:
        return frozenset(target.sharing)
    return frozenset(record.shared_with_orgs)
