"""``Step`` and ``Pipeline``: run named steps in order, stop at the first error.

A pipeline is a name and a tuple of steps. ``Pipeline.run`` times each step,
records its :class:`~.context.StepOutcome`, logs it at debug level, calls an
optional :class:`StepObserver` (the hook the operator hangs Prometheus
metrics and tracing on), and turns whatever escapes a step into one
:class:`~.errors.PipelineError` naming that step. Everything here is
synchronous: kopf runs sync handlers in its thread pool, and the steps use
the blocking Kubernetes client.

Crash points (tests only)
-------------------------
If the environment variable ``STIGMER_CRASH_AFTER_STEP`` equals a step's
name, the process sends itself ``SIGKILL`` right after that step succeeds:
no ``finally`` blocks, no flushing, exactly like an OOM kill or a node
failure. Survival tests set it on an operator process, restart it without
the variable, and check that kopf's re-run converges (one history entry,
one default instance, no duplicate Event). Never set it in production.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar, runtime_checkable

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.context import Outcome, RequestContext, StepOutcome
from stigmer_operator.pipeline.errors import PipelineError, Reason, from_exception

logger = logging.getLogger(__name__)

#: Environment variable naming a step after which the process SIGKILLs itself.
CRASH_AFTER_STEP_ENV = "STIGMER_CRASH_AFTER_STEP"

M = TypeVar("M", bound=Resource)

# Read once: the runner records an outcome per step on every run.
_SUCCEEDED = Outcome.SUCCEEDED
_UNCHANGED = Outcome.UNCHANGED


@runtime_checkable
class Step(Protocol):
    """One idempotent unit of work; ``name`` is the Cloud pipeline's step name."""

    name: str

    def run(self, ctx: RequestContext[Resource]) -> None: ...


class StepObserver(Protocol):
    """Span hook around each step (metrics, tracing)."""

    def on_step_start(self, pipeline: str, step: str, ctx: RequestContext[Any]) -> None: ...

    def on_step_end(
        self,
        pipeline: str,
        step: str,
        ctx: RequestContext[Any],
        duration: float,
        error: PipelineError | None,
    ) -> None: ...


def crash_if_requested(step: str, crash_after: str | None) -> None:
    """SIGKILL this process if ``step`` is the configured crash point."""
    if crash_after is not None and crash_after == step:
        logger.warning("%s=%s: killing the process", CRASH_AFTER_STEP_ENV, step)
        os.kill(os.getpid(), signal.SIGKILL)


def _observe(hook: Callable[..., None], *args: Any) -> None:
    """Call an observer hook; a broken metrics hook must not fail a reconcile."""
    try:
        hook(*args)
    except Exception:
        logger.exception("pipeline observer %r failed", hook)


class Pipeline:
    """A named, ordered list of steps."""

    __slots__ = ("name", "observer", "steps")  # observer: the default of ``run``

    def __init__(
        self, name: str, steps: Iterable[Step], observer: StepObserver | None = None
    ) -> None:
        self.name = name
        self.steps: tuple[Step, ...] = tuple(steps)
        self.observer = observer
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline {name}: duplicate step names {names}")

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def run(
        self, ctx: RequestContext[M], observer: StepObserver | None = None
    ) -> RequestContext[M]:
        """Run every step; raise :class:`PipelineError` at the first failure."""
        crash_after = os.environ.get(CRASH_AFTER_STEP_ENV)
        observer = observer or self.observer
        debug = logger.isEnabledFor(logging.DEBUG)
        try:
            for step in self.steps:
                self._run_step(step, ctx, observer, debug)
                if crash_after is not None:
                    crash_if_requested(step.name, crash_after)
        finally:
            ctx.release()  # what steps held for the run (a slug lock)
        return ctx

    def _run_step(
        self, step: Step, ctx: RequestContext[M], observer: StepObserver | None, debug: bool
    ) -> None:
        if observer is not None:
            _observe(observer.on_step_start, self.name, step.name, ctx)
        ctx.take_unchanged()
        started = time.perf_counter()
        try:
            step.run(ctx)
        except Exception as exc:
            duration = time.perf_counter() - started
            error = self._wrap(exc, step.name, ctx)
            ctx.outcomes.append(StepOutcome(step.name, Outcome.FAILED, duration))
            logger.debug(
                "%s %s: step %s failed after %.6fs: %s", self.name, ctx, step.name, duration, error
            )
            if observer is not None:
                _observe(observer.on_step_end, self.name, step.name, ctx, duration, error)
            if error is exc:
                raise
            raise error from exc
        duration = time.perf_counter() - started
        outcome = _UNCHANGED if ctx.take_unchanged() else _SUCCEEDED
        ctx.outcomes.append(StepOutcome(step.name, outcome, duration))
        if debug:
            logger.debug("%s %s: step %s %s in %.6fs", self.name, ctx, step.name, outcome, duration)
        if observer is not None:
            _observe(observer.on_step_end, self.name, step.name, ctx, duration, None)

    @staticmethod
    def _wrap(exc: Exception, step: str, ctx: RequestContext[Any]) -> PipelineError:
        error = from_exception(exc, step, ctx.deps.settings.retry_delay)
        if error.reason is Reason.INTERNAL_ERROR:
            logger.error("step %s raised unexpectedly for %r", step, ctx, exc_info=exc)
        return error

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, [{', '.join(self.step_names)}])"
