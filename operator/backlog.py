"""Watch events waiting for a worker, parked small: memory that does not follow the backlog.

kopf reads each watch stream at full speed and queues every event, whole,
for its object's worker. Its ``worker_limit`` bounds the workers that run,
not the queue: 10,000 Agents applied at once (a GitOps sync of a big
folder), or 20,000 objects listed at start, were as many parsed bodies
held at once -- about 11 KB each as Python objects -- and the chart's
512 MiB pod was OOM-killed in a crash loop (docs/performance.md).

Holding the stream back instead (not reading it) would stall the whole
kind: after its own patch, kopf's worker waits up to ``consistency_timeout``
for that patch's echo, and the echo is in the same stream, behind the
objects that are held back.

So the stream is still read at once, but only ``limit`` objects of a watch
are *admitted* -- handed to kopf: queued for a worker or held by one. An
admitted object's further events go straight on; so does an object's
event while kopf waits for the echo of its own patch. The events of other
objects are *parked*: the newest body per object, compressed JSON without
``managedFields`` (about 1 KB instead of 11), in the order the objects
first arrived. An object leaves when kopf has processed the last event it
was given and awaits no echo (or waited ``echo_timeout`` in vain); then
the object parked longest goes in. Parking also coalesces: an object
modified ten times while parked is processed once, at its newest state.

:class:`Backlog` is the bookkeeping (synchronous, one per watch);
:func:`gated` runs it over kopf's event stream. :mod:`.kopf_compat` puts
both between kopf's watch and its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

#: A watch event as kopf passes it: ``{"type": ..., "object": {...}}``.
RawEvent = dict[str, Any]
Marker = TypeVar("Marker")

_DELETED = "DELETED"


def uid_of(event: RawEvent) -> str:
    """The object an event is about (kopf keys its workers the same way)."""
    metadata = event["object"].get("metadata", {})
    return str(metadata.get("uid") or f"{metadata.get('namespace')}/{metadata.get('name')}")


def version_of(event: RawEvent) -> str | None:
    version = event["object"].get("metadata", {}).get("resourceVersion")
    return None if version is None else str(version)


def slim(event: RawEvent) -> RawEvent:
    """The event without ``managedFields``, which neither kopf nor the operator reads."""
    event["object"].get("metadata", {}).pop("managedFields", None)
    return event


def _pack(event: RawEvent) -> bytes:
    return zlib.compress(json.dumps(event, separators=(",", ":")).encode(), 1)


def _unpack(packed: bytes) -> RawEvent:
    event: RawEvent = json.loads(zlib.decompress(packed))
    return event


@dataclass
class _Admitted:
    """One object in kopf's hands."""

    yielded: str | None
    processed: str | None = None
    echo: str | None = None
    echo_deadline: float = 0.0

    def done(self, now: float) -> bool:
        caught_up = self.processed == self.yielded
        return caught_up and (self.echo is None or now >= self.echo_deadline)


@dataclass
class _Parked:
    type: str | None
    packed: bytes


