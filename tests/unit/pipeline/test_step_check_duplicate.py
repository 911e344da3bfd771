"""Step 4, CheckDuplicate: one slug per org and kind, and an object is not its own duplicate."""

from __future__ import annotations

import pytest
from pipeline_world import World, agent_manifest, step_of

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import STALE_ENTRIES
from stigmer_operator.pipeline.kube import ObjectKind

STEP = "CheckDuplicate"


def check(world: World, name: str, namespace: str = "team-a") -> None:
    ctx = world.run_until(STEP, Kind.AGENT, name, namespace)
    step_of(Kind.AGENT, STEP).run(ctx)


def test_free_slug_passes(world: World) -> None:
    world.apply(agent_manifest())
    check(world, "support-bot")


def test_same_display_name_in_one_namespace_is_a_duplicate(world: World) -> None:
    world.agent("first", displayName="Support")
    world.apply(agent_manifest("second", displayName="Support"))
    with pytest.raises(PipelineError) as caught:
        check(world, "second")
    error = caught.value
    assert error.reason is Reason.DUPLICATE_SLUG and not error.retryable
    assert "'support'" in error.message and "Agent team-a/first" in error.message


def test_two_namespaces_of_one_org_collide(world: World) -> None:
    world.namespace("team-a", org="acme")
    world.namespace("team-b", org="acme")
    world.agent("first", "team-a", displayName="Support")
    world.apply(agent_manifest("second", "team-b", displayName="Support"))
    with pytest.raises(PipelineError) as caught:
        check(world, "second", "team-b")
    assert caught.value.reason is Reason.DUPLICATE_SLUG
    assert "org 'acme'" in caught.value.message and "team-a/first" in caught.value.message


def test_two_orgs_may_share_a_slug(world: World) -> None:
    world.agent("first", "team-a", displayName="Support")
    world.apply(agent_manifest("second", "team-b", displayName="Support"))
    check(world, "second", "team-b")


def test_the_object_itself_is_not_a_duplicate(world: World) -> None:
    world.agent()
    for op in (Operation.RESUME, Operation.UPDATE, Operation.CREATE):
        ctx = world.run_until(STEP, Kind.AGENT, "support-bot", op=op)
        step_of(Kind.AGENT, STEP, op).run(ctx)


def test_slug_of_an_object_deleted_behind_our_back_is_stale_not_duplicate(world: World) -> None:
    world.agent("first", displayName="Support")
    world.kube.remove(ObjectKind.AGENT, "team-a", "first")  # gone without a delete handler
    world.apply(agent_manifest("second", displayName="Support"))
    ctx = world.run_until(STEP, Kind.AGENT, "second")
    step_of(Kind.AGENT, STEP).run(ctx)
    (stale,) = ctx.values.get(STALE_ENTRIES)
    assert stale.kind is Kind.AGENT and "deleted object" in stale.why
