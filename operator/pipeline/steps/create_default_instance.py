"""Step 8, CreateDefaultInstance (Agent only): every Agent has one ready-to-use instance.

The default instance is an ordinary AgentInstance named ``<agent>-default``
(hash-shortened when that would exceed 253 characters) in the Agent's
namespace, with a *controller* ownerReference to the Agent's uid
(``blockOwnerDeletion``), so deleting the Agent garbage-collects it, and the
level-triggered reconcile recreates it if someone deletes it alone.

What it carries, and what it must not: the labels
``agentic.stigmer.ai/agent`` (the agent's name, hash-shortened to a valid
label value) and ``agentic.stigmer.ai/default-instance: "true"``, the
``managed-by`` label, and the Agent's org label (so both live in one org).
Nothing else is copied from the Agent -- in particular no GitOps tracking
labels or annotations (``app.kubernetes.io/instance``, ``argocd.argoproj.io/*``,
``kustomize.toolkit.fluxcd.io/*``, ``helm.sh/*``): Argo CD or Flux would
otherwise claim the operator's child as their own and prune it.

Idempotent: an existing object of that name controlled by this Agent is
success. One controlled by anything else (or by nothing) is not touched:
``DefaultInstanceConflict``, permanent, with a message saying what to do --
except the default instance a former Agent of the same name left (deleted
and re-applied): labelled as the operator's, controlled by that former
Agent. The garbage collector would remove it, in its own time (minutes,
after a control-plane restart); the step deletes it itself, with the old
object's uid as a precondition, and only after reading back that this
Agent is the live one (a late run of a deleted Agent must never delete its
successor's instance). Were that refused, the error is retryable.
The spec is written out in full (``scope`` too, as the CRD would default
it), and the object carries the annotations ``Deps.children`` asks for: the
operator's handlers mark it as already handled for kopf, because the Agent's
run reconciles it next (:mod:`.reconcile_default_instance`); what kopf
compares must then be exactly what the API server stores.

On a resume or an update -- the common case -- the instance already exists,
so the step reads before it creates. For a just-created Agent it creates
first and reads only if the name is taken: one request instead of two. On
a resume at start-up the listing taken then
(:mod:`~stigmer_operator.pipeline.listing`) stands in for the read: an
instance listed as this Agent's is kept without a request (as listed; if
the watch shows later that it changed or went, the Agent runs again and
reads), one missing is created first, and anything else is read as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stigmer_operator.api.kinds import (
    API_VERSION,
    DEFAULT_INSTANCE_LABEL,
    GROUP,
    ORG_LABEL,
    Kind,
    Resource,
)
from stigmer_operator.api.models import Scope
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.frozen import str_at
from stigmer_operator.pipeline.keys import DEFAULT_INSTANCE
from stigmer_operator.pipeline.kube import (
    AlreadyExists,
    ApiForbidden,
    Conflict,
    ObjectKind,
    controller_ref,
)
from stigmer_operator.pipeline.listing import Seen
from stigmer_operator.pipeline.meta import MANAGED_BY
from stigmer_operator.pipeline.naming import default_instance_name, label_value

AGENT_LABEL = f"{GROUP}/agent"


class CreateDefaultInstance:
    name = "CreateDefaultInstance"

    def run(self, ctx: RequestContext[Resource]) -> None:
        if ctx.kind is not Kind.AGENT:
            raise TypeError("CreateDefaultInstance runs for Agents only")
        name = default_instance_name(ctx.name)
        existing = _read_existing(ctx, name)
        if existing is not None and not _cleared_former(ctx, existing):
            _keep_existing(ctx, existing)
            return
        try:
            created = _create(ctx, name)
        except AlreadyExists as exc:  # a re-run, or created between our read and our create
            if not _cleared_former(ctx, exc.existing):
                _keep_existing(ctx, exc.existing)
                return
            try:
                created = _create(ctx, name)
            except AlreadyExists as again:  # taken again in between: left alone
                _keep_existing(ctx, again.existing)
                return
        # A fresh object no one else holds: handed on as is, read-only by contract.
        ctx.values.put(DEFAULT_INSTANCE, created)


def _read_existing(ctx: RequestContext[Resource], name: str) -> Mapping[str, Any] | None:
    """The instance of that name, if a read is worth it (see the module docstring)."""
    listed = ctx.listed(ObjectKind.AGENT_INSTANCE, name)
    if listed.body is not None and _owned(ctx, listed.body):
        return listed.body
    if ctx.operation is Operation.CREATE or listed.seen is Seen.ABSENT:
        return None
    return ctx.deps.kube.get(ObjectKind.AGENT_INSTANCE, ctx.namespace, name)


def _create(ctx: RequestContext[Resource], name: str) -> Mapping[str, Any]:
    return ctx.deps.kube.create_agent_instance(default_instance_body(ctx, name))


def _cleared_former(ctx: RequestContext[Resource], existing: Mapping[str, Any]) -> bool:
    """Delete ``existing`` if a former Agent of this name left it; whether it went."""
    if not _left_by_former_self(ctx, existing):
        return False
    try:
        ctx.deps.kube.delete(
            ObjectKind.AGENT_INSTANCE,
            ctx.namespace,
            str_at(existing, "metadata", "name"),
            uid=str_at(existing, "metadata", "uid"),
        )
    except (Conflict, ApiForbidden):  # replaced meanwhile, or no delete right
        return False
    return True


def _left_by_former_self(ctx: RequestContext[Resource], existing: Mapping[str, Any]) -> bool:
    """Is ``existing`` the operator's default instance of a former Agent of this name?"""
    labels = (existing.get("metadata") or {}).get("labels") or {}
    owner = controller_ref(existing) or {}
    if (
        labels.get(MANAGED_BY[0]) != MANAGED_BY[1]
        or labels.get(DEFAULT_INSTANCE_LABEL) != "true"
        or owner.get("kind") != Kind.AGENT.value
        or owner.get("name") != ctx.name
        or str(owner.get("apiVersion", "")).partition("/")[0] != GROUP
        or owner.get("uid") == ctx.uid
    ):
        return False
    live = ctx.deps.kube.get(ObjectKind.AGENT, ctx.namespace, ctx.name)
    return live is not None and str_at(live, "metadata", "uid") == ctx.uid


