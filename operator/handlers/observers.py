"""Watch-event observers: every event of a kind, in order, just before kopf processes it.

Each kind has one: it keeps :class:`.References` (and the start-up
listing) current, runs a deletion's pipeline -- kopf calls no handler for
an object already gone -- and re-runs the objects an event concerns.

They are not ``kopf.on.event`` handlers because of what kopf does around
each call of one: a cause with every keyword argument a handler may ask
for, the invocation contexts, a log line. For an observer whose own work is
usually a dictionary update, that bookkeeping was nearly all the cost, paid
for every event of every object: about a tenth of the operator's CPU in a
burst of new Agents and in a restart (``docs/performance.md``).
:func:`.kopf_compat.observed_events` calls them directly instead, from the
object's kopf worker: the same events, in the same order, each one before
kopf runs the object's create, update or resume handler for it. An
observer that raises is logged, and the event still goes to kopf.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import kopf

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.memo import OperatorMemo

#: Called with the raw watch event (``type`` is ``None`` for an object of
#: kopf's first listing) and the operator's memo.
Observer = Callable[[kopf.RawEvent, OperatorMemo], Awaitable[None]]

#: The observer of each kind, registered by :func:`on_event`.
OBSERVERS: dict[Kind, Observer] = {}


def on_event(kind: Kind) -> Callable[[Observer], Observer]:
    """Register the observer of ``kind``'s watch events (one per kind)."""

    def register(observer: Observer) -> Observer:
        if kind in OBSERVERS:
            raise ValueError(f"{kind.value} already has an observer: {OBSERVERS[kind]!r}")
        OBSERVERS[kind] = observer
        return observer

    return register
