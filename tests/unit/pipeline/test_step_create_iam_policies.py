"""Step 7, CreateIamPolicies: ServiceAccount/Role/RoleBinding per instance; ownership per Agent."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_world import World, instance_manifest, step_of

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import resource_pb2
from stigmer_operator.pipeline.context import Operation, Outcome
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import SERVICE_ACCOUNT
from stigmer_operator.pipeline.kube import Conflict, ObjectKind

STEP = "CreateIamPolicies"
LONG = "i" * 253


def objects(world: World, name: str) -> dict[ObjectKind, dict[str, Any]]:
    return {
        kind: world.kube.objects[(kind, "team-a", name)]
        for kind in (ObjectKind.SERVICE_ACCOUNT, ObjectKind.ROLE, ObjectKind.ROLE_BINDING)
    }


def iam(world: World, name: str, op: Operation = Operation.CREATE) -> Outcome:
    ctx = world.run_until(STEP, Kind.AGENT_INSTANCE, name, op=op)
    step_of(Kind.AGENT_INSTANCE, STEP, op).run(ctx)
    assert ctx.values.find(SERVICE_ACCOUNT) is not None
    return ctx.outcomes[-1].outcome


def test_instance_gets_a_service_account_role_and_binding(world: World) -> None:
    world.agent()
    refs = [
        {"kind": "Secret", "name": "api-key"},
        {"kind": "ConfigMap", "name": "settings"},
        {"kind": "Secret", "name": "another"},
    ]
    for ref in refs:
        kind = ObjectKind.SECRET if ref["kind"] == "Secret" else ObjectKind.CONFIG_MAP
        world.env_source(kind, ref["name"], allowed="support-bot-prod")
    inst = world.apply(instance_manifest(environmentRefs=refs))
    iam(world, "support-bot-prod")
    made = objects(world, "support-bot-prod-agent")
    assert made[ObjectKind.ROLE]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["another", "api-key"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["get"],
            "resourceNames": ["settings"],
        },
    ]
    binding = made[ObjectKind.ROLE_BINDING]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "support-bot-prod-agent", "namespace": "team-a"}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "support-bot-prod-agent",
    }
    for obj in made.values():
        meta = obj["metadata"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "stigmer-operator"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "agentic.stigmer.ai/v1",
                "kind": "AgentInstance",
                "name": "support-bot-prod",
                "uid": inst["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_no_rule_for_a_kind_without_refs_and_no_rules_without_refs(world: World) -> None:
    world.agent()
    world.env_source(ObjectKind.CONFIG_MAP, "c", allowed="only-maps, someone-else")
    world.apply(
        instance_manifest("only-maps", environmentRefs=[{"kind": "ConfigMap", "name": "c"}])
    )
    world.apply(instance_manifest("nothing"))
    iam(world, "only-maps")
    iam(world, "nothing")
    assert [
        r["resources"] for r in objects(world, "only-maps-agent")[ObjectKind.ROLE]["rules"]
    ] == [["configmaps"]]
    assert objects(world, "nothing-agent")[ObjectKind.ROLE]["rules"] == []


def test_rerun_is_unchanged_and_removing_refs_revokes(world: World) -> None:
    world.agent()
    world.env_source(ObjectKind.SECRET, "api-key")
    world.apply(instance_manifest(environmentRefs=[{"kind": "Secret", "name": "api-key"}]))
    world.run(Kind.AGENT_INSTANCE, "support-bot-prod")
    assert iam(world, "support-bot-prod", Operation.RESUME) is Outcome.UNCHANGED
    world.edit_spec(Kind.AGENT_INSTANCE, "support-bot-prod", environmentRefs=[])
    assert iam(world, "support-bot-prod", Operation.UPDATE) is Outcome.SUCCEEDED
    assert objects(world, "support-bot-prod-agent")[ObjectKind.ROLE]["rules"] == []


def test_a_new_instance_creates_without_reading_first_a_rerun_reads(world: World) -> None:
    world.agent()
    world.apply(instance_manifest())
    world.run(Kind.AGENT_INSTANCE, "support-bot-prod")
    first = [(c.kind, c.name) for c in world.kube.created_first]
    assert first == [
        (kind, "support-bot-prod-agent") for kind in ("ServiceAccount", "Role", "RoleBinding")
    ]
    assert iam(world, "support-bot-prod", Operation.RESUME) is Outcome.UNCHANGED
    assert iam(world, "support-bot-prod", Operation.UPDATE) is Outcome.UNCHANGED
    assert len(world.kube.created_first) == 3


def test_long_instance_names_give_valid_names_and_labels(world: World) -> None:
    world.agent()
    world.apply(instance_manifest(LONG))
    iam(world, LONG)
    (sa,) = [k for k in world.kube.objects if k[0] is ObjectKind.SERVICE_ACCOUNT]
    assert len(sa[2]) <= 253 and sa[2].endswith("-agent")
    labels = world.kube.objects[sa]["metadata"]["labels"]
    assert all(len(v) <= 63 for v in labels.values())


def test_object_of_someone_else_is_a_permanent_conflict(world: World) -> None:
    world.agent()
    world.kube.put(
        ObjectKind.SERVICE_ACCOUNT,
        {"metadata": {"name": "support-bot-prod-agent", "namespace": "team-a"}},
    )
    world.apply(instance_manifest())
    with pytest.raises(PipelineError) as caught:
        iam(world, "support-bot-prod")
    assert caught.value.reason is Reason.IAM_CONFLICT and not caught.value.retryable
    assert "ServiceAccount support-bot-prod-agent" in caught.value.message


def test_object_of_a_former_instance_of_that_name_is_retried(world: World) -> None:
    world.agent()
    owner = {"kind": "AgentInstance", "name": "support-bot-prod", "uid": "old", "controller": True}
    world.kube.put(
        ObjectKind.SERVICE_ACCOUNT,
        {
            "metadata": {
                "name": "support-bot-prod-agent",
                "namespace": "team-a",
                "ownerReferences": [owner],
            }
        },
    )
    world.apply(instance_manifest())
    with pytest.raises(PipelineError) as caught:
        iam(world, "support-bot-prod")
    assert caught.value.reason is Reason.IAM_CONFLICT and caught.value.retryable
    assert "garbage collector" in caught.value.message


IAM_KINDS = (ObjectKind.SERVICE_ACCOUNT, ObjectKind.ROLE, ObjectKind.ROLE_BINDING)
MANAGED = {"app.kubernetes.io/managed-by": "stigmer-operator"}


def leftover(
    world: World, owner: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[ObjectKind, str]:
    """IAM objects of ``support-bot-prod`` controlled by ``owner``; their uids by kind."""
    uids = {}
    for kind in IAM_KINDS:
        metadata = {
            "name": "support-bot-prod-agent",
            "namespace": "team-a",
            "labels": labels if labels is not None else dict(MANAGED),
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
        }
        uids[kind] = world.kube.put(kind, {"metadata": metadata})["metadata"]["uid"]
    return uids


def former_instance(uid: str = "0b1d-former") -> dict[str, Any]:
    return {
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "AgentInstance",
        "name": "support-bot-prod",
        "uid": uid,
    }


@pytest.mark.parametrize("op", [Operation.CREATE, Operation.RESUME])
def test_objects_left_by_a_former_instance_of_that_name_are_replaced(
    world: World, op: Operation
) -> None:
    """A default instance deleted and re-created does not wait for the garbage collector."""
    world.agent()
    orphans = leftover(world, former_instance())
    inst = world.apply(instance_manifest())
    assert iam(world, "support-bot-prod", op) is Outcome.SUCCEEDED
    assert [c.kind for c in world.kube.calls_of("delete")] == [k.kind for k in IAM_KINDS]
    for kind, obj in objects(world, "support-bot-prod-agent").items():
        assert obj["metadata"]["uid"] != orphans[kind]
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == inst["metadata"]["uid"]


@pytest.mark.parametrize(
    "owner",
    [
        {**former_instance(), "name": "another-instance"},
        {**former_instance(), "apiVersion": "apps/v1", "kind": "Deployment"},
        {**former_instance(), "apiVersion": "example.com/v1"},
    ],
    ids=["another-instance", "a-deployment", "another-group"],
)
def test_objects_controlled_by_anything_else_are_never_deleted(
    world: World, owner: dict[str, Any]
) -> None:
    world.agent()
    leftover(world, owner)
    world.apply(instance_manifest())
    with pytest.raises(PipelineError) as caught:
        iam(world, "support-bot-prod")
    assert caught.value.reason is Reason.IAM_CONFLICT
    assert not world.kube.calls_of("delete")


def test_an_unlabelled_object_of_a_former_instance_is_not_deleted(world: World) -> None:
    world.agent()
    orphans = leftover(world, former_instance(), labels={})
    world.apply(instance_manifest())
    with pytest.raises(PipelineError) as caught:
        iam(world, "support-bot-prod")
    assert caught.value.reason is Reason.IAM_CONFLICT and caught.value.retryable
    assert not world.kube.calls_of("delete")
    assert (
        objects(world, "support-bot-prod-agent")[ObjectKind.SERVICE_ACCOUNT]["metadata"]["uid"]
        == orphans[ObjectKind.SERVICE_ACCOUNT]
    )


def test_a_late_handling_of_a_deleted_instance_leaves_its_successors_objects(
    world: World,
) -> None:
    """The instance handled is no longer the live one: its successor's objects stay."""
    world.agent()
    world.apply(instance_manifest())
    ctx = world.run_until(STEP, Kind.AGENT_INSTANCE, "support-bot-prod")
    successor = world.apply(
        {**instance_manifest(), "metadata": {**instance_manifest()["metadata"], "uid": "successor"}}
    )
    leftover(world, former_instance(successor["metadata"]["uid"]))
    with pytest.raises(PipelineError) as caught:
        step_of(Kind.AGENT_INSTANCE, STEP).run(ctx)
    assert caught.value.reason is Reason.IAM_CONFLICT and caught.value.retryable
    assert not world.kube.calls_of("delete")


