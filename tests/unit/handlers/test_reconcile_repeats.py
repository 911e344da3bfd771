"""kopf calling a create or update handler twice for one state costs nothing the second time.

Under a backlog kopf's own annotation patch comes back through the watch
after ``consistency_timeout``, and kopf calls the handler again with the
body it had before: no annotation, and none of our status either.
"""

from __future__ import annotations

import kopf
import kubernetes
import pytest
from pipeline_world import World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.common import forget, reconcile
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.settings import OperatorSettings


def _memo(world: World) -> OperatorMemo:
    return OperatorMemo(world.deps, OperatorSettings(), kubernetes.client.ApiClient())


def _ready_reason(world: World, kind: Kind, name: str) -> str | None:
    ready = find_condition(conditions_of(world.current(kind, name)), ConditionType.READY) or {}
    return ready.get("reason")


def test_a_repeated_create_on_the_stale_body_makes_no_request(world: World) -> None:
    world.agent()
    stale = world.apply(instance_manifest())  # as kopf first saw it: no status
    memo = _memo(world)
    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, stale, memo)
    assert _ready_reason(world, Kind.AGENT_INSTANCE, "support-bot-prod") == "Ready"
    calls = len(world.kube.calls)

    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, stale, memo)
    reconcile(Kind.AGENT_INSTANCE, Operation.UPDATE, stale, memo)

    assert len(world.kube.calls) == calls, "no pipeline, no status write"
    assert _ready_reason(world, Kind.AGENT_INSTANCE, "support-bot-prod") == "Ready"


def test_without_the_guard_the_stale_body_would_be_reconciled_again(world: World) -> None:
    """What the guard prevents: a whole run, and a status rewrite, on a status-less body."""
    world.agent()
    stale = world.apply(instance_manifest())
    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, stale, _memo(world))
    patches = len(world.kube.calls_of("patch_status"))

    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, stale, _memo(world))  # a new process

    assert len(world.kube.calls_of("patch_status")) == patches + 1  # Ready written again


@pytest.mark.parametrize("change", ["generation", "labels"])
def test_a_changed_object_is_reconciled_again(world: World, change: str) -> None:
    body = world.apply(agent_manifest())
    memo = _memo(world)
    reconcile(Kind.AGENT, Operation.CREATE, body, memo)
    calls = len(world.kube.calls)

    if change == "generation":
        body["metadata"]["generation"] += 1
    else:
        body["metadata"].setdefault("labels", {})["team"] = "b"
    reconcile(Kind.AGENT, Operation.UPDATE, body, memo)

    assert len(world.kube.calls) > calls


def test_an_annotation_only_edit_reaches_the_mirror(world: World) -> None:
    body = world.apply(agent_manifest(annotations={"team.example.com/owner": "ana"}))
    memo = _memo(world)
    reconcile(Kind.AGENT, Operation.CREATE, body, memo)

    body["metadata"]["annotations"]["team.example.com/owner"] = "bo"
    reconcile(Kind.AGENT, Operation.UPDATE, body, memo)

    stored = world.store.get_by_name(Kind.AGENT, "team-a", "support-bot")
    assert dict(stored.metadata.annotations) == {"team.example.com/owner": "bo"}


def test_a_change_of_tool_bookkeeping_annotations_alone_is_still_a_repeat(world: World) -> None:
    body = world.apply(agent_manifest())
    memo = _memo(world)
    reconcile(Kind.AGENT, Operation.CREATE, body, memo)
    calls = len(world.kube.calls)

    body["metadata"]["annotations"] = {
        "agentic.stigmer.ai/last-handled-configuration": "{}",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    reconcile(Kind.AGENT, Operation.UPDATE, body, memo)

    assert len(world.kube.calls) == calls


def test_a_resume_always_runs(world: World) -> None:
    body = world.apply(agent_manifest())
    memo = _memo(world)
    reconcile(Kind.AGENT, Operation.CREATE, body, memo)
    gets = len(world.kube.calls_of("get"))

    reconcile(Kind.AGENT, Operation.RESUME, world.current(Kind.AGENT, "support-bot"), memo)

    assert len(world.kube.calls_of("get")) > gets  # it looked at the default instance again


def test_a_failed_run_is_not_remembered(world: World) -> None:
    body = world.apply(instance_manifest(agent="nobody"))  # AgentNotFound
    memo = _memo(world)
    for _ in range(2):
        with pytest.raises(kopf.PermanentError):
            reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, body, memo)
    assert len(world.kube.calls_of("post_event")) == 2  # the second run ran ...
    assert len(world.kube.events) == 1  # ... and its Warning Event is the same one
    assert _ready_reason(world, Kind.AGENT_INSTANCE, "support-bot-prod") == "AgentNotFound"


def test_a_deleted_object_is_never_run_again_but_its_successor_is(world: World) -> None:
    body = world.apply(agent_manifest())
    memo = _memo(world)
    reconcile(Kind.AGENT, Operation.CREATE, body, memo)
    forget(Kind.AGENT, body, memo)
    world.kube.remove(ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")
    world.kube.remove(ObjectKind.AGENT, "team-a", "support-bot")
    calls = len(world.kube.calls)

    reconcile(Kind.AGENT, Operation.RESUME, body, memo)  # a late run for the deleted uid
    assert len(world.kube.calls) == calls

    successor = world.apply(agent_manifest())  # same name, new uid
    reconcile(Kind.AGENT, Operation.CREATE, successor, memo)
    assert len(world.kube.calls_of("create_agent_instance")) == 2
