"""``metav1.Condition``: what the operator says about an object, decided here.

``kubectl wait --for=condition=Ready``, Flux's kstatus and Argo CD health
checks all read ``status.conditions`` the way ``metav1.Condition`` defines
it: ``type``, ``status`` (True/False/Unknown), CamelCase ``reason``,
``message``, ``observedGeneration`` and ``lastTransitionTime``. The last one
must only move when ``status`` flips -- otherwise every reconcile looks like
a transition and the status patch is never a no-op. :func:`set_condition`
keeps that rule in one place.

Every condition the operator writes comes from one of two builders, the
way Flux's controllers summarize a reconcile's typed errors into conditions
in one step. A reconcile writes them once, when it is done: before that the
object has no conditions, which kstatus reads as ``InProgress`` and
``kubectl wait --for=condition=Ready`` as "not yet".

==========================  ===============================================
:func:`succeeded`           ``Accepted=True`` and ``Ready=True`` -- or
                            ``Ready=False``, ``DefaultInstanceNotReady``,
                            for an Agent whose default instance is not
                            Ready yet (the operator *knows* it is not;
                            ``Reconciling=True`` with the same reason);
                            ``Mirrored=False``, ``StoreUnwritable``, while
                            the store cannot record the object
:func:`failed`              from the error's
                            :class:`~stigmer_operator.pipeline.errors.Reason`:
                            a refusal is ``Accepted=False``/``Ready=False``;
                            a block by another object ``Accepted=True``/
                            ``Ready=False``; infrastructure trouble only
                            ``Ready=Unknown`` (``Accepted`` left as it was).
                            What no retry can fix is ``Stalled=True``, what
                            is retried or awaited ``Reconciling=True``
                            (:attr:`PipelineError.stalls` decides)
==========================  ===============================================

``Stalled`` and ``Reconciling`` follow kstatus, the status library behind
Flux's ``wait: true`` and health checks: ``Stalled=True`` makes an object
``Failed`` with the condition's message, ``Reconciling=True`` makes it
``InProgress``, and an object with neither, whose ``observedGeneration`` is
its generation, is ``Current``. At most one of the two is present; both are
removed once a reconcile succeeds.

A failure's reason is the error's ``Reason``; every other reason is a
:class:`ConditionReason`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from stigmer_operator.pipeline.errors import PipelineError

#: ``metav1.Time`` on the wire: UTC, second precision.
RFC3339_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: A ``status.conditions`` list as read, and as the builders return it.
Conditions: TypeAlias = Iterable[Mapping[str, Any]]
Written: TypeAlias = list[dict[str, Any]]

#: metav1.Condition caps ``message`` at 32768 bytes; keep far below.
MESSAGE_MAX = 2048


class ConditionType(enum.StrEnum):
    READY = "Ready"
    ACCEPTED = "Accepted"
    #: kstatus: progress needs a change by someone (the object, or another one).
    STALLED = "Stalled"
    #: kstatus: the operator is working on it, retrying, or waiting.
    RECONCILING = "Reconciling"
    #: Whether the operator's store holds this version (only written once it did not).
    MIRRORED = "Mirrored"


class ConditionStatus(enum.StrEnum):
    """Status of a condition, as in ``metav1.Condition``."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionReason(enum.StrEnum):
    """The reasons of conditions that do not report a failure."""

    ACCEPTED = "Accepted"
    READY = "Ready"
    DEFAULT_INSTANCE_NOT_READY = "DefaultInstanceNotReady"
    MIRRORED = "Mirrored"
    #: The store's volume is full or read-only (see :mod:`.mirror`).
    STORE_UNWRITABLE = "StoreUnwritable"


ACCEPTED_MESSAGE = "spec is valid and authorized"
MIRRORED_MESSAGE = "the operator's store holds this version"


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


def remove_condition(conditions: Iterable[Mapping[str, Any]], type_: ConditionType) -> Written:
    """A new conditions list without ``type_``; the others kept, in order."""
    return [dict(c) for c in conditions if c.get("type") != type_.value]


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
        "reason": str(reason),
        "message": message[:MESSAGE_MAX],
        "observedGeneration": observed_generation,
        "lastTransitionTime": since,
    }


#: (status, reason, message) of a condition.
_Verdict: TypeAlias = tuple[ConditionStatus, str, str]
_ACCEPTED: _Verdict = (ConditionStatus.TRUE, ConditionReason.ACCEPTED, ACCEPTED_MESSAGE)


