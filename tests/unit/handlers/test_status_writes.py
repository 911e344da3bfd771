"""One status write per reconcile: the one that says how it ended.

A run does not announce itself with ``Ready=Unknown`` first: an object
without status is ``InProgress`` to kstatus and not yet Ready to ``kubectl
wait``, so such a patch only doubled the status writes of every object.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import kopf
import kubernetes
import pytest
from pipeline_world import World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.agent_instance import instance_event
from stigmer_operator.handlers.common import reconcile
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.retries import Retries
from stigmer_operator.handlers.startup import diffbase_storage
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ServerError
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.settings import OperatorSettings

DEFAULT = "support-bot-default"


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


# -- a new Agent is Ready in one run ----------------------------------------
def _create_agent(world: World, memo: OperatorMemo) -> dict[str, Any]:
    body = world.apply(agent_manifest())
    reconcile(Kind.AGENT, Operation.CREATE, body, memo)
    return body


def _requests(world: World) -> Counter[tuple[str, str]]:
    return Counter((call.method, call.kind) for call in world.kube.calls)


def test_a_new_agent_and_its_default_instance_are_ready_after_the_agents_run(
    world: World,
) -> None:
    _create_agent(world, _memo(world))

    assert _ready(world, Kind.AGENT, "support-bot") == ("True", "Ready")
    assert _ready(world, Kind.AGENT_INSTANCE, DEFAULT) == ("True", "Ready")
    assert _requests(world) == {
        ("create_agent_instance", "AgentInstance"): 1,
        ("apply_owned", "ServiceAccount"): 1,
        ("apply_owned", "Role"): 1,
        ("apply_owned", "RoleBinding"): 1,
        ("post_event", "Event"): 2,  # Created, for each
        ("patch_status", "AgentInstance"): 1,
        ("patch_status", "Agent"): 1,
        ("get_metadata", "Namespace"): 1,  # the namespace's org, read once per process
    }  # and no read of either object


def test_the_default_instance_is_created_as_kopf_records_a_handled_object(
    world: World,
) -> None:
    """kopf compares its diff-base annotation with the object: equal means no handler, no patch."""
    _create_agent(world, _memo(world))
    instance = kopf.Body(world.current(Kind.AGENT_INSTANCE, DEFAULT))
    storage = diffbase_storage()

    assert storage.fetch(body=instance) == storage.build(body=instance)


def test_a_create_kopf_still_calls_for_the_default_instance_costs_nothing(world: World) -> None:
    memo = _memo(world)
    _create_agent(world, memo)
    created = world.current(Kind.AGENT_INSTANCE, DEFAULT)
    created.pop("status")  # as the watch delivered it
    calls = len(world.kube.calls)

    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, created, memo)

    assert len(world.kube.calls) == calls


def test_the_instance_turning_ready_in_its_agents_run_does_not_rerun_the_agent(
    world: World,
) -> None:
    memo = _memo(world)
    _create_agent(world, memo)
    ready = world.current(Kind.AGENT_INSTANCE, DEFAULT)
    added = {key: value for key, value in ready.items() if key != "status"}

    for event, body in (("ADDED", added), ("MODIFIED", ready)):
        asyncio.run(instance_event({"type": event, "object": body}, memo))

    assert memo.retries.pending() == []


def test_a_default_instance_that_fails_in_the_agents_run_is_retried_and_reruns_the_agent(
    world: World,
) -> None:
    now = [0.0]
    retries = Retries(clock=lambda: now[0], autostart=False)
    memo = OperatorMemo(
        world.deps, OperatorSettings(), kubernetes.client.ApiClient(), retries=retries
    )
    world.kube.fail_next("apply_owned", ServerError("the API server is restarting", status=503))
    _create_agent(world, memo)
    assert _ready(world, Kind.AGENT, "support-bot") == ("False", "DefaultInstanceNotReady")
    assert _ready(world, Kind.AGENT_INSTANCE, DEFAULT)[0] == "Unknown"
    assert memo.retries.pending() == [(Kind.AGENT_INSTANCE, "team-a", DEFAULT)]

    now[0] += 60
    assert memo.retries.run_due() == 1  # the instance's retry
    assert _ready(world, Kind.AGENT_INSTANCE, DEFAULT) == ("True", "Ready")
    flipped = world.current(Kind.AGENT_INSTANCE, DEFAULT)
    asyncio.run(instance_event({"type": "MODIFIED", "object": flipped}, memo))

    assert _ready(world, Kind.AGENT, "support-bot") == ("True", "Ready")


def test_a_flip_the_watch_showed_while_the_agent_ran_reruns_the_agent(world: World) -> None:
    """The Agent's run read its instance not Ready; the watch had meanwhile shown it Ready."""
    memo = _memo(world)
    _create_agent(world, memo)
    instance = world.current(Kind.AGENT_INSTANCE, DEFAULT)
    uid = instance["metadata"]["uid"]
    memo.coordination.readiness_changed(uid, True)  # the watch: Ready

    assert memo.coordination.owner_saw(uid, False)  # the run: not Ready -> run again
    assert not memo.coordination.owner_saw(uid, False)  # ... once
