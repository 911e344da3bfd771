"""report_failure: conditions, one Warning Event, no store write, never raises."""

from __future__ import annotations

import pytest
from pipeline_world import World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.failure import report_failure
from stigmer_operator.pipeline.kube import NamespaceTerminating, ServerError
from stigmer_operator.pipeline.pipelines import run


def fail(world: World, kind: Kind, name: str, op: Operation = Operation.CREATE) -> PipelineError:
    with pytest.raises(PipelineError) as caught:
        run(kind, op, world.current(kind, name), world.deps, report=True)
    return caught.value


def conditions(world: World, kind: Kind, name: str) -> dict[str, dict[str, object]]:
    status = world.current(kind, name).get("status", {})
    return {c["type"]: c for c in status.get("conditions", [])}


def test_refusal_sets_accepted_and_ready_false_and_posts_one_warning(world: World) -> None:
    world.apply(agent_manifest(instructions="short"))
    error = fail(world, Kind.AGENT, "support-bot")
    found = conditions(world, Kind.AGENT, "support-bot")
    for type_ in ("Ready", "Accepted"):
        assert found[type_]["status"] == "False"
        assert found[type_]["reason"] == "ValidationFailed"
        assert "spec.instructions" in str(found[type_]["message"])
        assert found[type_]["observedGeneration"] == 1
    assert world.current(Kind.AGENT, "support-bot")["status"]["observedGeneration"] == 1
    (event,) = world.kube.events_for("support-bot")
    assert event["type"] == "Warning" and event["reason"] == "ValidationFailed"
    assert error.message in event["message"]


def test_refusal_writes_nothing_else(world: World) -> None:
    world.apply(agent_manifest(instructions="short"))
    fail(world, Kind.AGENT, "support-bot")
    assert world.store.stats().agents == 0
    assert list(world.store.changes()) == []
    assert world.kube.calls_of("create_agent_instance") == []
    assert set(world.current(Kind.AGENT, "support-bot")["status"]) == {
        "observedGeneration",
        "conditions",
    }


def test_retries_of_the_same_failure_do_not_pile_up(world: World) -> None:
    world.apply(agent_manifest(instructions="short"))
    fail(world, Kind.AGENT, "support-bot")
    world.clock.advance(60)
    fail(world, Kind.AGENT, "support-bot")
    assert len(world.kube.events_for("support-bot")) == 1
    assert len(world.kube.calls_of("patch_status")) == 1  # identical status: skipped


def test_infrastructure_failure_sets_ready_unknown_and_keeps_accepted(world: World) -> None:
    world.agent()
    world.edit_spec(Kind.AGENT, "support-bot", description="changed")
    world.kube.fail_next("get", ServerError("get agentinstances: HTTP 503"))
    error = fail(world, Kind.AGENT, "support-bot", Operation.UPDATE)
    assert error.reason is Reason.KUBERNETES_API_ERROR and error.retryable
    found = conditions(world, Kind.AGENT, "support-bot")
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("Unknown", "KubernetesApiError")
    assert found["Accepted"]["status"] == "True"
    assert found["Ready"]["observedGeneration"] == 2


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("forbidden", Reason.FORBIDDEN),
        ("missing-agent", Reason.AGENT_NOT_FOUND),
        ("duplicate", Reason.DUPLICATE_SLUG),
    ],
)
def test_refusal_reasons_set_accepted_false(world: World, setup: str, reason: Reason) -> None:
    if setup == "forbidden":
        world.apply(agent_manifest(scope="platform"))
        kind, name = Kind.AGENT, "support-bot"
    elif setup == "missing-agent":
        world.apply(instance_manifest(agent="absent"))
        kind, name = Kind.AGENT_INSTANCE, "support-bot-prod"
    else:
        world.agent("first", displayName="Same")
        world.apply(agent_manifest("second", displayName="Same"))
        kind, name = Kind.AGENT, "second"
    assert fail(world, kind, name).reason is reason
    found = conditions(world, kind, name)
    assert found["Accepted"]["status"] == "False" and found["Accepted"]["reason"] == reason.value


def test_delete_failures_only_post_an_event(world: World) -> None:
    world.agent()
    ctx: RequestContext[Resource] = world.context(Kind.AGENT, "support-bot", op=Operation.DELETE)
    patches = len(world.kube.calls_of("patch_status"))
    report_failure(ctx, PipelineError(Reason.STORE_ERROR, "disk", retryable=True, step="X"))
    assert len(world.kube.calls_of("patch_status")) == patches
    assert world.kube.events_for("support-bot", "StoreError")


def test_reporting_never_raises(world: World) -> None:
    world.apply(agent_manifest())
    ctx = world.context(Kind.AGENT, "support-bot")
    world.kube.fail_next("patch_status", ServerError("503"))
    world.kube.fail_next("post_event", ServerError("503"))
    report_failure(ctx, PipelineError(Reason.INTERNAL_ERROR, "bug", retryable=True))


def test_blocked_by_another_object_keeps_accepted_true_and_the_mirror(world: World) -> None:
    """A squatted default-instance name blocks the Agent; the spec itself is fine."""
    world.apply(agent_manifest())
    squatter = instance_manifest("support-bot-default")
    squatter["metadata"]["ownerReferences"] = [
        {"kind": "Agent", "name": "other-agent", "uid": "u-other", "controller": True}
    ]
    world.apply(squatter)
    error = fail(world, Kind.AGENT, "support-bot")
    assert error.reason is Reason.DEFAULT_INSTANCE_CONFLICT
    found = conditions(world, Kind.AGENT, "support-bot")
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == (
        "False",
        "DefaultInstanceConflict",
    )
    assert (found["Accepted"]["status"], found["Accepted"]["reason"]) == ("True", "Accepted")
    assert world.store.get_by_name(Kind.AGENT, "team-a", "support-bot").metadata.name
    (event,) = [e for e in world.kube.events_for("support-bot") if e["type"] == "Warning"]
    assert event["reason"] == "DefaultInstanceConflict"


def test_a_terminating_namespace_ends_the_reconcile_without_a_warning(world: World) -> None:
    """The namespace controller is deleting the Agent; its child can never be created."""
    world.apply(agent_manifest())
    world.kube.fail_next(
        "create_agent_instance",
        NamespaceTerminating("create agentinstances team-a/support-bot-default: HTTP 403"),
    )
    error = fail(world, Kind.AGENT, "support-bot")
    assert (error.reason, error.step, error.retryable) == (
        Reason.NAMESPACE_TERMINATING,
        "CreateDefaultInstance",
        False,
    )
    assert error.reason.ends_reconciling and not error.reason.refuses_object
    found = conditions(world, Kind.AGENT, "support-bot")
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == (
        "Unknown",
        "NamespaceTerminating",
    )
    assert world.kube.events_for("support-bot", "NamespaceTerminating") == []
    assert world.kube.calls_of("post_event") == []