class Backlog:
    """Which objects of one watch kopf holds, and the others' newest events, parked."""

    def __init__(
        self, limit: int, echo_timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError(f"a backlog admits at least one object, not {limit}")
        self.limit = limit
        self.echo_timeout = echo_timeout
        self._clock = clock
        self._admitted: dict[str, _Admitted] = {}
        #: Admitted objects whose last processed event left kopf awaiting an
        #: echo: only these can become done without another event.
        self._awaiting_echo: set[str] = set()
        self._parked: OrderedDict[str, _Parked] = OrderedDict()
        self.parked_bytes = 0
        #: Objects parked since the start (an object parked again counts again).
        self.parked_total = 0

    @property
    def admitted(self) -> int:
        return len(self._admitted)

    @property
    def parked(self) -> int:
        return len(self._parked)

    def offer(self, event: RawEvent) -> RawEvent | None:
        """An event from the watch: returned to go on to kopf now, or parked (None)."""
        uid = uid_of(slim(event))
        admitted = self._admitted.get(uid)
        if admitted is not None:
            admitted.yielded = version_of(event)
            if admitted.echo is not None and admitted.echo == admitted.yielded:
                admitted.echo = None
            return event
        if not self._parked and len(self._admitted) < self.limit:
            self._admit(uid, event)
            return event
        self._park(uid, event)
        return None

    def processed(self, event: RawEvent, echo: str | None) -> None:
        """kopf processed ``event``; ``echo`` is its own patch's version it now waits for."""
        uid = uid_of(event)
        admitted = self._admitted.get(uid)
        if admitted is None:
            return
        admitted.processed = version_of(event)
        admitted.echo = echo
        admitted.echo_deadline = self._clock() + self.echo_timeout
        if echo is not None:
            self._awaiting_echo.add(uid)
            return
        self._awaiting_echo.discard(uid)
        if admitted.done(self._clock()):
            self._release(uid)

    def take(self) -> RawEvent | None:
        """The longest-parked event, now admitted, if an object has left."""
        self._release_done()
        if not self._parked or len(self._admitted) >= self.limit:
            return None
        uid, parked = self._parked.popitem(last=False)
        self.parked_bytes -= len(parked.packed)
        event = _unpack(parked.packed)
        event["type"] = parked.type
        self._admit(uid, event)
        return event

    def has_room_for_parked(self) -> bool:
        """Whether :meth:`take` would return an event now."""
        self._release_done()
        return bool(self._parked) and len(self._admitted) < self.limit

    def next_deadline(self) -> float | None:
        """When an object awaiting its echo will be let go anyway (if any is)."""
        deadlines = [self._admitted[uid].echo_deadline for uid in self._awaiting_echo]
        return min(deadlines, default=None)

    def _admit(self, uid: str, event: RawEvent) -> None:
        self._admitted[uid] = _Admitted(yielded=version_of(event))

    def _park(self, uid: str, event: RawEvent) -> None:
        """Keep the newest body; the first event's type, unless the object is gone."""
        earlier = self._parked.get(uid)
        kind = event.get("type")
        if earlier is not None:
            self.parked_bytes -= len(earlier.packed)
            if kind != _DELETED:
                kind = earlier.type
        packed = _pack({"object": event["object"]})
        self.parked_bytes += len(packed)
        if earlier is None:
            self._parked[uid] = _Parked(type=kind, packed=packed)
            self.parked_total += 1
        else:
            earlier.type, earlier.packed = kind, packed

    def _release_done(self) -> None:
        now = self._clock()
        for uid in [uid for uid in self._awaiting_echo if self._admitted[uid].done(now)]:
            self._release(uid)

    def _release(self, uid: str) -> None:
        del self._admitted[uid]
        self._awaiting_echo.discard(uid)


async def gated(
    stream: AsyncIterator[Marker | RawEvent],
    backlog: Backlog,
    wake: asyncio.Event,
) -> AsyncIterator[Marker | RawEvent]:
    """``stream`` through ``backlog``: events of admitted objects, parked ones as room frees.

    The stream is read by a task of its own, which offers each event to the
    backlog the moment it arrives: what waits for kopf to ask for more is
    either parked (compressed) or an admitted object's event. Waiting whole
    would be the very queue the backlog exists to avoid: kopf stops asking
    while all its workers are busy, and at a restart its listing of 20,000
    objects arrives in seconds.

    ``wake`` is set whenever kopf has processed an event (room may have
    freed); the reader sets it too, on each arrival. Anything that is not a
    dict (kopf's bookmarks) passes as is, in order with the admitted events.
    """
    ready: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()

    async def read() -> None:
        try:
            async for item in stream:
                if not isinstance(item, dict):
                    ready.put_nowait((True, item))
                elif (passed := backlog.offer(item)) is not None:
                    ready.put_nowait((True, passed))
                wake.set()
        except BaseException as error:  # handed to the consumer, which re-raises it
            ready.put_nowait((False, error))
        else:
            ready.put_nowait((False, None))
        wake.set()

    reader = asyncio.create_task(read(), name="backlog reader")
    try:
        while True:
            while (admitted := backlog.take()) is not None:
                yield admitted
            while not ready.empty():
                ok, item = ready.get_nowait()
                if not ok:
                    if item is None:
                        return
                    raise item
                yield item
            wake.clear()
            if ready.empty() and not backlog.has_room_for_parked():
                await _sleep_until(wake, backlog.next_deadline())
    finally:
        reader.cancel()
        # Not ``await reader``: a cancellation of this task while it waits
        # must not be taken for the reader's own (and swallowed).
        await asyncio.wait({reader})


async def _sleep_until(wake: asyncio.Event, deadline: float | None) -> None:
    """Until ``wake`` is set, or past ``deadline`` (an echo wait running out).

    ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11, a
    ``wait_for`` cancelled in the loop cycle its awaitable completes in
    returns instead of raising, and the cancellation is lost. Here that is
    the operator stopping as a worker finishes (which sets ``wake``): kopf's
    watcher read on, and kopf waited for it forever.
    """
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic()) + 0.01
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await wake.wait()