def behind_message(cause: str) -> str:
    """What ``Mirrored=False`` says (and the Warning Event): stable across retries."""
    return (
        f"the operator's store cannot write ({cause}): the cluster is reconciled, but this "
        "version is not in the mirror or its history yet; it is recorded once the store "
        "volume has room"
    )


def succeeded(
    conditions: Conditions,
    what: str,
    generation: int,
    now: datetime,
    *,
    not_ready_instance: str | None = None,
    mirror_behind: str | None = None,
) -> Written:
    """``Accepted=True`` and ``Ready=True`` for ``what`` (the kind's name).

    ``not_ready_instance`` names an Agent's default instance that is not
    Ready yet: then ``Ready=False``, reason ``DefaultInstanceNotReady``, and
    ``Reconciling=True`` (the Agent is re-run when the instance turns Ready).
    ``mirror_behind`` is why the store could not record this version (see
    :mod:`.mirror`): ``Ready`` still says what the cluster says, and
    ``Mirrored=False`` says the rest -- without ``Reconciling``: the cluster
    side is done, so kstatus (and Flux's wait) sees the object ``Current``.
    ``Mirrored`` is only written once the mirror was behind, and turns
    ``True`` when it caught up.
    """
    progress: tuple[ConditionType | None, tuple[str, str]] = (None, ("", ""))
    ready: _Verdict = (ConditionStatus.TRUE, ConditionReason.READY, _usable(what, mirror_behind))
    if not_ready_instance is not None:
        waiting = (
            ConditionReason.DEFAULT_INSTANCE_NOT_READY,
            f"the default AgentInstance {not_ready_instance} is not Ready yet",
        )
        ready = (ConditionStatus.FALSE, *waiting)
        progress = (ConditionType.RECONCILING, waiting)
    conditions = set_condition(conditions, ConditionType.READY, *ready, generation, now)
    conditions = set_condition(conditions, ConditionType.ACCEPTED, *_ACCEPTED, generation, now)
    conditions = _progress(conditions, *progress, generation, now)
    return _mirrored(conditions, mirror_behind, generation, now)


def _usable(what: str, mirror_behind: str | None) -> str:
    if mirror_behind is None:
        return f"{what} is mirrored and usable"
    return f"{what} is usable; the operator's store has not recorded it (see Mirrored)"


def _mirrored(
    conditions: Written, mirror_behind: str | None, generation: int, now: datetime
) -> Written:
    if mirror_behind is not None:
        behind: _Verdict = (
            ConditionStatus.FALSE,
            ConditionReason.STORE_UNWRITABLE,
            behind_message(mirror_behind),
        )
        return set_condition(conditions, ConditionType.MIRRORED, *behind, generation, now)
    if find_condition(conditions, ConditionType.MIRRORED) is None:
        return conditions
    caught_up: _Verdict = (ConditionStatus.TRUE, ConditionReason.MIRRORED, MIRRORED_MESSAGE)
    return set_condition(conditions, ConditionType.MIRRORED, *caught_up, generation, now)


def failed(conditions: Conditions, error: PipelineError, generation: int, now: datetime) -> Written:
    """The conditions describing ``error``, by its reason (see the module table)."""
    reason = error.reason
    progress = ConditionType.STALLED if error.stalls else ConditionType.RECONCILING
    conditions = _progress(conditions, progress, (reason, error.detail), generation, now)
    if not (reason.refuses_object or reason.blocked_by_another_object):
        trouble: _Verdict = (ConditionStatus.UNKNOWN, reason, error.detail)
        return set_condition(conditions, ConditionType.READY, *trouble, generation, now)
    not_ready: _Verdict = (ConditionStatus.FALSE, reason, error.detail)
    conditions = set_condition(conditions, ConditionType.READY, *not_ready, generation, now)
    accepted = not_ready if reason.refuses_object else _ACCEPTED
    return set_condition(conditions, ConditionType.ACCEPTED, *accepted, generation, now)


_PROGRESS = (ConditionType.STALLED, ConditionType.RECONCILING)


def _progress(
    conditions: Conditions,
    which: ConditionType | None,
    why: tuple[str, str],
    generation: int,
    now: datetime,
) -> Written:
    """``which`` (Stalled or Reconciling) set True with ``why``; the other one removed.

    ``None`` removes both: the reconcile is done.
    """
    result = [dict(c) for c in conditions]
    for type_ in _PROGRESS:
        if type_ is not which:
            result = remove_condition(result, type_)
    if which is None:
        return result
    return set_condition(result, which, ConditionStatus.TRUE, *why, generation, now)
