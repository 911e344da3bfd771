"""Step 9, UpdateAgentStatusWithDefaultInstance."""

from __future__ import annotations

import pytest
from pipeline_world import World, agent_manifest, step_of

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import agent_pb2
from stigmer_operator.pipeline.context import Operation, Outcome
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import DEFAULT_INSTANCE_READY, RESOURCE_ID
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.naming import resource_id
from stigmer_operator.store.errors import StoreError

STEP = "UpdateAgentStatusWithDefaultInstance"


def update(world: World, op: Operation = Operation.CREATE) -> tuple[Outcome, bool]:
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot", op=op)
    step_of(Kind.AGENT, STEP, op).run(ctx)
    return ctx.outcomes[-1].outcome, ctx.values.get(DEFAULT_INSTANCE_READY)


def stored(world: World) -> agent_pb2.Agent:
    agent = world.store.get_by_name(Kind.AGENT, "team-a", "support-bot")
    assert isinstance(agent, agent_pb2.Agent)
    return agent


def test_sets_id_and_name_and_saves_without_new_history(world: World) -> None:
    world.apply(agent_manifest())
    assert update(world) == (Outcome.SUCCEEDED, False)
    instance = world.kube.objects[(ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")]
    agent = stored(world)
    # the same id the instance's own pipeline will assign
    assert agent.status.default_instance_id == resource_id(
        Kind.AGENT_INSTANCE, instance["metadata"]["uid"]
    )
    assert agent.status.default_instance_name == "support-bot-default"
    assert world.history(Kind.AGENT, agent.metadata.id) == 1


def test_rerun_is_unchanged(world: World) -> None:
    world.agent()
    log_before = list(world.store.changes())
    assert update(world, Operation.RESUME)[0] is Outcome.UNCHANGED
    assert list(world.store.changes()) == log_before


def test_prefers_the_id_the_instance_already_has(world: World) -> None:
    world.agent()
    world.run(Kind.AGENT_INSTANCE, "support-bot-default")
    instance = world.current(Kind.AGENT_INSTANCE, "support-bot-default")
    assert stored(world).status.default_instance_id == instance["status"]["id"]


def test_readiness_follows_the_default_instance_ready_condition(world: World) -> None:
    world.agent()
    assert update(world, Operation.RESUME)[1] is False
    world.mark_ready(Kind.AGENT_INSTANCE, "support-bot-default")
    assert update(world, Operation.RESUME)[1] is True


def test_a_deleting_default_instance_is_not_ready(world: World) -> None:
    world.agent()
    world.mark_ready(Kind.AGENT_INSTANCE, "support-bot-default")
    key = (ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")
    world.kube.objects[key]["metadata"]["deletionTimestamp"] = "2026-01-18T20:00:00Z"
    assert update(world, Operation.RESUME)[1] is False


def test_resource_id_is_the_agents(world: World) -> None:
    world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")
    assert ctx.values.get(RESOURCE_ID).startswith("agt-")


def test_store_failure_is_a_retryable_store_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")

    def broken(resource: object) -> None:
        raise StoreError("write stall")

    monkeypatch.setattr(world.store, "save", broken)
    with pytest.raises(PipelineError) as caught:
        step_of(Kind.AGENT, STEP).run(ctx)
    assert caught.value.reason is Reason.STORE_ERROR and caught.value.retryable
