"""RevokeGrants (refusal pipelines): a refused AgentInstance keeps no access.

An object that was accepted and becomes refused -- its Agent is no longer
shared with it, a Secret withdrew its consent, its org label disagrees
with its Namespace -- must not keep what it was granted while it was
accepted. The instance's Role is emptied (the same object, no rules, so the
ServiceAccount and RoleBinding stay and a fix re-grants with one patch);
a Role not controlled by this instance is not touched. An Agent has no
grants of its own: its ownership record goes with its mirror entry
(DeleteResource, the next step of the refusal pipeline).
"""

from __future__ import annotations

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.kube import ApplyResult, ObjectKind, controller_uid
from stigmer_operator.pipeline.naming import service_account_name
from stigmer_operator.pipeline.steps.create_iam_policies import iam_metadata


class RevokeGrants:
    name = "RevokeGrants"

    def run(self, ctx: RequestContext[Resource]) -> None:
        if ctx.kind is not Kind.AGENT_INSTANCE or not _empty_role(ctx):
            ctx.mark_unchanged()


def _empty_role(ctx: RequestContext[Resource]) -> bool:
    """Empty this instance's Role; ``False`` when there was nothing to revoke."""
    name = service_account_name(ctx.name)
    kube = ctx.deps.kube
    role = kube.get(ObjectKind.ROLE, ctx.namespace, name)
    if role is None or controller_uid(role) != ctx.uid or not role.get("rules"):
        return False
    body = {
        "apiVersion": ObjectKind.ROLE.api_version,
        "kind": ObjectKind.ROLE.kind,
        "metadata": iam_metadata(ctx, name),
        "rules": [],
    }
    return kube.apply_owned(ObjectKind.ROLE, body) is not ApplyResult.UNCHANGED
