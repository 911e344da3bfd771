"""Step 9, UpdateAgentStatusWithDefaultInstance: the Agent knows its default instance.

Records the default instance's id and name in the Agent's stored status
(``status.default_instance_id/name``). The id is the instance's
``status.id`` if its own pipeline already assigned one, else the id that
pipeline *will* assign -- both come from the same uid-derived
:func:`~stigmer_operator.pipeline.naming.resource_id`, so they agree.

The store is written again only if those fields changed, and that save
appends no history (the spec hash and generation are unchanged). The
instance's readiness is handed to TransformResponse: an Agent reports
``Ready=True`` only once its default instance exists *and* is Ready.
"""

from __future__ import annotations

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_pb2
from stigmer_operator.pipeline.conditions import ConditionType, is_true
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.frozen import str_at
from stigmer_operator.pipeline.keys import DEFAULT_INSTANCE, DEFAULT_INSTANCE_READY
from stigmer_operator.pipeline.meta import conditions_of, id_of
from stigmer_operator.pipeline.mirror import mirror_write


class UpdateAgentStatusWithDefaultInstance:
    name = "UpdateAgentStatusWithDefaultInstance"

    def run(self, ctx: RequestContext[Resource]) -> None:
        state = ctx.new_state
        if not isinstance(state, agent_pb2.Agent):
            raise TypeError("UpdateAgentStatusWithDefaultInstance runs for Agents only")
        instance = ctx.values.get(DEFAULT_INSTANCE)
        ready = is_true(conditions_of(instance), ConditionType.READY) and not str_at(
            instance, "metadata", "deletionTimestamp"
        )
        ctx.values.put(DEFAULT_INSTANCE_READY, ready)
        instance_id = id_of(Kind.AGENT_INSTANCE, instance)
        instance_name = str_at(instance, "metadata", "name")
        status = state.status
        if (status.default_instance_id, status.default_instance_name) == (
            instance_id,
            instance_name,
        ):
            ctx.mark_unchanged()
            return
        status.default_instance_id = instance_id
        status.default_instance_name = instance_name
        with mirror_write(ctx):
            entry = ctx.deps.store.save(state)
            if entry is not None:  # only if history was purged meanwhile; publish it too
                ctx.deps.outbox.track(ctx.deps.store, entry)
