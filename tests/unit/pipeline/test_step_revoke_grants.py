"""A refusal revokes: the revoke pipeline run by ``pipelines.run`` after any refusal.

An instance that becomes refused loses its Secret/ConfigMap grants at once
(its Role is emptied), and a refused object leaves the mirror (the rule:
the mirror holds accepted objects only).
"""

from __future__ import annotations

import pytest
from pipeline_world import World, instance_manifest

from stigmer_operator.api.kinds import ORG_LABEL, Kind
from stigmer_operator.pipeline import pipelines
from stigmer_operator.pipeline.consent import ALLOWED_INSTANCES_ANNOTATION
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.kube import ObjectKind, ServerError
from stigmer_operator.store.errors import NotFoundError

INSTANCE, ROLE = "support-bot-prod", "support-bot-prod-agent"


def rules(world: World) -> list[object]:
    return list(world.kube.objects[(ObjectKind.ROLE, "team-a", ROLE)].get("rules") or [])


def rerun(world: World, kind: Kind = Kind.AGENT_INSTANCE, name: str = INSTANCE) -> PipelineError:
    body = world.current(kind, name)
    with pytest.raises(PipelineError) as caught:
        pipelines.run(kind, Operation.UPDATE, body, world.deps, report=True)
    return caught.value


@pytest.fixture
def granted(world: World) -> World:
    """An accepted instance whose Role grants ``get`` on a consenting Secret."""
    world.agent()
    world.env_source(ObjectKind.SECRET, "db", allowed=INSTANCE)
    world.apply(instance_manifest(environmentRefs=[{"kind": "Secret", "name": "db"}]))
    world.run(Kind.AGENT_INSTANCE, INSTANCE)
    assert rules(world) and world.store.get_by_name(Kind.AGENT_INSTANCE, "team-a", INSTANCE)
    return world


def test_withdrawn_consent_empties_the_role_and_the_mirror_entry_goes(granted: World) -> None:
    secret = granted.kube.objects[(ObjectKind.SECRET, "team-a", "db")]
    secret["metadata"]["annotations"][ALLOWED_INSTANCES_ANNOTATION] = "someone-else"

    error = rerun(granted)

    assert error.reason is Reason.ENVIRONMENT_REF_NOT_ALLOWED
    assert rules(granted) == []
    with pytest.raises(NotFoundError):
        granted.store.get_by_name(Kind.AGENT_INSTANCE, "team-a", INSTANCE)
    status = granted.current(Kind.AGENT_INSTANCE, INSTANCE)["status"]
    accepted = [c for c in status["conditions"] if c["type"] == "Accepted"]
    assert accepted[0]["status"] == "False"
    assert granted.kube.events_for(INSTANCE, "Deleted")


def test_an_agent_no_longer_shared_revokes_the_instance(world: World) -> None:
    world.agent(namespace="team-b", sharing=["team-a"])
    world.env_source(ObjectKind.SECRET, "db")
    world.apply(
        instance_manifest(
            agent_namespace="team-b", environmentRefs=[{"kind": "Secret", "name": "db"}]
        )
    )
    world.run(Kind.AGENT_INSTANCE, INSTANCE)
    world.edit_spec(Kind.AGENT, "support-bot", "team-b", sharing=[])
    world.run(Kind.AGENT, "support-bot", "team-b", op=Operation.UPDATE)

    assert rerun(world).reason is Reason.AGENT_NOT_FOUND
    assert rules(world) == []


def test_an_edit_refused_for_another_reason_revokes_too(granted: World) -> None:
    granted.kube.objects[(ObjectKind.AGENT_INSTANCE, "team-a", INSTANCE)]["metadata"]["labels"] = {
        ORG_LABEL: "someone-elses-org"
    }
    assert rerun(granted).reason is Reason.ORG_MISMATCH
    assert rules(granted) == []


def test_a_fix_grants_again(granted: World) -> None:
    secret = granted.kube.objects[(ObjectKind.SECRET, "team-a", "db")]
    secret["metadata"]["annotations"] = {}
    rerun(granted)
    secret["metadata"]["annotations"] = {ALLOWED_INSTANCES_ANNOTATION: "*"}
    granted.run(Kind.AGENT_INSTANCE, INSTANCE, op=Operation.UPDATE)
    assert rules(granted) != []
    assert granted.store.get_by_name(Kind.AGENT_INSTANCE, "team-a", INSTANCE)


def test_a_role_controlled_by_someone_else_is_not_touched(world: World) -> None:
    world.agent()
    foreign = {"metadata": {"name": ROLE, "namespace": "team-a"}, "rules": [{"verbs": ["get"]}]}
    world.kube.put(ObjectKind.ROLE, foreign)
    world.apply(instance_manifest(environmentRefs=[{"kind": "Secret", "name": "missing"}]))
    assert rerun(world).reason is Reason.ENVIRONMENT_REF_NOT_ALLOWED
    assert rules(world) == [{"verbs": ["get"]}]


def test_a_refused_agent_leaves_the_mirror_and_frees_its_slug(world: World) -> None:
    world.agent(displayName="Support")
    world.edit_spec(Kind.AGENT, "support-bot", instructions="short")
    assert rerun(world, Kind.AGENT, "support-bot").reason is Reason.VALIDATION_FAILED
    with pytest.raises(NotFoundError):
        world.store.get_by_slug(Kind.AGENT, "team-a", "support")
    world.agent("another", displayName="Support")  # the slug is free


def test_a_failed_revoke_is_retried(granted: World) -> None:
    secret = granted.kube.objects[(ObjectKind.SECRET, "team-a", "db")]
    secret["metadata"]["annotations"] = {}
    granted.kube.fail_next("apply_owned", ServerError("apiserver restarting", status=503))

    error = rerun(granted)

    assert error.step == "RevokeGrants" and error.retryable
    assert rules(granted) != []  # still there: the retry must revoke
    status = granted.current(Kind.AGENT_INSTANCE, INSTANCE)["status"]
    assert any(c["reason"] == "EnvironmentRefNotAllowed" for c in status["conditions"])
    rerun(granted)
    assert rules(granted) == []


def test_a_refusal_of_what_was_never_granted_writes_nothing(world: World) -> None:
    world.apply(instance_manifest(agent="nope"))
    log = list(world.store.changes())
    assert rerun(world).reason is Reason.AGENT_NOT_FOUND
    assert not world.kube.calls_of("apply_owned")
    assert list(world.store.changes()) == log
