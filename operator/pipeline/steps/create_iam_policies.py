"""Step 7, CreateIamPolicies: least-privilege access, the Kubernetes way.

For an **AgentInstance**: a ServiceAccount ``<instance>-agent``, a Role of
the same name that can ``get`` exactly the Secrets and ConfigMaps its
``spec.environmentRefs`` name -- each of which consented to this instance,
as Authorize checked (:mod:`~stigmer_operator.pipeline.consent`) --
(``resourceNames``; one rule per kind that has
references, none for a kind without), and a RoleBinding granting that Role
to that ServiceAccount. An instance with no references still gets all three
objects, the Role with no rules: the set of objects never depends on the
spec, so removing the last reference *revokes* access (the Role is emptied)
instead of leaving a stale Role behind. All three carry a controller
ownerReference to the instance, so the garbage collector deletes them with
it, and the ``managed-by`` label.

For an **Agent**: the ownership record (org, scope, sharing) that
Authorize reads when an AgentInstance references the Agent.

Both are create-or-update and skip the write when nothing differs; for a
just-created instance the three objects are created without reading them
first (three GETs fewer per new instance; a taken name is read after the
409). On a resume at start-up the listing taken then
(:mod:`~stigmer_operator.pipeline.listing`) stands in for the reads: a
listed object already as wanted costs no request, one missing is created
first, and any other is read and written as usual. An
existing object of that name controlled by someone else is left alone:
``IamConflict`` -- retryable when its controller is a former AgentInstance
of the same name (the garbage collector is about to delete it), permanent
otherwise.

One exception: an object the operator made (``managed-by`` label) for a
former AgentInstance of the same name -- a deleted default instance that
was re-created, say -- is deleted by the operator itself and replaced,
instead of waiting for the garbage collector, which can lag for minutes
(after an API server restart, for one). The delete carries the orphan's uid
as a precondition, so it can never remove a newer object of that name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stigmer_operator.api.convert import scope_to_proto
from stigmer_operator.api.kinds import API_VERSION, GROUP, Kind, Resource
from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec, EnvironmentRefKind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.frozen import str_at
from stigmer_operator.pipeline.keys import ORG, RESOURCE_ID, SERVICE_ACCOUNT, SPEC
from stigmer_operator.pipeline.kube import (
    AlreadyExists,
    ApiForbidden,
    ApplyResult,
    Conflict,
    ObjectKind,
    already_applied,
    controller_ref,
)
from stigmer_operator.pipeline.listing import Seen
from stigmer_operator.pipeline.meta import MANAGED_BY
from stigmer_operator.pipeline.mirror import mirror_write
from stigmer_operator.pipeline.naming import label_value, service_account_name
from stigmer_operator.store.errors import NotFoundError

INSTANCE_LABEL = "agentic.stigmer.ai/agent-instance"

_RESOURCES = {EnvironmentRefKind.SECRET: "secrets", EnvironmentRefKind.CONFIG_MAP: "configmaps"}


class CreateIamPolicies:
    name = "CreateIamPolicies"

    def run(self, ctx: RequestContext[Resource]) -> None:
        spec = ctx.values.get(SPEC)
        if isinstance(spec, AgentSpec):
            changed = _put_ownership(ctx, spec)
        else:
            changed = _apply_instance_iam(ctx, spec)
        if not changed:
            ctx.mark_unchanged()


def _put_ownership(ctx: RequestContext[Resource], spec: AgentSpec) -> bool:
    record = store_pb2.OwnershipRecord(
        agent_id=ctx.values.get(RESOURCE_ID),
        org=ctx.values.get(ORG),
        namespace=ctx.namespace,
        name=ctx.name,
        scope=scope_to_proto(spec.scope),
        shared_with_orgs=sorted(set(spec.sharing)),
    )
    store = ctx.deps.store
    try:
        current: store_pb2.OwnershipRecord | None = store.get_ownership(record.agent_id)
    except NotFoundError:
        current = None
    if current == record:
        return False
    with mirror_write(ctx):  # while it cannot be written, Authorize does not rely on it
        store.put_ownership(record)
    return True


def _apply_instance_iam(ctx: RequestContext[Resource], spec: AgentInstanceSpec) -> bool:
    name = service_account_name(ctx.name)
    metadata = iam_metadata(ctx, name)
    desired: list[tuple[ObjectKind, dict[str, Any]]] = [
        (ObjectKind.SERVICE_ACCOUNT, {"metadata": metadata}),
        (ObjectKind.ROLE, {"metadata": metadata, "rules": role_rules(spec)}),
        (
            ObjectKind.ROLE_BINDING,
            {
                "metadata": metadata,
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ctx.namespace}],
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": name,
                },
            },
        ),
    ]
    results = [_apply(ctx, kind, body) for kind, body in desired]
    ctx.values.put(SERVICE_ACCOUNT, name)
    return any(result is not ApplyResult.UNCHANGED for result in results)


def role_rules(spec: AgentInstanceSpec) -> list[dict[str, Any]]:
    """``get`` on exactly the named Secrets/ConfigMaps; no rule for a kind with no refs."""
    rules = []
    for ref_kind, resource in _RESOURCES.items():
        names = sorted({ref.name for ref in spec.environment_refs if ref.kind is ref_kind})
        if names:
            rules.append(
                {
                    "apiGroups": [""],
                    "resources": [resource],
                    "verbs": ["get"],
                    "resourceNames": names,
                }
            )
    return rules


def iam_metadata(ctx: RequestContext[Resource], name: str) -> dict[str, Any]:
    """Name, labels and controller ownerReference of the instance's IAM objects."""
    return {
        "name": name,
        "namespace": ctx.namespace,
        "labels": {MANAGED_BY[0]: MANAGED_BY[1], INSTANCE_LABEL: label_value(ctx.name)},
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": Kind.AGENT_INSTANCE.value,
                "name": ctx.name,
                "uid": ctx.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def _apply(ctx: RequestContext[Resource], kind: ObjectKind, body: dict[str, Any]) -> ApplyResult:
    listed = ctx.listed(kind, body["metadata"]["name"])
    if listed.body is not None and already_applied(kind, listed.body, _manifest(kind, body)):
        return ApplyResult.UNCHANGED
    likely_absent = ctx.operation is Operation.CREATE or listed.seen is Seen.ABSENT
    try:
        return _apply_owned(ctx, kind, body, likely_absent=likely_absent)
    except AlreadyExists as exc:
        if not _orphan_of_former_self(ctx, exc.existing):
            raise _conflict(ctx, exc) from exc
        try:
            ctx.deps.kube.delete(
                kind,
                ctx.namespace,
                body["metadata"]["name"],
                uid=str_at(exc.existing, "metadata", "uid"),
            )
        except (Conflict, ApiForbidden) as refused:  # replaced meanwhile, or no delete right
            raise _conflict(ctx, exc) from refused
    try:
        return _apply_owned(ctx, kind, body, likely_absent=True)
    except AlreadyExists as exc:  # taken again in between: left alone
        raise _conflict(ctx, exc) from exc


def _apply_owned(
    ctx: RequestContext[Resource], kind: ObjectKind, body: dict[str, Any], *, likely_absent: bool
) -> ApplyResult:
    return ctx.deps.kube.apply_owned(kind, _manifest(kind, body), likely_absent=likely_absent)


def _manifest(kind: ObjectKind, body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": kind.api_version, "kind": kind.kind, **body}


def _controlled_by_former_self(ctx: RequestContext[Resource], existing: Mapping[str, Any]) -> bool:
    """Is ``existing`` controlled by an AgentInstance of this name (this one or a former)?"""
    owner = controller_ref(existing)
    return (
        owner is not None
        and owner.get("kind") == Kind.AGENT_INSTANCE.value
        and owner.get("name") == ctx.name
    )


def _orphan_of_former_self(ctx: RequestContext[Resource], existing: Mapping[str, Any]) -> bool:
    """Did the operator make ``existing`` for a former AgentInstance of this name?

    Names are unique in a namespace, so while the instance being reconciled
    is the live one, a same-named controller of another uid no longer
    exists: the object only waits for the garbage collector. The live
    instance is read back so that a late handling of a deleted instance
    never removes the objects of its successor.
    """
    labels = (existing.get("metadata") or {}).get("labels") or {}
    owner = controller_ref(existing) or {}
    if (
        labels.get(MANAGED_BY[0]) != MANAGED_BY[1]
        or not _controlled_by_former_self(ctx, existing)
        or str(owner.get("apiVersion", "")).partition("/")[0] != GROUP
        or owner.get("uid") == ctx.uid
    ):
        return False
    live = ctx.deps.kube.get(ObjectKind.AGENT_INSTANCE, ctx.namespace, ctx.name)
    return live is not None and str_at(live, "metadata", "uid") == ctx.uid


def _conflict(ctx: RequestContext[Resource], exc: AlreadyExists) -> PipelineError:
    """``IamConflict``: retryable while the garbage collector may still remove the object."""
    former_self = _controlled_by_former_self(ctx, exc.existing)
    return PipelineError(
        Reason.IAM_CONFLICT,
        f"{exc}; "
        + (
            "waiting for the garbage collector to remove it"
            if former_self
            else "rename or delete it so the AgentInstance can own it"
        ),
        retryable=former_self,
        delay=ctx.deps.settings.retry_delay if former_self else None,
    )
