"""Step 2, Authorize: platform scope, and which Agents an instance may use."""

from __future__ import annotations

import pytest
from pipeline_world import PLATFORM_NS, World, agent_manifest, instance_manifest, step_of

from stigmer_operator.api.kinds import ORG_LABEL, Kind
from stigmer_operator.api.models import Scope
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import AGENT_TARGET, ORG
from stigmer_operator.pipeline.kube import ApiForbidden, ObjectKind
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


def test_agent_of_another_org_reads_as_not_found_or_not_shared(world: World) -> None:
    world.agent(namespace="team-b")
    world.apply(instance_manifest(agent_namespace="team-b"))
    error = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert error.reason is Reason.AGENT_NOT_FOUND and not error.retryable
    assert error.message == (
        "spec.agentRef: Agent team-b/support-bot not found or not shared with you"
    )


@pytest.mark.parametrize("case", ["missing", "not shared", "refused", "not shared, unmirrored"])
def test_another_namespace_discloses_nothing(world: World, case: str) -> None:
    """Whatever the reason, the requester learns one sentence: not found or not shared."""
    if case == "not shared":
        world.namespace("team-b", org="secret-org")
        world.agent(namespace="team-b", sharing=["someone-else"])
    elif case == "refused":
        world.apply(agent_manifest(namespace="team-b", instructions="short"))
        world.kube.objects[(ObjectKind.AGENT, "team-b", "support-bot")]["status"] = {
            "conditions": [{"type": "Accepted", "status": "False", "reason": "ValidationFailed"}]
        }
    elif case == "not shared, unmirrored":
        world.apply(agent_manifest(namespace="team-b"))
    world.apply(instance_manifest(agent_namespace="team-b"))
    error = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert (error.reason, error.retryable, error.message) == (
        Reason.AGENT_NOT_FOUND,
        False,
        "spec.agentRef: Agent team-b/support-bot not found or not shared with you",
    )


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
    assert refused(world, Kind.AGENT_INSTANCE, "support-bot-prod").reason is Reason.AGENT_NOT_FOUND


def test_sharing_of_an_unmirrored_agent_comes_from_its_spec(world: World) -> None:
    world.apply(agent_manifest(namespace="team-b", sharing=["team-a"]))
    world.apply(instance_manifest(agent_namespace="team-b"))
    authorize(world, Kind.AGENT_INSTANCE, "support-bot-prod")


def test_platform_agents_are_usable_by_every_org(world: World) -> None:
    world.agent(namespace=PLATFORM_NS, scope="platform")
    world.apply(instance_manifest(agent_namespace=PLATFORM_NS))
    authorize(world, Kind.AGENT_INSTANCE, "support-bot-prod")


def test_the_namespace_label_puts_two_namespaces_in_one_org(world: World) -> None:
    world.namespace("team-a", org="acme")
    world.namespace("team-b", org="acme")
    world.agent(namespace="team-b")
    world.apply(instance_manifest(agent_namespace="team-b"))
    ctx = world.run_until(STEP, Kind.AGENT_INSTANCE, "support-bot-prod")
    step_of(Kind.AGENT_INSTANCE, STEP).run(ctx)
    assert ctx.values.get(ORG) == "acme" and ctx.values.get(AGENT_TARGET).org == "acme"


def test_a_namespace_without_the_label_is_its_own_org(world: World) -> None:
    world.namespace("team-a")
    world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")
    step_of(Kind.AGENT, STEP).run(ctx)
    assert ctx.values.get(ORG) == "team-a"


def test_an_org_label_on_the_object_cannot_join_another_org(world: World) -> None:
    """The attack: label an instance with a victim's org to use its private Agent."""
    world.namespace("team-b", org="victim")
    world.agent("private", namespace="team-b")
    world.apply(
        instance_manifest(agent="private", agent_namespace="team-b", labels={ORG_LABEL: "victim"})
    )
    error = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert error.reason is Reason.ORG_MISMATCH and not error.retryable
    assert error.reason.refuses_object
    assert "'victim'" in error.message and "org 'team-a'" in error.message


def test_an_org_label_that_agrees_with_the_namespace_is_fine(world: World) -> None:
    world.namespace("team-a", org="acme")
    world.apply(agent_manifest(labels={ORG_LABEL: "acme"}))
    authorize(world, Kind.AGENT, "support-bot")


def test_the_namespace_org_is_cached_per_process(world: World) -> None:
    world.namespace("team-a", org="acme")
    world.agent()
    world.agent("second")
    reads = [c for c in world.kube.calls_of("get_metadata") if c.kind == "Namespace"]
    assert len(reads) == 1


def test_a_malformed_namespace_label_is_refused_not_guessed(world: World) -> None:
    world.namespace("team-a", org="Not An Org")
    world.apply(agent_manifest())
    error = refused(world, Kind.AGENT, "support-bot")
    assert error.reason is Reason.FORBIDDEN and "cluster admin" in error.message


def test_an_unreadable_namespace_is_retried_not_guessed(world: World) -> None:
    world.kube.fail_next("get_metadata", ApiForbidden("namespaces is forbidden", status=403))
    world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")
    with pytest.raises(PipelineError) as caught:
        step_of(Kind.AGENT, STEP).run(ctx)
    assert caught.value.reason is Reason.KUBERNETES_API_ERROR and caught.value.retryable
    assert "docs/security.md" in caught.value.message


# -- Secrets and ConfigMaps by consent ----------------------------------------------


def _instance_with_secret(world: World) -> None:
    world.agent()
    world.apply(instance_manifest(environmentRefs=[{"kind": "Secret", "name": "db"}]))


@pytest.mark.parametrize("allowed", ["support-bot-prod", "*", "other, support-bot-prod"])
def test_a_consenting_secret_may_be_named(world: World, allowed: str) -> None:
    world.env_source(ObjectKind.SECRET, "db", allowed=allowed)
    _instance_with_secret(world)
    authorize(world, Kind.AGENT_INSTANCE, "support-bot-prod")


@pytest.mark.parametrize("allowed", [None, "", "other", "support-bot"])
def test_a_secret_that_does_not_consent_is_refused(world: World, allowed: str | None) -> None:
    world.env_source(ObjectKind.SECRET, "db", allowed=allowed)
    _instance_with_secret(world)
    error = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert error.reason is Reason.ENVIRONMENT_REF_NOT_ALLOWED and error.reason.refuses_object
    assert error.retryable  # the consent may be applied after the instance


def test_a_missing_secret_reads_like_one_that_does_not_consent(world: World) -> None:
    world.env_source(ObjectKind.SECRET, "db", allowed=None)
    _instance_with_secret(world)
    present = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod").message
    world.kube.remove(ObjectKind.SECRET, "team-a", "db")
    missing = refused(world, Kind.AGENT_INSTANCE, "support-bot-prod").message
    assert present == missing and "not found or not allowed" in missing


def test_consent_is_read_from_metadata_only(world: World) -> None:
    world.env_source(ObjectKind.SECRET, "db")
    _instance_with_secret(world)
    authorize(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    assert not [c for c in world.kube.calls_of("get") if c.kind == "Secret"]
    assert [c for c in world.kube.calls_of("get_metadata") if c.kind == "Secret"]
