"""Resumes run as kopf ran its ``on.resume`` handlers: retried after a failure, on the newest body.

kopf no longer runs them (:mod:`stigmer_operator.handlers.observers`), so
its retries are :func:`.common.resume`'s: a temporary failure runs the
resume again after the error's delay, on the object as it is then, with the
attempt count the back-off of a blocked object grows with; a permanent one
ends it; an object gone, being deleted or replaced by then is left alone.
"""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes
import pytest
from pipeline_world import World, agent_manifest

import stigmer_operator.handlers  # noqa: F401  (registers the resumes)
from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers import agent, agent_instance
from stigmer_operator.handlers.common import UNEXPECTED_ERROR_DELAY, resume
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.observers import RESUMES, on_resume
from stigmer_operator.handlers.retries import Retries
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.settings import OperatorSettings

KEY = (Kind.AGENT, "team-a", "support-bot")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Clock:
    return Clock()


@pytest.fixture
def memo(world: World, ticks: Clock) -> OperatorMemo:
    retries = Retries(clock=ticks, autostart=False)
    return OperatorMemo(
        world.deps, OperatorSettings(), kubernetes.client.ApiClient(), retries=retries
    )


class Handler:
    """A resume that fails with each of ``failures`` in turn, then succeeds."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls: list[tuple[int, dict[str, Any]]] = []

    def __call__(self, body: kopf.Body, memo: OperatorMemo, retry: int) -> None:
        self.calls.append((retry, dict(body["spec"])))
        if self.failures:
            raise self.failures.pop(0)


def _due_after(clock: Clock, memo: OperatorMemo, seconds: float) -> int:
    """Runs what is due ``seconds`` from now; checks nothing was due a moment earlier."""
    start = clock.now
    clock.now = start + seconds - 0.5
    assert memo.retries.run_due() == 0, "ran before its delay"
    clock.now = start + seconds
    return memo.retries.run_due()


def test_every_kind_has_its_resume() -> None:
    """Without one, a restart would not re-mirror that kind."""
    expected = {
        Kind.AGENT: agent.agent_resumed,
        Kind.AGENT_INSTANCE: agent_instance.instance_resumed,
    }
    assert dict(RESUMES) == expected
    with pytest.raises(ValueError, match="Agent already has one"):
        on_resume(Kind.AGENT)(agent_instance.instance_resumed)


def test_a_temporary_failure_runs_again_after_its_delay_on_the_newest_spec(
    world: World, memo: OperatorMemo, ticks: Clock
) -> None:
    body = world.apply(agent_manifest())
    handler = Handler(
        kopf.TemporaryError("API busy", delay=7), kopf.TemporaryError("again", delay=3)
    )

    resume(Kind.AGENT, handler, body, memo)
    world.edit_spec(Kind.AGENT, "support-bot", description="edited while it waited")

    assert memo.retries.pending() == [KEY]
    assert _due_after(ticks, memo, 7) == 1
    assert _due_after(ticks, memo, 3) == 1
    assert [retry for retry, _ in handler.calls] == [0, 1, 2]
    assert "description" not in handler.calls[0][1]
    assert handler.calls[1][1]["description"] == "edited while it waited"
    assert memo.retries.pending() == []


def test_a_permanent_failure_ends_it(world: World, memo: OperatorMemo) -> None:
    body = world.apply(agent_manifest())
    handler = Handler(kopf.PermanentError("refused"))

    resume(Kind.AGENT, handler, body, memo)

    assert len(handler.calls) == 1
    assert memo.retries.pending() == []


def test_an_unexpected_error_runs_it_again_after_kopfs_default_delay(
    world: World, memo: OperatorMemo, ticks: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    body = world.apply(agent_manifest())
    handler = Handler(KeyError("a bug"))

    resume(Kind.AGENT, handler, body, memo)

    assert "Agent team-a/support-bot (resume) failed" in caplog.text
    assert _due_after(ticks, memo, UNEXPECTED_ERROR_DELAY) == 1
    assert [retry for retry, _ in handler.calls] == [0, 1]


@pytest.mark.parametrize("change", ["deleted", "being deleted", "replaced"])
def test_an_object_gone_going_or_replaced_is_not_resumed_again(
    world: World, memo: OperatorMemo, ticks: Clock, change: str
) -> None:
    body = world.apply(agent_manifest())
    handler = Handler(kopf.TemporaryError("API busy", delay=1))
    resume(Kind.AGENT, handler, body, memo)

    key = (ObjectKind.AGENT, "team-a", "support-bot")
    if change == "deleted":
        del world.kube.objects[key]
    elif change == "being deleted":
        world.kube.objects[key]["metadata"]["deletionTimestamp"] = "2026-12-03T18:00:00Z"
    else:
        del world.kube.objects[key]
        world.apply(agent_manifest())  # a new uid

    assert _due_after(ticks, memo, 1) == 1
    assert len(handler.calls) == 1
    assert memo.retries.pending() == []


def test_the_agents_resume_reconciles_it_and_its_default_instance(
    world: World, memo: OperatorMemo
) -> None:
    """What a restart does to an Agent created while the operator was down."""
    body = world.apply(agent_manifest())

    resume(Kind.AGENT, agent.agent_resumed, body, memo)

    for kind, name in ((Kind.AGENT, "support-bot"), (Kind.AGENT_INSTANCE, "support-bot-default")):
        ready = find_condition(conditions_of(world.current(kind, name)), ConditionType.READY)
        assert (ready or {}).get("status") == "True", kind
    assert memo.retries.pending() == []
