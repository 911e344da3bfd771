"""Watch-event observers and resumes: called from kopf's per-object workers, not as kopf handlers.

Each kind has one **observer**: every event of the kind, in order, just
before kopf processes it. It keeps :class:`.References` (and the start-up
listing) current, runs a deletion's pipeline -- kopf calls no handler for
an object already gone -- and re-runs the objects an event concerns.

Each kind has one **resume**: the pipeline an object runs when the
operator first sees it in a listing (at start, or when a peering standby
takes over), exactly when kopf would run its ``on.resume`` handlers. It
runs on kopf's handler threads, after the observer and before kopf
processes the event; its failures are retried by :class:`.Retries`, as
kopf would retry a resume handler (:func:`.common.resume`).

Neither is a kopf handler because of what kopf does around each call of
one: a cause with every keyword argument a handler may ask for, the
invocation contexts, the handler's progress in the object's annotations,
two log lines. For an observer, whose own work is usually a dictionary
update, that bookkeeping was nearly all the cost, paid for every event of
every object: about a tenth of the operator's CPU in a burst and in a
restart. For the resumes, it was about a quarter of a restart's CPU with
20,000 objects (``docs/performance.md``).
:func:`.kopf_compat.observed_events` calls them directly instead, from the
object's kopf worker: the same events, in the same order. An observer that
raises is logged, and the event still goes to kopf.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import kopf

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.memo import OperatorMemo

#: Called with the raw watch event (``type`` is ``None`` for an object of
#: kopf's first listing) and the operator's memo.
Observer = Callable[[kopf.RawEvent, OperatorMemo], Awaitable[None]]
#: Called on a thread with the object's body, the operator's memo and how
#: many earlier attempts failed; raises kopf's errors as a kopf handler does.
ResumeHandler = Callable[[kopf.Body, OperatorMemo, int], None]

#: The observer of each kind, registered by :func:`on_event`.
OBSERVERS: dict[Kind, Observer] = {}
#: The resume of each kind, registered by :func:`on_resume`.
RESUMES: dict[Kind, ResumeHandler] = {}

_Registered = TypeVar("_Registered", Observer, ResumeHandler)


def on_event(kind: Kind) -> Callable[[Observer], Observer]:
    """Register the observer of ``kind``'s watch events (one per kind)."""
    return _registrar(OBSERVERS, kind)


def on_resume(kind: Kind) -> Callable[[ResumeHandler], ResumeHandler]:
    """Register the resume of ``kind``'s objects (one per kind)."""
    return _registrar(RESUMES, kind)


def _registrar(
    registry: dict[Kind, _Registered], kind: Kind
) -> Callable[[_Registered], _Registered]:
    def register(function: _Registered) -> _Registered:
        if kind in registry:
            raise ValueError(f"{kind.value} already has one: {registry[kind]!r}")
        registry[kind] = function
        return function

    return register
