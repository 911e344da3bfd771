"""Step 11, TransformResponse: the status document users and tools read.

camelCase, like the rest of the API, and nothing secret: ids, slug,
references and audit times only -- never environment values, headers or
instructions (``kubectl get -o yaml`` is readable by many more people than
the Secrets are).

Conditions come from :func:`~stigmer_operator.pipeline.conditions.succeeded`:
``Accepted=True`` and ``Ready=True``, or ``Ready=False`` for an Agent whose
default instance is not Ready yet (``kubectl wait --for=condition=Ready``
keeps waiting, and the Agent is re-reconciled when its default instance
changes), plus ``Mirrored=False`` while the store cannot record the object.
"""

from __future__ import annotations

import time
from typing import Any

from google.protobuf import timestamp_pb2

from stigmer_operator.api.kinds import Resource
from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2, resource_pb2
from stigmer_operator.pipeline.conditions import RFC3339_FORMAT, succeeded
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.frozen import thaw
from stigmer_operator.pipeline.keys import DEFAULT_INSTANCE_READY, MIRROR_BEHIND
from stigmer_operator.pipeline.meta import conditions_of

_AUDIT_EVENTS = {
    resource_pb2.AUDIT_EVENT_CREATED: "created",
    resource_pb2.AUDIT_EVENT_UPDATED: "updated",
    resource_pb2.AUDIT_EVENT_DELETED: "deleted",
}


class TransformResponse:
    name = "TransformResponse"

    def run(self, ctx: RequestContext[Resource]) -> None:
        state = ctx.new_state
        meta = state.metadata
        status: dict[str, Any] = {
            "observedGeneration": ctx.generation,
            "id": meta.id,
            "slug": meta.slug,
        }
        if isinstance(state, agent_pb2.Agent):
            status["defaultInstanceId"] = state.status.default_instance_id
            status["defaultInstanceName"] = state.status.default_instance_name
        elif isinstance(state, agent_instance_pb2.AgentInstance):
            status["agentId"] = state.status.agent_id
            status["serviceAccountName"] = state.status.service_account_name
        status["audit"] = _audit(state.status.audit)
        status["conditions"] = _conditions(ctx)
        ctx.status = status


def _audit(audit: resource_pb2.Audit) -> dict[str, str]:
    return {
        "createdAt": _time(audit.created_at),
        "updatedAt": _time(audit.updated_at),
        "event": _AUDIT_EVENTS.get(audit.event, ""),
    }


def _time(stamp: timestamp_pb2.Timestamp) -> str:
    """RFC 3339 at second precision, as ``metav1.Time`` serializes (no datetime detour)."""
    return time.strftime(RFC3339_FORMAT, time.gmtime(stamp.seconds))


def _conditions(ctx: RequestContext[Resource]) -> list[dict[str, Any]]:
    not_ready_instance = None
    if ctx.values.find(DEFAULT_INSTANCE_READY) is False:
        name = (
            ctx.new_state.status.default_instance_name
            if isinstance(ctx.new_state, agent_pb2.Agent)
            else ""
        )
        not_ready_instance = f"{ctx.namespace}/{name}"
    return succeeded(
        thaw(conditions_of(ctx.body)),
        ctx.kind.value,
        ctx.generation,
        ctx.deps.clock(),
        not_ready_instance=not_ready_instance,
        mirror_behind=ctx.values.find(MIRROR_BEHIND),
    )
