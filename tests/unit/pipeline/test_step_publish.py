"""Step 10, Publish: one Event per change-log entry, never two, none without a change."""

from __future__ import annotations

import pytest
from pipeline_world import World, agent_manifest, step_of

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.context import Operation, Outcome
from stigmer_operator.pipeline.errors import PipelineError
from stigmer_operator.pipeline.keys import RESOURCE_ID
from stigmer_operator.pipeline.kube import ApiForbidden, ServerError
from stigmer_operator.pipeline.runner import Pipeline

STEP = "Publish"


def unpublished(world: World) -> list[int]:
    return [e.sequence for e in world.store.changes() if not e.published]


def test_create_posts_one_normal_event_and_marks_the_entry(world: World) -> None:
    agent = world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")
    step_of(Kind.AGENT, STEP).run(ctx)
    (event,) = world.kube.events_for("support-bot")
    assert event["type"] == "Normal" and event["reason"] == "Created"
    assert event["involvedObject"] == {
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "Agent",
        "namespace": "team-a",
        "name": "support-bot",
        "uid": agent["metadata"]["uid"],
    }
    assert ctx.values.get(RESOURCE_ID) in event["message"]
    assert unpublished(world) == []


def test_nothing_changed_means_no_event(world: World) -> None:
    world.agent()
    posted = len(world.kube.calls_of("post_event"))
    ctx = world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert len(world.kube.calls_of("post_event")) == posted
    assert dict((o.step, o.outcome) for o in ctx.outcomes)[STEP] is Outcome.UNCHANGED


def test_update_posts_updated(world: World) -> None:
    world.agent()
    world.edit_spec(Kind.AGENT, "support-bot", description="changed")
    world.run(Kind.AGENT, "support-bot", op=Operation.UPDATE)
    reasons = [e["reason"] for e in world.kube.events_for("support-bot")]
    assert sorted(reasons) == ["Created", "Updated"]


def test_crash_before_publish_is_caught_up_once_after_restart(world: World) -> None:
    world.apply(agent_manifest())
    world.run_until(STEP, Kind.AGENT, "support-bot")  # "crash" right before Publish
    assert len(unpublished(world)) == 1
    world.restart()  # new process: the outbox is rebuilt from the store
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert [e["reason"] for e in world.kube.events_for("support-bot")] == ["Created"]
    assert unpublished(world) == []
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert len(world.kube.events_for("support-bot")) == 1


def test_crash_between_event_and_mark_published_does_not_duplicate(world: World) -> None:
    world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")
    with pytest.MonkeyPatch.context() as patch:  # "crash" before mark_published
        patch.setattr(world.store, "mark_published", lambda sequence: None)
        Pipeline("p", [step_of(Kind.AGENT, STEP).steps[0]]).run(ctx)
    assert len(unpublished(world)) == 1
    world.restart()
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    posts = world.kube.calls_of("post_event")
    assert len(posts) == 2 and posts[0].name == posts[1].name  # same deterministic name
    assert len(world.kube.events_for("support-bot")) == 1
    assert unpublished(world) == []


def test_delete_publishes_deleted(world: World) -> None:
    world.agent()
    world.run(Kind.AGENT, "support-bot", op=Operation.DELETE)
    reasons = [e["reason"] for e in world.kube.events_for("support-bot")]
    assert sorted(reasons) == ["Created", "Deleted"]


def test_delete_in_a_terminating_namespace_is_not_held_up(world: World) -> None:
    world.agent()
    world.kube.fail_next("post_event", ApiForbidden("namespace team-a is being terminated"))
    world.run(Kind.AGENT, "support-bot", op=Operation.DELETE)
    assert unpublished(world) == []


def test_event_failures_outside_deletion_are_errors(world: World) -> None:
    world.apply(agent_manifest())
    world.kube.fail_next("post_event", ServerError("503"))
    with pytest.raises(PipelineError) as caught:
        world.run(Kind.AGENT, "support-bot")
    assert caught.value.step == STEP and caught.value.retryable
    assert len(unpublished(world)) == 1
