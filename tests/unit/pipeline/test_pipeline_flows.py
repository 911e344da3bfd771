"""Whole pipelines: lifecycles, idempotency, and convergence after a crash at every step."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_world import Clock, World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.pipeline.context import Operation, Outcome
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.pipeline.pipelines import (
    AGENT_CREATE,
    AGENT_INSTANCE_CREATE,
    PIPELINES,
    pipeline_for,
)
from stigmer_operator.pipeline.runner import Pipeline
from stigmer_operator.store.memory import MemoryStore

AGENT_STEPS = [
    "ValidateFieldConstraints",
    "Authorize",
    "ResolveSlug",
    "CheckDuplicate",
    "BuildNewState",
    "Persist",
    "CreateIamPolicies",
    "CreateDefaultInstance",
    "ReconcileDefaultInstance",
    "UpdateAgentStatusWithDefaultInstance",
    "Publish",
    "TransformResponse",
    "SendResponse",
]
INSTANCE_STEPS = [s for s in AGENT_STEPS if "DefaultInstance" not in s]


def test_pipelines_are_declared_for_every_kind_and_operation() -> None:
    assert {(k, op) for k in Kind for op in Operation} == set(PIPELINES)
    for op in (Operation.CREATE, Operation.UPDATE, Operation.RESUME):
        assert list(pipeline_for(Kind.AGENT, op).step_names) == AGENT_STEPS
        assert list(pipeline_for(Kind.AGENT_INSTANCE, op).step_names) == INSTANCE_STEPS
    for kind in Kind:
        assert list(pipeline_for(kind, Operation.DELETE).step_names) == [
            "DeleteResource",
            "Publish",
        ]
    assert AGENT_CREATE.name == "agent-create"
    assert AGENT_INSTANCE_CREATE.name == "agentinstance-create"


def test_agent_lifecycle_until_ready(world: World) -> None:
    world.agent()
    assert world.current(Kind.AGENT, "support-bot")["status"]["conditions"][0]["status"] == "False"
    world.run(Kind.AGENT_INSTANCE, "support-bot-default")
    instance = world.current(Kind.AGENT_INSTANCE, "support-bot-default")
    assert {c["type"]: c["status"] for c in instance["status"]["conditions"]} == {
        "Ready": "True",
        "Accepted": "True",
    }
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)  # what the handler triggers
    agent = world.current(Kind.AGENT, "support-bot")
    assert agent["status"]["conditions"][0]["status"] == "True"
    assert agent["status"]["defaultInstanceId"] == instance["status"]["id"]
    assert world.store.stats().agent_instances == 1


def test_update_appends_history_only_when_the_spec_changes(world: World) -> None:
    world.agent()
    agent_id = world.current(Kind.AGENT, "support-bot")["status"]["id"]
    world.kube.objects[(ObjectKind.AGENT, "team-a", "support-bot")]["metadata"]["labels"] = {
        "tier": "gold"
    }
    world.run(Kind.AGENT, "support-bot", op=Operation.UPDATE)
    assert world.history(Kind.AGENT, agent_id) == 1
    assert dict(world.store.get(Kind.AGENT, agent_id).metadata.labels) == {"tier": "gold"}
    world.clock.advance(60)
    world.edit_spec(Kind.AGENT, "support-bot", description="v2")
    world.run(Kind.AGENT, "support-bot", op=Operation.UPDATE)
    assert world.history(Kind.AGENT, agent_id) == 2
    status = world.current(Kind.AGENT, "support-bot")["status"]
    assert status["id"] == agent_id and status["observedGeneration"] == 2
    assert status["audit"]["event"] == "updated"
    assert status["audit"]["createdAt"] == "2026-01-18T19:41:31Z"
    assert status["audit"]["updatedAt"] == "2026-01-18T19:42:31Z"


def test_resume_after_restart_changes_nothing(world: World) -> None:
    world.agent()
    world.run(Kind.AGENT_INSTANCE, "support-bot-default")
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    calls, log = len(world.kube.calls), list(world.store.changes())
    world.restart()
    world.clock.advance(3600)
    for kind, name in ((Kind.AGENT, "support-bot"), (Kind.AGENT_INSTANCE, "support-bot-default")):
        ctx = world.run(kind, name, op=Operation.RESUME)
        writes = {"Persist", "Publish", "SendResponse", "CreateIamPolicies"}
        assert {o.step: o.outcome for o in ctx.outcomes if o.step in writes} == dict.fromkeys(
            writes, Outcome.UNCHANGED
        )
    new_calls = world.kube.calls[calls:]
    assert {c.method for c in new_calls} <= {"get", "get_metadata", "apply_owned"}  # reads
    assert list(world.store.changes()) == log


def test_rebuilt_store_keeps_ids_and_creation_time_from_status(world: World) -> None:
    world.agent()
    before = world.current(Kind.AGENT, "support-bot")["status"]
    world.store = MemoryStore()  # the store was lost; the cluster is the source of truth
    world.restart()
    world.clock.advance(3600)
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    after = world.current(Kind.AGENT, "support-bot")["status"]
    assert after["id"] == before["id"]
    assert after["defaultInstanceId"] == before["defaultInstanceId"]
    assert after["audit"]["createdAt"] == before["audit"]["createdAt"]
    assert world.store.get(Kind.AGENT, before["id"]).metadata.name == "support-bot"


def test_agent_delete_keeps_history_and_publishes(world: World) -> None:
    world.agent()
    agent_id = world.current(Kind.AGENT, "support-bot")["status"]["id"]
    world.run(Kind.AGENT, "support-bot", op=Operation.DELETE)
    assert world.store.stats().agents == 0
    assert world.history(Kind.AGENT, agent_id) == 1
    kinds = [e.change for e in world.store.changes()]
    assert kinds == [store_pb2.CHANGE_TYPE_CREATED, store_pb2.CHANGE_TYPE_DELETED]
    assert all(e.published for e in world.store.changes())


# -- crash at every step -------------------------------------------------------


def fresh_world() -> World:
    return World(MemoryStore(), RecordingKubeEffects(), Clock())


def snapshot(world: World) -> dict[str, Any]:
    """Everything that must converge, minus what legitimately differs (resourceVersion)."""
    resources = []
    for kind in Kind:
        for resource in world.store.list(kind):
            resource.metadata.resource_version = ""
            resources.append(resource.SerializeToString(deterministic=True))
    log = [
        (e.kind, e.id, e.change, e.generation, e.spec_hash, e.published)
        for e in world.store.changes()
    ]
    history = {
        (kind, r.metadata.id): len(world.store.history(kind, r.metadata.id))
        for kind in Kind
        for r in world.store.list(kind)
    }
    objects = {}
    for (object_kind, namespace, name), obj in world.kube.objects.items():
        plain = {k: v for k, v in obj.items() if k != "metadata"}
        meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
        objects[(object_kind.kind, namespace, name)] = {**plain, "metadata": meta}
    events = sorted((e["involvedObject"]["name"], e["reason"]) for e in world.kube.events.values())
    return {
        "resources": resources,
        "log": log,
        "history": history,
        "objects": objects,
        "events": events,
    }


def scenario(kind: Kind) -> tuple[World, str]:
    world = fresh_world()
    if kind is Kind.AGENT:
        world.apply(agent_manifest(displayName="Support", sharing=["team-b"]))
        return world, "support-bot"
    world.agent()
    refs = [{"kind": "Secret", "name": "api-key"}]
    world.env_source(ObjectKind.SECRET, "api-key")
    world.apply(instance_manifest(displayName="Prod", environmentRefs=refs))
    return world, "support-bot-prod"


@pytest.mark.parametrize("kind", list(Kind))
def test_crash_after_any_step_converges_on_rerun(kind: Kind) -> None:
    reference, name = scenario(kind)
    reference.run(kind, name)
    expected = snapshot(reference)
    steps = pipeline_for(kind, Operation.CREATE).steps
    for k in range(1, len(steps) + 1):
        world, _ = scenario(kind)
        crashed = Pipeline("crashed", steps[:k])  # the process died right after step k
        crashed.run(world.context(kind, name))
        world.restart()  # new process: fresh outbox, kopf re-runs the create handler
        world.run(kind, name)
        assert snapshot(world) == expected, f"crash after {steps[k - 1].name}"


def test_crash_convergence_gives_one_history_entry_and_one_default_instance() -> None:
    for k in range(1, len(AGENT_CREATE.steps) + 1):
        world, name = scenario(Kind.AGENT)
        Pipeline("crashed", AGENT_CREATE.steps[:k]).run(world.context(Kind.AGENT, name))
        world.restart()
        world.run(Kind.AGENT, name)
        agent_id = world.current(Kind.AGENT, name)["status"]["id"]
        assert world.history(Kind.AGENT, agent_id) == 1
        defaults = [key for key in world.kube.objects if key[0] is ObjectKind.AGENT_INSTANCE]
        assert defaults == [(ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")]
        assert len(world.kube.events_for(name, "Created")) == 1
