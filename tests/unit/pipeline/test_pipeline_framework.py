"""The framework: typed values, frozen input, step order, error wrapping, observer, crash points."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pipeline_world import World, agent_manifest

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.pipeline.context import (
    Key,
    MissingValueError,
    Operation,
    Outcome,
    RequestContext,
    Values,
)
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.kube import Conflict, Invalid
from stigmer_operator.pipeline.runner import CRASH_AFTER_STEP_ENV, Pipeline, Step
from stigmer_operator.store.errors import StoreError

REPO = Path(__file__).resolve().parents[3]


class Recorder:
    """A step that records its name into a shared list."""

    def __init__(self, name: str, log: list[str], *, unchanged: bool = False) -> None:
        self.name = name
        self.log = log
        self.unchanged = unchanged

    def run(self, ctx: RequestContext[Resource]) -> None:
        self.log.append(self.name)
        if self.unchanged:
            ctx.mark_unchanged()


class Raising:
    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error

    def run(self, ctx: RequestContext[Resource]) -> None:
        raise self.error


class SpyObserver:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_step_start(self, pipeline: str, step: str, ctx: RequestContext[Any]) -> None:
        self.events.append(("start", pipeline, step))

    def on_step_end(
        self,
        pipeline: str,
        step: str,
        ctx: RequestContext[Any],
        duration: float,
        error: PipelineError | None,
    ) -> None:
        assert duration >= 0
        self.events.append(("end", pipeline, step, error.reason if error else None))


@pytest.fixture
def ctx(world: World) -> RequestContext[Resource]:
    world.apply(agent_manifest())
    return world.context(Kind.AGENT, "support-bot")


def test_values_are_typed_by_key_and_missing_values_name_the_key() -> None:
    count: Key[int] = Key("count")
    values = Values()
    assert values.find(count) is None
    with pytest.raises(MissingValueError, match="count was not set by an earlier step"):
        values.get(count)
    values.put(count, 3)
    assert values.get(count) == 3
    assert count in values


def test_body_is_a_deep_read_only_copy(world: World) -> None:
    manifest = agent_manifest(labels={"team": "a"}, skillRefs=[{"name": "x"}])
    ctx = RequestContext.for_agent(manifest, Operation.CREATE, world.deps)
    manifest["metadata"]["labels"]["team"] = "changed"  # the caller's dict is not shared
    assert ctx.labels["team"] == "a"
    with pytest.raises(TypeError):
        ctx.body["metadata"]["labels"]["team"] = "b"
    with pytest.raises(AttributeError):
        ctx.body["spec"]["skillRefs"].append({})  # tuples have no append
    assert ctx.name == "support-bot" and ctx.namespace == "team-a"


def test_constructors_pick_the_message_type(world: World) -> None:
    agent = RequestContext.for_agent(agent_manifest(), Operation.CREATE, world.deps)
    instance = RequestContext.for_agent_instance({}, Operation.RESUME, world.deps)
    assert agent.kind is Kind.AGENT and type(agent.new_state).__name__ == "Agent"
    assert instance.kind is Kind.AGENT_INSTANCE
    assert type(instance.new_state).__name__ == "AgentInstance"


def test_steps_run_in_order_and_record_outcomes(ctx: RequestContext[Resource]) -> None:
    log: list[str] = []
    pipeline = Pipeline("p", [Recorder("A", log), Recorder("B", log, unchanged=True)])
    assert pipeline.run(ctx) is ctx
    assert log == ["A", "B"]
    assert [(o.step, o.outcome) for o in ctx.outcomes] == [
        ("A", Outcome.SUCCEEDED),
        ("B", Outcome.UNCHANGED),
    ]
    assert all(o.duration >= 0 for o in ctx.outcomes)


def test_first_error_stops_the_pipeline_and_names_the_step(ctx: RequestContext[Resource]) -> None:
    log: list[str] = []
    refusal = PipelineError(Reason.FORBIDDEN, "no", retryable=False)
    pipeline = Pipeline("p", [Recorder("A", log), Raising("B", refusal), Recorder("C", log)])
    with pytest.raises(PipelineError) as caught:
        pipeline.run(ctx)
    assert caught.value is refusal
    assert caught.value.step == "B"
    assert str(caught.value) == "B: Forbidden: no"
    assert log == ["A"]
    assert ctx.outcomes[-1].outcome is Outcome.FAILED


@pytest.mark.parametrize(
    ("error", "reason", "retryable"),
    [
        (ValueError("boom"), Reason.INTERNAL_ERROR, True),
        (StoreError("disk full"), Reason.STORE_ERROR, True),
        (Conflict("409"), Reason.KUBERNETES_API_ERROR, True),
        (Invalid("422"), Reason.KUBERNETES_API_ERROR, False),
    ],
)
def test_unknown_and_domain_errors_are_wrapped(
    ctx: RequestContext[Resource], error: Exception, reason: Reason, retryable: bool
) -> None:
    with pytest.raises(PipelineError) as caught:
        Pipeline("p", [Raising("Broken", error)]).run(ctx)
    assert caught.value.step == "Broken"
    assert caught.value.reason is reason
    assert caught.value.retryable is retryable
    assert caught.value.__cause__ is error
    assert (caught.value.delay is not None) is retryable


def test_internal_errors_log_the_traceback(
    ctx: RequestContext[Resource], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(PipelineError):
        Pipeline("p", [Raising("Broken", KeyError("k"))]).run(ctx)
    record = next(r for r in caplog.records if "Broken" in r.getMessage())
    assert record.exc_info is not None


def test_observer_sees_every_step_and_the_failure(ctx: RequestContext[Resource]) -> None:
    spy = SpyObserver()
    steps: list[Step] = [Recorder("A", []), Raising("B", ValueError("x"))]
    with pytest.raises(PipelineError):
        Pipeline("p", steps, observer=spy).run(ctx)
    assert spy.events == [
        ("start", "p", "A"),
        ("end", "p", "A", None),
        ("start", "p", "B"),
        ("end", "p", "B", Reason.INTERNAL_ERROR),
    ]


def test_observer_can_be_given_per_run(world: World) -> None:
    spy = SpyObserver()
    world.apply(agent_manifest())
    Pipeline("p", [Recorder("A", [])]).run(world.context(Kind.AGENT, "support-bot"), spy)
    assert [e[0] for e in spy.events] == ["start", "end"]


def test_step_debug_log_has_the_duration(
    ctx: RequestContext[Resource], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="stigmer_operator.pipeline.runner")
    Pipeline("p", [Recorder("A", [])]).run(ctx)
    assert any("step A succeeded in" in r.getMessage() for r in caplog.records)


def test_duplicate_step_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate step names"):
        Pipeline("p", [Recorder("A", []), Recorder("A", [])])


def test_crash_point_kills_the_process_right_after_the_step(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from stigmer_operator.pipeline.runner import Pipeline

        class Step:
            def __init__(self, name):
                self.name = name
            def run(self, ctx):
                print("ran", self.name, flush=True)

        class Ctx:
            class deps:
                observer = None
            def take_unchanged(self):
                return False
            outcomes = []

        Pipeline("p", [Step("A"), Step("B"), Step("C")]).run(Ctx())
        print("finished", flush=True)
        """
    )
    env = {**os.environ, CRASH_AFTER_STEP_ENV: "B"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split("\n")[:2] == ["ran A", "ran B"]
    assert "ran C" not in done.stdout and "finished" not in done.stdout


def test_no_crash_point_by_default(ctx: RequestContext[Resource]) -> None:
    assert os.environ.get(CRASH_AFTER_STEP_ENV) is None
    Pipeline("p", [Recorder("A", [])]).run(ctx)


def test_a_broken_observer_does_not_fail_the_pipeline(
    ctx: RequestContext[Resource], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(SpyObserver):
        def on_step_start(self, pipeline: str, step: str, ctx: RequestContext[Any]) -> None:
            raise RuntimeError("metrics registry exploded")

    log: list[str] = []
    Pipeline("p", [Recorder("A", log)], observer=Broken()).run(ctx)
    assert log == ["A"]
    assert any("observer" in r.getMessage() for r in caplog.records)
