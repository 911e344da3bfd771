"""Objects re-run because of *another* object are neither forgotten nor left failed.

* An AgentInstance refused with ``AgentNotFound`` is re-run when its Agent
  appears, even if the watch has not delivered that refusal yet (the
  operator knows it refused the instance).
* An Agent refused with ``DuplicateSlug`` is re-run when the holder of the
  slug is deleted (or changes).
* A re-run kopf does not retry (it is not the object's own handler) that
  fails temporarily is retried by :class:`Retries`.
"""

from __future__ import annotations

import threading
from typing import Any

import kopf
import kubernetes
import pytest
from pipeline_world import World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.agent import agent_created, agent_deleted
from stigmer_operator.handlers.common import reconcile, rerun
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.retries import Retries
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ObjectKind, ServerError
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.settings import OperatorSettings

INSTANCE = "support-bot-prod"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _memo(world: World, clock: ManualClock) -> OperatorMemo:
    return OperatorMemo(
        world.deps,
        OperatorSettings(),
        kubernetes.client.ApiClient(),
        retries=Retries(clock=clock, autostart=False),
    )


def _ready_reason(world: World, kind: Kind, name: str) -> Any:
    ready = find_condition(conditions_of(world.current(kind, name)), ConditionType.READY) or {}
    return ready.get("reason")


def _instance_waiting_unseen(world: World, memo: OperatorMemo) -> None:
    """An instance refused with AgentNotFound; the watch showed it only without status."""
    body = world.apply(instance_manifest())
    memo.references.instance_seen(body)  # what the watch delivered: no status yet
    with pytest.raises(kopf.PermanentError, match="AgentNotFound"):
        reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, body, memo)
    assert _ready_reason(world, Kind.AGENT_INSTANCE, INSTANCE) == "AgentNotFound"


def test_an_appearing_agent_wakes_an_instance_whose_refusal_the_watch_did_not_show(
    world: World,
) -> None:
    memo = _memo(world, ManualClock())
    _instance_waiting_unseen(world, memo)

    agent_created(body=world.apply(agent_manifest()), memo=memo, retry=0)

    assert _ready_reason(world, Kind.AGENT_INSTANCE, INSTANCE) == "Ready"


def test_a_rerun_failing_temporarily_is_retried(world: World) -> None:
    clock = ManualClock()
    memo = _memo(world, clock)
    _instance_waiting_unseen(world, memo)
    world.kube.fail_next("get", ServerError("the API server is restarting", status=503))

    agent_created(body=world.apply(agent_manifest()), memo=memo, retry=0)

    assert _ready_reason(world, Kind.AGENT_INSTANCE, INSTANCE) == "AgentNotFound"
    assert memo.retries.pending() == [(Kind.AGENT_INSTANCE, "team-a", INSTANCE)]
    assert memo.retries.run_due() == 0  # not due yet
    clock.now += world.settings.retry_delay
    assert memo.retries.run_due() == 1
    assert _ready_reason(world, Kind.AGENT_INSTANCE, INSTANCE) == "Ready"
    assert memo.retries.pending() == []


def test_a_failing_pipeline_in_a_rerun_is_retried_with_its_delay(world: World) -> None:
    clock = ManualClock()
    memo = _memo(world, clock)
    world.agent()
    world.apply(instance_manifest())
    world.kube.fail_next("patch_status", ServerError("etcd timed out", status=504))

    rerun(Kind.AGENT_INSTANCE, "team-a", INSTANCE, memo)

    assert memo.retries.pending() == [(Kind.AGENT_INSTANCE, "team-a", INSTANCE)]
    clock.now += world.settings.retry_delay
    memo.retries.run_due()
    assert _ready_reason(world, Kind.AGENT_INSTANCE, INSTANCE) == "Ready"


def test_a_rerun_skips_an_object_replaced_under_the_same_name(world: World) -> None:
    memo = _memo(world, ManualClock())
    world.agent()
    calls = len(world.kube.calls)

    rerun(Kind.AGENT, "team-a", "support-bot", memo, uid="the-owner-that-was-deleted")

    assert [c.method for c in world.kube.calls[calls:]] == ["get"]


def test_the_retry_thread_runs_each_key_once_when_due() -> None:
    retries = Retries()
    ran: list[str] = []
    done = threading.Event()
    retries.schedule("a", 0.2, lambda: ran.append("first"))
    retries.schedule("a", 0.05, lambda: (ran.append("latest"), done.set()))  # replaces "first"
    assert done.wait(5)
    assert ran == ["latest"] and retries.pending() == []


def test_deleting_the_holder_of_a_slug_accepts_the_agent_refused_for_it(world: World) -> None:
    memo = _memo(world, ManualClock())
    holder = world.apply(agent_manifest("one", displayName="Twin"))
    reconcile(Kind.AGENT, Operation.CREATE, holder, memo)
    refused = world.apply(agent_manifest("two", displayName="Twin"))
    memo.references.agent_seen(refused)  # the watch: no status yet
    with pytest.raises(kopf.PermanentError, match="DuplicateSlug"):
        reconcile(Kind.AGENT, Operation.CREATE, refused, memo)

    world.kube.remove(ObjectKind.AGENT, "team-a", "one")
    agent_deleted(body=holder, memo=memo)

    accepted = find_condition(
        conditions_of(world.current(Kind.AGENT, "two")), ConditionType.ACCEPTED
    )
    assert accepted is not None and accepted["status"] == "True"
