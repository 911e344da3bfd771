"""Step 1, ValidateFieldConstraints."""

from __future__ import annotations

import pytest
from pipeline_world import World, agent_manifest, instance_manifest, step_of

from stigmer_operator.api.kinds import ORG_LABEL, Kind
from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import SPEC
from stigmer_operator.pipeline.kube import ObjectKind

STEP = "ValidateFieldConstraints"


def validate(world: World, kind: Kind, name: str) -> PipelineError | None:
    try:
        ctx = world.context(kind, name)
        step_of(kind, STEP).run(ctx)
    except PipelineError as error:
        return error
    return None


def test_valid_agent_stashes_the_model(world: World) -> None:
    world.apply(agent_manifest(displayName="Support"))
    ctx = world.context(Kind.AGENT, "support-bot")
    step_of(Kind.AGENT, STEP).run(ctx)
    model = ctx.values.get(SPEC)
    assert isinstance(model, AgentSpec) and model.display_name == "Support"


def test_valid_instance(world: World) -> None:
    world.apply(instance_manifest())
    ctx = world.context(Kind.AGENT_INSTANCE, "support-bot-prod")
    step_of(Kind.AGENT_INSTANCE, STEP).run(ctx)
    assert isinstance(ctx.values.get(SPEC), AgentInstanceSpec)


def test_every_violation_is_reported_with_its_path_and_not_retried(world: World) -> None:
    world.apply(
        agent_manifest(
            instructions="short",
            mcpServers=[{"name": "a"}, {"name": "a", "http": {"url": "ftp://x"}}],
            labels={ORG_LABEL: "Not_An_Org"},
        )
    )
    error = validate(world, Kind.AGENT, "support-bot")
    assert error is not None
    assert error.reason is Reason.VALIDATION_FAILED and not error.retryable
    assert error.step == STEP
    message = error.message
    assert "\n" not in message
    for path in (
        "spec.instructions",
        "spec.mcpServers[0]",
        "spec.mcpServers[1].http.url",
        f"metadata.labels[{ORG_LABEL}]",
    ):
        assert path in message, path


def test_missing_spec_is_a_validation_failure(world: World) -> None:
    world.kube.put(ObjectKind.AGENT, {"metadata": {"name": "empty", "namespace": "team-a"}})
    error = validate(world, Kind.AGENT, "empty")
    assert error is not None and "spec.instructions: is required" in error.message


def test_unknown_fields_are_refused(world: World) -> None:
    world.apply(instance_manifest(replicas=3))
    error = validate(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert error is not None and "spec.replicas" in error.message


@pytest.mark.parametrize("org", ["other-org", "a"])
def test_a_well_formed_org_label_passes_validation(world: World, org: str) -> None:
    world.apply(agent_manifest(labels={ORG_LABEL: org}))
    assert validate(world, Kind.AGENT, "support-bot") is None  # agreement: see Authorize


@pytest.mark.parametrize("org", ["", "UPPER", "-x", "a" * 64])
def test_bad_org_labels_are_refused(world: World, org: str) -> None:
    world.apply(agent_manifest(labels={ORG_LABEL: org}))
    error = validate(world, Kind.AGENT, "support-bot")
    assert error is not None and error.reason is Reason.VALIDATION_FAILED
    assert f"metadata.labels[{ORG_LABEL}]" in error.message
