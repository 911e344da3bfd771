"""metav1.Condition helpers: lastTransitionTime only moves when status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from stigmer_operator.pipeline.conditions import (
    ConditionStatus,
    ConditionType,
    find_condition,
    is_true,
    rfc3339,
    set_condition,
)

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
