"""DeleteResource: the mirror goes, history stays, idempotent."""

from __future__ import annotations

import pytest
from pipeline_world import World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.pipeline.context import Operation, Outcome
from stigmer_operator.pipeline.keys import CHANGE
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.store.errors import NotFoundError


def test_delete_removes_entry_indexes_and_ownership_but_keeps_history(world: World) -> None:
    world.agent(displayName="Support")
    agent_id = world.current(Kind.AGENT, "support-bot")["status"]["id"]
    ctx = world.run(Kind.AGENT, "support-bot", op=Operation.DELETE)
    assert ctx.values.get(CHANGE).change == store_pb2.CHANGE_TYPE_DELETED
    with pytest.raises(NotFoundError):
        world.store.get(Kind.AGENT, agent_id)
    with pytest.raises(NotFoundError):
        world.store.get_by_slug(Kind.AGENT, "team-a", "support")
    with pytest.raises(NotFoundError):
        world.store.get_ownership(agent_id)
    assert world.history(Kind.AGENT, agent_id) == 1


def test_deleting_twice_is_a_no_op(world: World) -> None:
    world.agent()
    world.run(Kind.AGENT, "support-bot", op=Operation.DELETE)
    ctx = world.run(Kind.AGENT, "support-bot", op=Operation.DELETE)
    assert [o.outcome for o in ctx.outcomes] == [Outcome.UNCHANGED, Outcome.UNCHANGED]
    assert len(world.kube.events_for("support-bot", "Deleted")) == 1


def test_a_refused_object_can_be_deleted(world: World) -> None:
    world.apply(agent_manifest(instructions="bad"))
    ctx = world.run(Kind.AGENT, "support-bot", op=Operation.DELETE)
    assert ctx.values.find(CHANGE) is None


def test_delete_never_touches_another_object_of_the_same_name(world: World) -> None:
    world.agent()
    world.apply(instance_manifest())
    world.run(Kind.AGENT_INSTANCE, "support-bot-prod")
    stranger = instance_manifest()
    stranger["metadata"]["uid"] = "never-seen"  # same name, another object
    world.kube.put(ObjectKind.AGENT_INSTANCE, stranger)
    ctx = world.run(Kind.AGENT_INSTANCE, "support-bot-prod", op=Operation.DELETE)
    assert ctx.values.find(CHANGE) is None
    assert world.store.get_by_name(Kind.AGENT_INSTANCE, "team-a", "support-bot-prod")
