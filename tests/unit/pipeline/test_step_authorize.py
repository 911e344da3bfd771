"""Step 2, Authorize: platform scope, and which Agents an instance may use."""

from __future__ import annotations

import pytest
from pipeline_world import PLATFORM_NS, World, agent_manifest, instance_manifest, step_of

from stigmer_operator.api.kinds import ORG_LABEL, Kind
from stigmer_operator.api.models import Scope
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import AGENT_TARGET
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.naming import resource_id

STEP = "Authorize"


def authorize(world: World, kind: Kind, name: str, namespace: str = "team-a") -> None:
    ctx = world.run_until(STEP, kind, name, namespace)
    step_of(kind, STEP).run(ctx)


def refused(world: World, kind: Kind, name: str, namespace: str = "team-a") -> PipelineError:
    with pytest.raises(PipelineError) as caught:
        authorize(world, kind, name, namespace)
    assert caught.value.step == STEP
    return caught.value


def test_platform_scope_outside_platform_namespaces_is_forbidden(world: World) -> None:
    world.apply(agent_manifest(scope="platform"))
    error = refused(world, Kind.AGENT, "support-bot")
    assert error.reason is Reason.FORBIDDEN and not error.retryable
    assert PLATFORM_NS in error.message and "'team-a'" in error.message


def test_platform_scope_in_a_platform_namespace_is_allowed(world: World) -> None:
    world.apply(agent_manifest(namespace=PLATFORM_NS, scope="platform"))
    authorize(world, Kind.AGENT, "support-bot", PLATFORM_NS)


def test_instance_platform_scope_is_forbidden_too(world: World) -> None:
    world.agent()
    world.apply(instance_manifest(scope="platform"))
    assert refused(world, Kind.AGENT_INSTANCE, "support-bot-prod").reason is Reason.FORBIDDEN


def test_instance_of_an_agent_in_its_own_org_resolves_from_the_store(world: World) -> None:
    world.agent()
    world.apply(instance_manifest())
    ctx = world.run_until(STEP, Kind.AGENT_INSTANCE, "support-bot-prod")
    calls_before = len(world.kube.calls)
    step_of(Kind.AGENT_INSTANCE, STEP).run(ctx)
    target = ctx.values.get(AGENT_TARGET)
    agent = world.current(Kind.AGENT, "support-bot")
    assert target.id == agent["status"]["id"]
    assert target.org == "team-a" and target.scope is Scope.ORGANIZATION
    assert len(world.kube.calls) == calls_before  # no API round trip


def test_missing_agent_is_not_retried_on_a_timer(world: World) -> None:
    world.apply(instance_manifest(agent="nope"))
    error = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert error.reason is Reason.AGENT_NOT_FOUND
    assert not error.retryable  # the Agent's handlers wake the instance when it appears
    assert "team-a/nope" in error.message


def test_agent_not_yet_mirrored_is_resolved_through_the_api(world: World) -> None:
    agent = world.apply(agent_manifest())
    world.apply(instance_manifest())
    ctx = world.run_until(STEP, Kind.AGENT_INSTANCE, "support-bot-prod")
    step_of(Kind.AGENT_INSTANCE, STEP).run(ctx)
    assert ctx.values.get(AGENT_TARGET).id == resource_id(Kind.AGENT, agent["metadata"]["uid"])


def test_refused_agent_counts_as_not_found_yet(world: World) -> None:
    world.apply(agent_manifest(instructions="short"))
    with pytest.raises(PipelineError):
        world.run(Kind.AGENT, "support-bot")
    world.kube.objects[(ObjectKind.AGENT, "team-a", "support-bot")]["status"] = {
        "conditions": [{"type": "Accepted", "status": "False", "reason": "ValidationFailed"}]
    }
    world.apply(instance_manifest())
    error = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert error.reason is Reason.AGENT_NOT_FOUND and not error.retryable
    assert "not accepted" in error.message


def test_agent_of_another_org_is_forbidden(world: World) -> None:
    world.agent(namespace="team-b")
    world.apply(instance_manifest(agent_namespace="team-b"))
    error = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert error.reason is Reason.FORBIDDEN and not error.retryable
    assert "org 'team-b'" in error.message and "org 'team-a'" in error.message


def test_agent_shared_with_the_org_is_allowed_via_its_ownership_record(world: World) -> None:
    world.agent(namespace="team-b", sharing=["team-a"])
    world.apply(instance_manifest(agent_namespace="team-b"))
    authorize(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    agent_id = world.current(Kind.AGENT, "support-bot", "team-b")["status"]["id"]
    assert list(world.store.get_ownership(agent_id).shared_with_orgs) == ["team-a"]


def test_ownership_record_is_what_counts_once_it_exists(world: World) -> None:
    world.agent(namespace="team-b", sharing=["team-a"])
    agent_id = world.current(Kind.AGENT, "support-bot", "team-b")["status"]["id"]
    record = world.store.get_ownership(agent_id)
    del record.shared_with_orgs[:]
    world.store.put_ownership(record)
    world.apply(instance_manifest(agent_namespace="team-b"))
    assert refused(world, Kind.AGENT_INSTANCE, "support-bot-prod").reason is Reason.FORBIDDEN


def test_sharing_of_an_unmirrored_agent_comes_from_its_spec(world: World) -> None:
    world.apply(agent_manifest(namespace="team-b", sharing=["team-a"]))
    world.apply(instance_manifest(agent_namespace="team-b"))
    authorize(world, Kind.AGENT_INSTANCE, "support-bot-prod")


def test_platform_agents_are_usable_by_every_org(world: World) -> None:
    world.agent(namespace=PLATFORM_NS, scope="platform")
    world.apply(instance_manifest(agent_namespace=PLATFORM_NS))
    authorize(world, Kind.AGENT_INSTANCE, "support-bot-prod")


def test_org_label_puts_two_namespaces_in_one_org(world: World) -> None:
    world.agent(namespace="team-b", labels={ORG_LABEL: "acme"})
    world.apply(instance_manifest(agent_namespace="team-b", labels={ORG_LABEL: "acme"}))
    authorize(world, Kind.AGENT_INSTANCE, "support-bot-prod")
