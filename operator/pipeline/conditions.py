"""``metav1.Condition`` helpers.

``kubectl wait --for=condition=Ready``, Flux's kstatus and Argo CD health
checks all read ``status.conditions`` the way ``metav1.Condition`` defines
it: ``type``, ``status`` (True/False/Unknown), CamelCase ``reason``,
``message``, ``observedGeneration`` and ``lastTransitionTime``. The last one
must only move when ``status`` flips -- otherwise every reconcile looks like
a transition and the status patch is never a no-op. :func:`set_condition`
keeps that rule in one place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

#: ``metav1.Time`` on the wire: UTC, second precision.
RFC3339_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: metav1.Condition caps ``message`` at 32768 bytes; keep far below.
MESSAGE_MAX = 2048


class ConditionType(enum.StrEnum):
    READY = "Ready"
    ACCEPTED = "Accepted"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


def rfc3339(moment: datetime) -> str:
    """``2026-01-18T19:41:31Z``: UTC, second precision, as ``metav1.Time`` serializes."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime's %Y does not pad those; keep its spelling
        return utc.strftime(RFC3339_FORMAT)
    # Formatted by hand: datetime.strftime costs several times more, on every reconcile.
    return (
        f"{utc.year}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


def find_condition(
    conditions: Iterable[Mapping[str, Any]], type_: ConditionType
) -> Mapping[str, Any] | None:
    for condition in conditions:
        if condition.get("type") == type_.value:
            return condition
    return None


def is_true(conditions: Iterable[Mapping[str, Any]], type_: ConditionType) -> bool:
    condition = find_condition(conditions, type_)
    return condition is not None and condition.get("status") == ConditionStatus.TRUE.value


def set_condition(
    conditions: Iterable[Mapping[str, Any]],
    type_: ConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """A new conditions list with ``type_`` set; other conditions kept as they were.

    ``lastTransitionTime`` is kept from the existing condition unless the
    status changed (or there was none); the order of conditions is kept and
    a new type is appended.
    """
    result: list[dict[str, Any]] = []
    replaced = False
    for existing in conditions:
        if existing.get("type") != type_.value:
            result.append(dict(existing))
            continue
        replaced = True
        same = existing.get("status") == status.value and existing.get("lastTransitionTime")
        since = existing["lastTransitionTime"] if same else rfc3339(now)
        result.append(_condition(type_, status, reason, message, observed_generation, since))
    if not replaced:
        result.append(_condition(type_, status, reason, message, observed_generation, rfc3339(now)))
    return result


def _condition(
    type_: ConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int,
    since: str,
) -> dict[str, Any]:
    return {
        "type": type_.value,
        "status": status.value,
        "reason": reason,
        "message": message[:MESSAGE_MAX],
        "observedGeneration": observed_generation,
        "lastTransitionTime": since,
    }
