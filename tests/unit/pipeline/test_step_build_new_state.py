"""Step 5, BuildNewState: ids, audit, metadata and nothing stale."""

from __future__ import annotations

from datetime import timedelta

from pipeline_world import World, agent_manifest, instance_manifest, step_of

from stigmer_operator.api.kinds import ORG_LABEL, Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2, resource_pb2
from stigmer_operator.pipeline import pipelines
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.keys import EXISTING, RESOURCE_ID, STALE_ENTRIES
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.naming import resource_id

STEP = "BuildNewState"


def build(
    world: World, kind: Kind, name: str, op: Operation = Operation.CREATE
) -> RequestContext[Resource]:
    ctx = world.run_until(STEP, kind, name, op=op)
    step_of(kind, STEP, op).run(ctx)
    return ctx


def test_new_agent_state(world: World) -> None:
    world.namespace("team-a", org="acme")
    obj = world.apply(
        agent_manifest(
            displayName="Support",
            labels={ORG_LABEL: "acme", "team": "a"},
            annotations={
                "note": "kept",
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                "agentic.stigmer.ai/last-handled-configuration": "{...}",
                "kopf.zalando.org/touch": "x",
            },
            sharing=["other"],
        )
    )
    ctx = build(world, Kind.AGENT, "support-bot")
    state = ctx.new_state
    assert isinstance(state, agent_pb2.Agent)
    meta = state.metadata
    assert state.kind == "Agent" and state.api_version == "agentic.stigmer.ai/v1"
    assert meta.id == resource_id(Kind.AGENT, obj["metadata"]["uid"])
    assert (meta.name, meta.namespace, meta.org, meta.slug) == (
        "support-bot",
        "team-a",
        "acme",
        "support",
    )
    assert meta.display_name == "Support" and meta.uid == obj["metadata"]["uid"]
    assert meta.owner_scope == resource_pb2.OWNER_SCOPE_ORGANIZATION
    assert dict(meta.annotations) == {"note": "kept"}
    assert dict(meta.labels) == {ORG_LABEL: "acme", "team": "a"}
    assert meta.generation == 1 and meta.resource_version == obj["metadata"]["resourceVersion"]
    assert list(state.spec.sharing) == ["other"]
    assert state.status.audit.event == resource_pb2.AUDIT_EVENT_CREATED
    assert state.status.audit.created_at.ToDatetime().isoformat() == "2026-01-18T19:41:31"
    assert ctx.values.get(RESOURCE_ID) == meta.id


def test_id_is_derived_from_the_uid_never_read_from_status(world: World) -> None:
    obj = agent_manifest()
    obj["status"] = {"id": "agt-00000000000000000042"}
    uid = world.apply(obj)["metadata"]["uid"]
    ctx = build(world, Kind.AGENT, "support-bot")
    assert ctx.new_state.metadata.id == resource_id(Kind.AGENT, uid)


def test_status_id_pointing_at_another_object_cannot_touch_its_entry(world: World) -> None:
    world.agent("victim")
    victim = world.store.get_by_name(Kind.AGENT, "team-a", "victim")
    forged = agent_manifest("forger", instructions="Forged instructions, long enough.")
    forged["status"] = {"id": victim.metadata.id}
    world.apply(forged)
    world.run(Kind.AGENT, "forger")
    assert world.store.get(Kind.AGENT, victim.metadata.id) == victim
    assert world.history(Kind.AGENT, victim.metadata.id) == 1
    gone = world.current(Kind.AGENT, "forger")
    world.kube.remove(ObjectKind.AGENT, "team-a", "forger")
    pipelines.run(Kind.AGENT, Operation.DELETE, gone, world.deps)
    assert world.store.get(Kind.AGENT, victim.metadata.id) == victim


def test_an_entry_forged_under_this_objects_id_is_removed_as_stale(world: World) -> None:
    uid = world.apply(agent_manifest())["metadata"]["uid"]
    rid = resource_id(Kind.AGENT, uid)
    world.agent("forger")
    squatter = world.store.get_by_name(Kind.AGENT, "team-a", "forger")
    squatter.metadata.id = rid  # what an older version saved for a forged status.id
    world.store.save(squatter)
    ctx = build(world, Kind.AGENT, "support-bot")
    assert [s.id for s in ctx.values.get(STALE_ENTRIES)] == [rid]
    world.run(Kind.AGENT, "support-bot")
    assert world.store.get(Kind.AGENT, rid).metadata.uid == uid


def test_update_keeps_id_and_created_at_and_moves_updated_at(world: World) -> None:
    world.agent()
    first = world.store.get_by_name(Kind.AGENT, "team-a", "support-bot")
    world.clock.advance(60)
    world.edit_spec(Kind.AGENT, "support-bot", description="now with a description")
    ctx = build(world, Kind.AGENT, "support-bot", Operation.UPDATE)
    state = ctx.new_state
    audit = state.status.audit
    assert state.metadata.id == first.metadata.id
    assert audit.created_at == first.status.audit.created_at
    assert audit.updated_at.ToDatetime() == (world.clock.now - timedelta(0)).replace(tzinfo=None)
    assert audit.event == resource_pb2.AUDIT_EVENT_UPDATED
    assert ctx.values.get(EXISTING).metadata.id == first.metadata.id


def test_resume_without_spec_change_keeps_the_whole_audit(world: World) -> None:
    world.agent()
    first = world.store.get_by_name(Kind.AGENT, "team-a", "support-bot")
    world.clock.advance(3600)
    ctx = build(world, Kind.AGENT, "support-bot", Operation.RESUME)
    assert ctx.new_state.status.audit == first.status.audit


def test_agent_keeps_its_default_instance_fields_for_step_9(world: World) -> None:
    world.agent()
    ctx = build(world, Kind.AGENT, "support-bot", Operation.RESUME)
    state = ctx.new_state
    assert isinstance(state, agent_pb2.Agent)
    status = state.status
    assert status.default_instance_name == "support-bot-default"
    assert status.default_instance_id.startswith("ain-")


def test_instance_state_has_agent_id_and_service_account(world: World) -> None:
    world.agent()
    world.env_source(ObjectKind.SECRET, "api-key")
    world.apply(instance_manifest(environmentRefs=[{"kind": "Secret", "name": "api-key"}]))
    ctx = build(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    state = ctx.new_state
    assert isinstance(state, agent_instance_pb2.AgentInstance)
    agent = world.current(Kind.AGENT, "support-bot")
    assert state.status.agent_id == agent["status"]["id"]
    assert state.status.service_account_name == "support-bot-prod-agent"
    assert state.spec.environment_refs[0].name == "api-key"
    assert state.metadata.id.startswith("ain-")


def test_entry_of_a_former_object_with_the_same_name_is_stale(world: World) -> None:
    world.agent()
    old_id = world.store.get_by_name(Kind.AGENT, "team-a", "support-bot").metadata.id
    world.kube.remove(ObjectKind.AGENT, "team-a", "support-bot")
    world.apply(agent_manifest())  # same name, new uid
    ctx = build(world, Kind.AGENT, "support-bot")
    assert ctx.new_state.metadata.id != old_id
    assert [s.id for s in ctx.values.get(STALE_ENTRIES)] == [old_id]
