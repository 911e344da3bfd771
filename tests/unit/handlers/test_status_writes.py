"""One status write per reconcile: the one that says how it ended.

A run does not announce itself with ``Ready=Unknown`` first: an object
without status is ``InProgress`` to kstatus and not yet Ready to ``kubectl
wait``, so such a patch only doubled the status writes of every object.
"""

from __future__ import annotations

import kopf
import kubernetes
import pytest
from pipeline_world import World, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.common import reconcile
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.settings import OperatorSettings


def _memo(world: World) -> OperatorMemo:
    return OperatorMemo(world.deps, OperatorSettings(), kubernetes.client.ApiClient())


def _ready(world: World, kind: Kind, name: str) -> tuple[str, str]:
    ready = find_condition(conditions_of(world.current(kind, name)), ConditionType.READY) or {}
    return str(ready.get("status")), str(ready.get("reason"))


def _status_writes(world: World, kind: Kind) -> int:
    return sum(call.kind == kind.value for call in world.kube.calls_of("patch_status"))


def test_a_completed_create_writes_status_once(world: World) -> None:
    world.agent()
    body = world.apply(instance_manifest())

    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, body, _memo(world))

    assert _ready(world, Kind.AGENT_INSTANCE, "support-bot-prod") == ("True", "Ready")
    assert _status_writes(world, Kind.AGENT_INSTANCE) == 1


def test_a_refused_create_writes_status_once(world: World) -> None:
    body = world.apply(instance_manifest(agent="nobody"))

    with pytest.raises(kopf.PermanentError):
        reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, body, _memo(world))

    assert _ready(world, Kind.AGENT_INSTANCE, "support-bot-prod") == ("False", "AgentNotFound")
    assert _status_writes(world, Kind.AGENT_INSTANCE) == 1
