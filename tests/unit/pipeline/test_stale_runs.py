"""A run on an outdated body changes nothing: no re-grant, no roll-back, no lost entry.

A pipeline triggered by another object (or a late retry) may hold a body
read before the object was edited, or before it was deleted and re-created
under the same name. These tests replay exactly those interleavings.
"""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest
from pipeline_world import World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.common import forget, reconcile
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.settings import OperatorSettings

INSTANCE = "support-bot-prod"
SECRET = [{"kind": "Secret", "name": "api-key"}]


def _memo(world: World) -> OperatorMemo:
    return OperatorMemo(world.deps, OperatorSettings(), kubernetes.client.ApiClient())


def _granted(world: World) -> list[Any]:
    role = world.kube.objects[(ObjectKind.ROLE, "team-a", f"{INSTANCE}-agent")]
    return [name for rule in role.get("rules") or [] for name in rule["resourceNames"]]


def _edited_instance(world: World, memo: OperatorMemo) -> dict[str, Any]:
    """An instance reconciled with an envRef, then edited to drop it; its generation-1 body."""
    world.agent()
    world.env_source(ObjectKind.SECRET, "api-key")
    world.apply(instance_manifest(environmentRefs=SECRET))
    reconcile(
        Kind.AGENT_INSTANCE, Operation.CREATE, world.current(Kind.AGENT_INSTANCE, INSTANCE), memo
    )
    first = world.current(Kind.AGENT_INSTANCE, INSTANCE)
    assert _granted(world) == ["api-key"]
    world.edit_spec(Kind.AGENT_INSTANCE, INSTANCE, environmentRefs=[])
    reconcile(
        Kind.AGENT_INSTANCE, Operation.UPDATE, world.current(Kind.AGENT_INSTANCE, INSTANCE), memo
    )
    assert _granted(world) == []
    return first


def _assert_generation_2_stands(world: World) -> None:
    current = world.current(Kind.AGENT_INSTANCE, INSTANCE)
    assert _granted(world) == [], "the removed envRef was granted again"
    stored = world.store.get_by_name(Kind.AGENT_INSTANCE, "team-a", INSTANCE)
    assert stored.metadata.generation == 2, "the mirror was rolled back"
    assert len(world.store.history(Kind.AGENT_INSTANCE, stored.metadata.id)) == 2
    assert current["status"]["observedGeneration"] == 2
    warnings = [e for e in world.kube.events_for(INSTANCE) if e["type"] == "Warning"]
    assert not warnings, "no Warning for a skipped run"


def test_a_resume_on_a_body_read_before_an_edit_is_skipped(world: World) -> None:
    memo = _memo(world)
    first = _edited_instance(world, memo)
    calls = len(world.kube.calls)

    reconcile(Kind.AGENT_INSTANCE, Operation.RESUME, first, memo)

    assert len(world.kube.calls) == calls
    _assert_generation_2_stands(world)


def test_another_process_cannot_roll_the_store_back(world: World) -> None:
    first = _edited_instance(world, _memo(world))

    reconcile(Kind.AGENT_INSTANCE, Operation.RESUME, first, _memo(world))  # knows nothing

    _assert_generation_2_stands(world)


@pytest.mark.parametrize("same_process", [True, False])
def test_a_late_run_for_a_deleted_object_keeps_its_successors_entry(
    world: World, same_process: bool
) -> None:
    memo = _memo(world)
    old = world.apply(agent_manifest())
    reconcile(Kind.AGENT, Operation.CREATE, old, memo)
    old = world.current(Kind.AGENT, "support-bot")
    world.kube.remove(ObjectKind.AGENT, "team-a", "support-bot")
    world.kube.remove(ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")  # the GC
    reconcile(Kind.AGENT, Operation.DELETE, old, memo)
    forget(Kind.AGENT, old, memo)
    new = world.apply(agent_manifest(displayName="Successor"))
    reconcile(Kind.AGENT, Operation.CREATE, new, memo)

    reconcile(Kind.AGENT, Operation.RESUME, old, memo if same_process else _memo(world))

    stored = world.store.get_by_name(Kind.AGENT, "team-a", "support-bot")
    assert stored.metadata.uid == new["metadata"]["uid"]
    assert [a.metadata.uid for a in world.store.list(Kind.AGENT)] == [new["metadata"]["uid"]]
    assert world.current(Kind.AGENT, "support-bot")["status"]["slug"] == "successor"
