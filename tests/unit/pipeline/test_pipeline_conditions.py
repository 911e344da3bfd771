"""metav1.Condition helpers: lastTransitionTime only moves when status flips; kstatus rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from stigmer_operator.pipeline.conditions import (
    ConditionStatus,
    ConditionType,
    failed,
    find_condition,
    is_true,
    rfc3339,
    set_condition,
    succeeded,
)
from stigmer_operator.pipeline.errors import PipelineError, Reason

T0 = datetime(2026, 1, 18, 19, 41, 31, 123456, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_rfc3339_is_utc_seconds_with_z() -> None:
    assert rfc3339(T0) == "2026-01-18T19:41:31Z"
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert rfc3339(plus_two) == "2026-01-18T19:41:31Z"
    assert rfc3339(datetime(2026, 1, 1)) == "2026-01-01T00:00:00Z"  # naive = UTC


def test_new_condition_is_appended_with_all_fields() -> None:
    result = set_condition([], ConditionType.READY, ConditionStatus.UNKNOWN, "Pending", "m", 3, T0)
    assert result == [
        {
            "type": "Ready",
            "status": "Unknown",
            "reason": "Pending",
            "message": "m",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-01-18T19:41:31Z",
        }
    ]


def test_last_transition_time_stays_when_status_does_not_flip() -> None:
    first = set_condition([], ConditionType.READY, ConditionStatus.TRUE, "Ready", "a", 1, T0)
    again = set_condition(first, ConditionType.READY, ConditionStatus.TRUE, "Ready", "b", 2, T1)
    assert again[0]["lastTransitionTime"] == "2026-01-18T19:41:31Z"
    assert again[0]["message"] == "b" and again[0]["observedGeneration"] == 2


def test_last_transition_time_moves_when_status_flips() -> None:
    first = set_condition([], ConditionType.READY, ConditionStatus.TRUE, "Ready", "", 1, T0)
    flipped = set_condition(first, ConditionType.READY, ConditionStatus.FALSE, "Bad", "", 1, T1)
    assert flipped[0]["lastTransitionTime"] == rfc3339(T1)
    assert flipped[0]["status"] == "False"


def test_other_conditions_and_order_are_kept_and_input_untouched() -> None:
    existing = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
        {"type": "Custom", "status": "True"},
    ]
    result = set_condition(existing, ConditionType.ACCEPTED, ConditionStatus.TRUE, "A", "", 1, T0)
    assert [c["type"] for c in result] == ["Ready", "Custom", "Accepted"]
    assert existing[0] == {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "2020-01-01T00:00:00Z",
    }
    assert find_condition(result, ConditionType.ACCEPTED) is not None
    assert is_true(result, ConditionType.READY)
    assert not is_true([], ConditionType.READY)


def test_long_messages_are_bounded() -> None:
    result = set_condition([], ConditionType.READY, ConditionStatus.FALSE, "R", "x" * 10_000, 1, T0)
    assert len(result[0]["message"]) <= 2048


# -- kstatus: Stalled and Reconciling ---------------------------------------


def _progress(conditions: list[dict[str, object]]) -> dict[str, tuple[object, object]]:
    """The kstatus conditions present: type -> (status, reason)."""
    return {
        str(c["type"]): (c["status"], c["reason"])
        for c in conditions
        if c["type"] in ("Stalled", "Reconciling")
    }


def _error(reason: Reason, *, retryable: bool) -> PipelineError:
    return PipelineError(reason, f"{reason.value} happened", retryable=retryable, step="Step")


def _waiting() -> list[dict[str, Any]]:
    """Conditions of an Agent in flight: ``Reconciling=True`` (its instance is not Ready)."""
    return succeeded([], "Agent", 1, T0, not_ready_instance="team-a/bot-default")


@pytest.mark.parametrize(
    "reason",
    [
        Reason.VALIDATION_FAILED,
        Reason.FORBIDDEN,
        Reason.DUPLICATE_SLUG,
        Reason.IAM_CONFLICT,
        Reason.DEFAULT_INSTANCE_CONFLICT,
    ],
)
def test_what_no_retry_fixes_stalls_with_the_message(reason: Reason) -> None:
    conditions = failed(_waiting(), _error(reason, retryable=False), 1, T1)
    assert _progress(conditions) == {"Stalled": ("True", reason.value)}
    stalled = find_condition(conditions, ConditionType.STALLED)
    assert stalled is not None and stalled["message"] == f"Step: {reason.value} happened"


@pytest.mark.parametrize(
    ("reason", "retryable"),
    [
        (Reason.AGENT_NOT_FOUND, False),
        (Reason.STORE_ERROR, True),
        (Reason.KUBERNETES_API_ERROR, True),
        (Reason.NAMESPACE_TERMINATING, False),
    ],
)
def test_what_is_retried_or_awaited_is_reconciling(reason: Reason, retryable: bool) -> None:
    stalled = failed([], _error(Reason.DUPLICATE_SLUG, retryable=False), 1, T0)
    conditions = failed(stalled, _error(reason, retryable=retryable), 2, T1)
    assert _progress(conditions) == {"Reconciling": ("True", reason.value)}


def test_success_removes_stalled_and_reconciling() -> None:
    stalled = failed([], _error(Reason.VALIDATION_FAILED, retryable=False), 1, T0)
    done = succeeded(stalled, "Agent", 2, T1)
    assert _progress(done) == {}
    assert is_true(done, ConditionType.READY) and is_true(done, ConditionType.ACCEPTED)


def test_an_agent_waiting_for_its_default_instance_is_reconciling() -> None:
    waiting = succeeded([], "Agent", 1, T0, not_ready_instance="team-a/bot-default")
    assert _progress(waiting) == {"Reconciling": ("True", "DefaultInstanceNotReady")}
