"""Step 6, Persist: one atomic save, idempotent, stale entries removed first."""

from __future__ import annotations

import pytest
from pipeline_world import World, agent_manifest, step_of

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.pipeline.context import Operation, Outcome
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import CHANGE, RESOURCE_ID
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.store.errors import StoreError

STEP = "Persist"


def test_first_save_appends_history_and_a_log_entry(world: World) -> None:
    world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")
    step_of(Kind.AGENT, STEP).run(ctx)
    change = ctx.values.get(CHANGE)
    rid = ctx.values.get(RESOURCE_ID)
    assert change.change == store_pb2.CHANGE_TYPE_CREATED and change.id == rid
    assert world.store.get(Kind.AGENT, rid) == ctx.new_state
    assert world.history(Kind.AGENT, rid) == 1
    assert [e.id for e in world.deps.outbox.pending(world.store, Kind.AGENT, rid)] == [rid]


def test_resaving_the_same_spec_is_unchanged(world: World) -> None:
    world.agent()
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot", op=Operation.RESUME)
    step_of(Kind.AGENT, STEP, Operation.RESUME).run(ctx)
    assert ctx.values.find(CHANGE) is None
    assert ctx.outcomes[-1].outcome is Outcome.UNCHANGED
    assert world.history(Kind.AGENT, ctx.values.get(RESOURCE_ID)) == 1


def test_stale_entries_are_deleted_before_saving(world: World) -> None:
    world.agent("first", displayName="Support")
    old_id = world.store.get_by_name(Kind.AGENT, "team-a", "first").metadata.id
    world.kube.remove(ObjectKind.AGENT, "team-a", "first")
    world.apply(agent_manifest("second", displayName="Support"))
    ctx = world.run_until(STEP, Kind.AGENT, "second")
    step_of(Kind.AGENT, STEP).run(ctx)
    assert [a.metadata.name for a in world.store.list(Kind.AGENT)] == ["second"]
    assert world.store.get_by_slug(Kind.AGENT, "team-a", "support").metadata.name == "second"
    assert world.history(Kind.AGENT, old_id) == 1  # history survives


def test_store_failures_are_retryable_store_errors(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")

    def broken(resource: object) -> None:
        raise StoreError("IO error: No space left on device")

    monkeypatch.setattr(world.store, "save", broken)
    with pytest.raises(PipelineError) as caught:
        step_of(Kind.AGENT, STEP).run(ctx)
    assert caught.value.reason is Reason.STORE_ERROR and caught.value.retryable
    assert "No space left" in caught.value.message
