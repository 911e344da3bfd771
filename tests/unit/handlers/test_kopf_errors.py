"""What kopf is told when a pipeline fails: retry soon, back off, give up, or just stop.

Each row is a failure as the pipeline raises it (the step's ``retryable`` and
``delay``, or :func:`from_exception` for what escapes a step) and what kopf
then does with the object.
"""

from __future__ import annotations

import kopf
import pytest

from stigmer_operator.handlers.common import kopf_error_for
from stigmer_operator.pipeline.errors import PipelineError, Reason, from_exception
from stigmer_operator.pipeline.kube import ApiForbidden, NamespaceTerminating, ServerError
from stigmer_operator.store.errors import StoreError

RETRY_DELAY = 5.0


def _refusal(reason: Reason) -> PipelineError:
    return PipelineError(reason, "the object is the problem", retryable=False)


def _escaped(exc: Exception) -> PipelineError:
    return from_exception(exc, "Persist", RETRY_DELAY)


Row = tuple[PipelineError, int, type[Exception] | None, float | None]

ROWS: dict[str, Row] = {
    "invalid spec: give up": (_refusal(Reason.VALIDATION_FAILED), 0, kopf.PermanentError, None),
    "forbidden: give up": (_refusal(Reason.FORBIDDEN), 0, kopf.PermanentError, None),
    "duplicate slug: give up": (_refusal(Reason.DUPLICATE_SLUG), 0, kopf.PermanentError, None),
    # The Agent's handlers wake the instance when the Agent appears.
    "agent not found: give up": (_refusal(Reason.AGENT_NOT_FOUND), 3, kopf.PermanentError, None),
    "blocked, 1st attempt: 1 min": (
        _refusal(Reason.DEFAULT_INSTANCE_CONFLICT), 0, kopf.TemporaryError, 60.0,
    ),
    "blocked, 2nd attempt: 2 min": (_refusal(Reason.IAM_CONFLICT), 1, kopf.TemporaryError, 120.0),
    "blocked, 4th attempt: 8 min": (_refusal(Reason.IAM_CONFLICT), 3, kopf.TemporaryError, 480.0),
    "blocked, 5th attempt: capped at 10 min": (
        _refusal(Reason.IAM_CONFLICT), 4, kopf.TemporaryError, 600.0,
    ),
    "blocked, 100th attempt: 10 min": (
        _refusal(Reason.IAM_CONFLICT), 99, kopf.TemporaryError, 600.0,
    ),
    "blocked by a former self: retry soon": (
        PipelineError(Reason.IAM_CONFLICT, "gc pending", retryable=True, delay=RETRY_DELAY),
        7, kopf.TemporaryError, RETRY_DELAY,
    ),
    "store failure: retry soon": (
        _escaped(StoreError("disk full")), 0, kopf.TemporaryError, RETRY_DELAY,
    ),
    "API 5xx: retry soon": (
        _escaped(ServerError("503", status=503)), 0, kopf.TemporaryError, RETRY_DELAY,
    ),
    "API refuses (RBAC): give up": (
        _escaped(ApiForbidden("no verb", status=403)), 0, kopf.PermanentError, None,
    ),
    "bug: retry soon": (_escaped(KeyError("x")), 0, kopf.TemporaryError, RETRY_DELAY),
    "retryable without a delay: 5 s": (
        PipelineError(Reason.INTERNAL_ERROR, "x", retryable=True), 0, kopf.TemporaryError, 5.0,
    ),
    "namespace terminating: stop quietly": (
        _escaped(NamespaceTerminating("ns going")), 0, None, None,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("error", "retry", "raised", "delay"), ROWS.values(), ids=ROWS.keys())
def test_kopf_is_told(
    error: PipelineError, retry: int, raised: type[Exception] | None, delay: float | None
) -> None:
    told = kopf_error_for(error, retry)
    if raised is None:
        assert told is None
        return
    assert type(told) is raised
    assert getattr(told, "delay", None) == delay
    assert str(error) in str(told)
