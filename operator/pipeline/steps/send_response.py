"""Step 12, SendResponse: one status patch, or none.

Writes the document TransformResponse built -- fields, conditions and
``observedGeneration`` together -- as one JSON merge patch on the
``/status`` subresource (never ``spec``: the operator does not fight
``kubectl apply``, Helm or GitOps over the desired state). Status fields the
operator owns but no longer sets are removed (``null`` in a merge patch).

When the object's status already says exactly this, there is no patch at
all. That matters: every status write bumps ``resourceVersion`` and wakes
every watcher, kopf included, so an unconditional patch turns each reconcile
into the trigger of the next one.
"""

from __future__ import annotations

from typing import Any

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.frozen import thaw

#: Every top-level status field the pipelines write (either kind).
OWNED_STATUS_FIELDS = frozenset(
    {
        "observedGeneration",
        "id",
        "slug",
        "defaultInstanceId",
        "defaultInstanceName",
        "agentId",
        "serviceAccountName",
        "audit",
        "conditions",
    }
)


def status_patch(current: Any, desired: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch making ``current`` equal ``desired`` (owned fields); ``None`` if equal."""
    current = thaw(current) if current else {}
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if current.get(key) != value:
            patch = dict(desired)
            break
    for key in OWNED_STATUS_FIELDS - desired.keys():
        if key in current:
            patch = patch or dict(desired)
            patch[key] = None
    return patch or None


class SendResponse:
    name = "SendResponse"

    def run(self, ctx: RequestContext[Resource]) -> None:
        patch = status_patch(ctx.current_status, ctx.status)
        if patch is None:
            ctx.mark_unchanged()
            return
        ctx.deps.kube.patch_status(ctx.kind, ctx.namespace, ctx.name, patch)
