"""Step 8, CreateDefaultInstance: exactly one, owned, clean labels, valid names."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pipeline_world import World, agent_manifest, instance_manifest, step_of

from stigmer_operator.api.kinds import ORG_LABEL, Kind
from stigmer_operator.pipeline.context import Operation, Outcome
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import DEFAULT_INSTANCE
from stigmer_operator.pipeline.kube import AlreadyExists, ObjectKind

STEP = "CreateDefaultInstance"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GITOPS_LABELS = {
    "app.kubernetes.io/instance": "support",
    "argocd.argoproj.io/instance": "support",
    "kustomize.toolkit.fluxcd.io/name": "apps",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    "helm.sh/chart": "agents-1.0.0",
    "app.kubernetes.io/managed-by": "Helm",
}
GITOPS_ANNOTATIONS = {
    "argocd.argoproj.io/tracking-id": "support:agentic.stigmer.ai/Agent:team-a/support-bot",
    "argocd.argoproj.io/sync-options": "Prune=false",
    "meta.helm.sh/release-name": "agents",
    "kustomize.toolkit.fluxcd.io/checksum": "abc",
}


def default_instances(world: World) -> list[dict[str, Any]]:
    return [
        obj
        for (kind, _, _), obj in world.kube.objects.items()
        if kind is ObjectKind.AGENT_INSTANCE
        and obj["metadata"].get("labels", {}).get("agentic.stigmer.ai/default-instance") == "true"
    ]


def create(world: World, name: str = "support-bot", op: Operation = Operation.CREATE) -> Outcome:
    ctx = world.run_until(STEP, Kind.AGENT, name, op=op)
    step_of(Kind.AGENT, STEP, op).run(ctx)
    assert ctx.values.get(DEFAULT_INSTANCE)["metadata"]["name"]
    return ctx.outcomes[-1].outcome


def test_default_instance_is_owned_by_the_agent_and_refers_to_it(world: World) -> None:
    agent = world.apply(agent_manifest())
    assert create(world) is Outcome.SUCCEEDED
    (instance,) = default_instances(world)
    meta = instance["metadata"]
    assert (meta["name"], meta["namespace"]) == ("support-bot-default", "team-a")
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "agentic.stigmer.ai/v1",
            "kind": "Agent",
            "name": "support-bot",
            "uid": agent["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["labels"] == {
        "agentic.stigmer.ai/agent": "support-bot",
        "agentic.stigmer.ai/default-instance": "true",
        "app.kubernetes.io/managed-by": "stigmer-operator",
    }
    assert instance["spec"] == {"agentRef": {"name": "support-bot"}, "scope": "organization"}


def test_no_gitops_labels_or_annotations_are_copied(world: World) -> None:
    world.namespace("team-a", org="acme")
    world.apply(
        agent_manifest(
            labels={**GITOPS_LABELS, ORG_LABEL: "acme", "team": "a"},
            annotations=GITOPS_ANNOTATIONS,
        )
    )
    create(world)
    (instance,) = default_instances(world)
    labels = instance["metadata"]["labels"]
    assert "annotations" not in instance["metadata"]
    assert labels[ORG_LABEL] == "acme"  # the one label that is carried over
    assert labels["app.kubernetes.io/managed-by"] == "stigmer-operator"
    assert not {"app.kubernetes.io/instance", "team"} & labels.keys()
    assert not [k for k in labels if k.startswith(("argocd.", "kustomize.", "helm.sh"))]


def test_existing_default_instance_owned_by_this_agent_is_success(world: World) -> None:
    world.agent()
    calls = len(world.kube.calls_of("create_agent_instance"))
    assert create(world, op=Operation.RESUME) is Outcome.UNCHANGED
    assert len(world.kube.calls_of("create_agent_instance")) == calls
    assert len(default_instances(world)) == 1


def test_a_new_agent_creates_without_reading_first_a_resume_reads(world: World) -> None:
    world.apply(agent_manifest())

    def instance_calls() -> list[str]:
        return [c.method for c in world.kube.calls if c.kind == "AgentInstance"]

    assert create(world) is Outcome.SUCCEEDED
    assert instance_calls() == ["create_agent_instance"]
    assert create(world) is Outcome.UNCHANGED  # kopf re-running the create handler
    assert create(world, op=Operation.RESUME) is Outcome.UNCHANGED
    assert instance_calls() == ["create_agent_instance", "create_agent_instance", "get"]
    assert len(default_instances(world)) == 1


def test_already_exists_race_owned_by_this_agent_is_success(world: World) -> None:
    agent = world.apply(agent_manifest())
    mine = instance_manifest("support-bot-default")
    mine["metadata"]["ownerReferences"] = [
        {
            "kind": "Agent",
            "name": "support-bot",
            "uid": agent["metadata"]["uid"],
            "controller": True,
        }
    ]
    world.kube.fail_next("create_agent_instance", AlreadyExists("exists", mine))
    create(world)


def test_instance_owned_by_another_object_is_a_clear_permanent_error(world: World) -> None:
    world.apply(agent_manifest())
    theirs = instance_manifest("support-bot-default")
    theirs["metadata"]["ownerReferences"] = [
        {"kind": "Agent", "name": "other-agent", "uid": "u-other", "controller": True}
    ]
    world.apply(theirs)
    with pytest.raises(PipelineError) as caught:
        create(world)
    error = caught.value
    assert error.reason is Reason.DEFAULT_INSTANCE_CONFLICT and not error.retryable
    assert "team-a/support-bot-default" in error.message
    assert "controlled by Agent other-agent" in error.message
    assert "delete or rename it" in error.message


def test_unowned_instance_of_that_name_is_a_conflict(world: World) -> None:
    world.apply(agent_manifest())
    world.apply(instance_manifest("support-bot-default"))
    with pytest.raises(PipelineError) as caught:
        create(world)
    assert caught.value.reason is Reason.DEFAULT_INSTANCE_CONFLICT
    assert "has no controller" in caught.value.message


def test_an_unlabelled_instance_of_a_former_agent_of_that_name_is_retried(world: World) -> None:
    world.apply(agent_manifest())
    old = instance_manifest("support-bot-default")
    old["metadata"]["ownerReferences"] = [
        {"kind": "Agent", "name": "support-bot", "uid": "u-old", "controller": True}
    ]
    world.apply(old)
    with pytest.raises(PipelineError) as caught:
        create(world)
    assert caught.value.reason is Reason.DEFAULT_INSTANCE_CONFLICT and caught.value.retryable


def _left_by(world: World, agent_uid: str) -> dict[str, Any]:
    """The default instance an Agent of uid ``agent_uid`` had: the operator's own labels."""
    old = instance_manifest(
        "support-bot-default",
        labels={
            "agentic.stigmer.ai/default-instance": "true",
            "app.kubernetes.io/managed-by": "stigmer-operator",
        },
    )
    old["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "agentic.stigmer.ai/v1",
            "kind": "Agent",
            "name": "support-bot",
            "uid": agent_uid,
            "controller": True,
        }
    ]
    return world.apply(old)