def test_an_orphan_replaced_before_the_delete_is_left_alone(world: World) -> None:
    """The uid precondition fails (the name was taken again): retried, nothing deleted."""
    world.agent()
    leftover(world, former_instance())
    world.apply(instance_manifest())
    world.kube.fail_next("delete", Conflict("precondition failed", status=409))
    with pytest.raises(PipelineError) as caught:
        iam(world, "support-bot-prod")
    assert caught.value.reason is Reason.IAM_CONFLICT and caught.value.retryable
    assert "garbage collector" in caught.value.message
    assert (ObjectKind.SERVICE_ACCOUNT, "team-a", "support-bot-prod-agent") in world.kube.objects


def test_agent_gets_an_ownership_record(world: World) -> None:
    world.agent(sharing=["team-c", "team-b"])
    agent = world.current(Kind.AGENT, "support-bot")
    record = world.store.get_ownership(agent["status"]["id"])
    assert (record.org, record.namespace, record.name) == ("team-a", "team-a", "support-bot")
    assert record.scope == resource_pb2.OWNER_SCOPE_ORGANIZATION
    assert list(record.shared_with_orgs) == ["team-b", "team-c"]
    ctx = world.run_until(STEP, Kind.AGENT, "support-bot", op=Operation.RESUME)
    step_of(Kind.AGENT, STEP, Operation.RESUME).run(ctx)
    assert ctx.outcomes[-1].outcome is Outcome.UNCHANGED
