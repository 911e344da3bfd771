"""Step 12, SendResponse: one status patch, or none when nothing changed."""

from __future__ import annotations

import pytest
from pipeline_world import World, agent_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.context import Operation, Outcome
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.kube import NotFound, ServerError
from stigmer_operator.pipeline.steps.send_response import status_patch

STEP = "SendResponse"


def test_first_run_patches_status_once(world: World) -> None:
    world.apply(agent_manifest())
    ctx = world.run(Kind.AGENT, "support-bot")
    (patch,) = world.kube.calls_of("patch_status")
    assert (patch.kind, patch.namespace, patch.name) == ("Agent", "team-a", "support-bot")
    status = world.current(Kind.AGENT, "support-bot")["status"]
    assert status == ctx.status


def test_identical_status_is_not_patched_again(world: World) -> None:
    world.agent()
    world.clock.advance(3600)
    ctx = world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert len(world.kube.calls_of("patch_status")) == 1
    assert dict((o.step, o.outcome) for o in ctx.outcomes)[STEP] is Outcome.UNCHANGED


def test_changed_status_is_patched_with_everything(world: World) -> None:
    world.agent()
    world.mark_ready(Kind.AGENT_INSTANCE, "support-bot-default")
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert len(world.kube.calls_of("patch_status")) == 2
    status = world.current(Kind.AGENT, "support-bot")["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Accepted": "True",
    }


def test_status_patch_nulls_owned_fields_no_longer_set() -> None:
    current = {"id": "x", "agentId": "old", "foreign": 1}
    assert status_patch(current, {"id": "x"}) == {"id": "x", "agentId": None}
    assert status_patch(current, {"id": "x", "agentId": "old"}) is None
    assert status_patch({}, {"id": "x"}) == {"id": "x"}
    assert status_patch(None, {"id": "x"}) == {"id": "x"}


def test_api_failures_are_reported_with_retryability(world: World) -> None:
    world.apply(agent_manifest())
    world.kube.fail_next("patch_status", ServerError("patch agents/status: HTTP 503"))
    with pytest.raises(PipelineError) as caught:
        world.run(Kind.AGENT, "support-bot")
    error = caught.value
    assert (error.step, error.reason, error.retryable) == (
        STEP,
        Reason.KUBERNETES_API_ERROR,
        True,
    )
    assert "HTTP 503" in error.message
    world.kube.fail_next("patch_status", NotFound("patch agents/status: HTTP 404"))
    with pytest.raises(PipelineError) as caught:
        world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert caught.value.reason is Reason.KUBERNETES_API_ERROR and not caught.value.retryable