@pytest.mark.parametrize("op", [Operation.CREATE, Operation.RESUME])
def test_the_default_instance_a_former_agent_left_is_replaced(world: World, op: Operation) -> None:
    agent = world.apply(agent_manifest())
    left = _left_by(world, "u-old")

    assert create(world, op=op) is Outcome.SUCCEEDED

    (instance,) = default_instances(world)
    assert instance["metadata"]["uid"] != left["metadata"]["uid"]
    assert instance["metadata"]["ownerReferences"][0]["uid"] == agent["metadata"]["uid"]
    deletes = world.kube.calls_of("delete")
    assert len(deletes) == 1


def test_a_late_run_of_a_deleted_agent_never_deletes_its_successors_instance(
    world: World,
) -> None:
    world.apply(agent_manifest())
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot")  # the run of the first Agent ...
    world.kube.remove(ObjectKind.AGENT, "team-a", "support-bot")
    successor = world.apply(agent_manifest())  # ... which was deleted and re-applied
    _left_by(world, successor["metadata"]["uid"])

    with pytest.raises(PipelineError) as caught:
        step_of(Kind.AGENT, STEP).run(ctx)

    assert caught.value.reason is Reason.DEFAULT_INSTANCE_CONFLICT
    assert not world.kube.calls_of("delete")
    (instance,) = default_instances(world)
    assert instance["metadata"]["ownerReferences"][0]["uid"] == successor["metadata"]["uid"]


def test_long_agent_names_give_valid_names_and_label_values(world: World) -> None:
    name = "a" * 120 + "." + "b" * 132
    world.apply(agent_manifest(name))
    create(world, name)
    (instance,) = default_instances(world)
    child = instance["metadata"]["name"]
    assert len(child) <= 253 and DNS_SUBDOMAIN.match(child) and child.endswith("-default")
    assert all(len(v) <= 63 for v in instance["metadata"]["labels"].values())
    assert instance["spec"]["agentRef"]["name"] == name
    assert create(world, name, Operation.RESUME) is Outcome.UNCHANGED  # same name next time