def default_instance_body(ctx: RequestContext[Resource], name: str) -> dict[str, Any]:
    """The AgentInstance manifest; labels are built, never copied (see module doc)."""
    labels = {
        AGENT_LABEL: label_value(ctx.name),
        DEFAULT_INSTANCE_LABEL: "true",
        MANAGED_BY[0]: MANAGED_BY[1],
    }
    org = ctx.labels.get(ORG_LABEL)
    if isinstance(org, str):
        labels[ORG_LABEL] = org
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": Kind.AGENT_INSTANCE.value,
        "metadata": {
            "name": name,
            "namespace": ctx.namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": Kind.AGENT.value,
                    "name": ctx.name,
                    "uid": ctx.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"agentRef": {"name": ctx.name}, "scope": Scope.ORGANIZATION.value},
    }
    children = ctx.deps.children
    if children is not None:
        body["metadata"]["annotations"] = dict(children.annotations(body))
    return body


def _keep_existing(ctx: RequestContext[Resource], existing: Mapping[str, Any]) -> None:
    _check_owned(ctx, existing)
    ctx.mark_unchanged()
    ctx.values.put(DEFAULT_INSTANCE, existing)


def _owned(ctx: RequestContext[Resource], existing: Mapping[str, Any]) -> bool:
    owner = controller_ref(existing)
    return owner is not None and owner.get("uid") == ctx.uid


def _check_owned(ctx: RequestContext[Resource], existing: Mapping[str, Any]) -> None:
    if _owned(ctx, existing):
        return
    owner = controller_ref(existing)
    name = str_at(existing, "metadata", "name")
    where = f"AgentInstance {ctx.namespace}/{name} already exists but is not owned by this Agent"
    if (
        owner is not None
        and owner.get("kind") == Kind.AGENT.value
        and owner.get("name") == ctx.name
    ):
        raise PipelineError(
            Reason.DEFAULT_INSTANCE_CONFLICT,
            f"{where}: it belongs to a former Agent of the same name (uid {owner.get('uid')}); "
            "waiting for the garbage collector to delete it",
            retryable=True,
            delay=ctx.deps.settings.retry_delay,
        )
    held_by = (
        f"it is controlled by {owner.get('kind')} {owner.get('name')} (uid {owner.get('uid')})"
        if owner is not None
        else "it has no controller"
    )
    raise PipelineError(
        Reason.DEFAULT_INSTANCE_CONFLICT,
        f"{where} ({held_by}); delete or rename it so the default instance can be created",
        retryable=False,
    )
