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
from stigmer_operator.pipeline.kube import ObjectKind

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
