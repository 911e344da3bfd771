"""The watch backlog: at most ``limit`` objects in kopf's hands, the rest parked small."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stigmer_operator.backlog import Backlog, RawEvent, gated


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def event(name: str, version: int, kind: str | None = "ADDED", **spec: Any) -> RawEvent:
    return {
        "type": kind,
        "object": {
            "metadata": {
                "uid": f"uid-{name}",
                "name": name,
                "namespace": "team-a",
                "resourceVersion": str(version),
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": spec,
        },
    }


def names(events: list[RawEvent | None]) -> list[str | None]:
    return [None if e is None else e["object"]["metadata"]["name"] for e in events]


def test_objects_beyond_the_limit_are_parked_and_go_in_first_come_first_served() -> None:
    backlog = Backlog(limit=2, echo_timeout=30)
    offered = [backlog.offer(event(n, i)) for i, n in enumerate("abcd", start=1)]
    assert names(offered) == ["a", "b", None, None]
    assert (backlog.admitted, backlog.parked) == (2, 2)
    assert backlog.take() is None  # no room yet

    backlog.processed(event("a", 1), echo=None)
    assert names([backlog.take(), backlog.take()]) == ["c", None]
    backlog.processed(event("b", 2), echo=None)
    assert names([backlog.take()]) == ["d"]
    assert backlog.parked_bytes == 0


def test_a_new_object_waits_behind_the_parked_ones_when_a_slot_frees() -> None:
    backlog = Backlog(limit=1, echo_timeout=30)
    backlog.offer(event("a", 1))
    assert backlog.offer(event("b", 2)) is None
    backlog.processed(event("a", 1), echo=None)  # a slot is free; b is not taken yet
    assert backlog.offer(event("c", 3)) is None
    assert names([backlog.take(), backlog.take()]) == ["b", None]


def test_a_parked_object_keeps_its_newest_body_its_first_type_and_no_managed_fields() -> None:
    backlog = Backlog(limit=1, echo_timeout=30)
    backlog.offer(event("a", 1))
    assert backlog.offer(event("b", 2, kind=None, model="old")) is None
    assert backlog.offer(event("b", 3, kind="MODIFIED", model="new")) is None
    assert backlog.parked == 1

    backlog.processed(event("a", 1), echo=None)
    taken = backlog.take()
    assert taken is not None
    assert taken["type"] is None  # first seen by the listing: kopf resumes it
    assert taken["object"]["spec"] == {"model": "new"}
    assert taken["object"]["metadata"]["resourceVersion"] == "3"
    assert "managedFields" not in taken["object"]["metadata"]


def test_a_deletion_while_parked_is_what_kopf_gets() -> None:
    backlog = Backlog(limit=1, echo_timeout=30)
    backlog.offer(event("a", 1))
    backlog.offer(event("b", 2))
    backlog.offer(event("b", 3, kind="DELETED"))
    backlog.processed(event("a", 1), echo=None)
    taken = backlog.take()
    assert taken is not None and taken["type"] == "DELETED"


def test_an_admitted_objects_events_pass_even_when_full() -> None:
    backlog = Backlog(limit=1, echo_timeout=30)
    backlog.offer(event("a", 1))
    backlog.offer(event("b", 2))
    assert names([backlog.offer(event("a", 3, kind="MODIFIED"))]) == ["a"]
    backlog.processed(event("a", 1), echo=None)
    assert backlog.take() is None  # a's newer event is not processed yet
    backlog.processed(event("a", 3), echo=None)
    assert names([backlog.take()]) == ["b"]


def test_an_object_stays_in_until_the_echo_of_kopfs_patch_is_processed() -> None:
    clock = Clock()
    backlog = Backlog(limit=1, echo_timeout=30, clock=clock)
    backlog.offer(event("a", 1))
    backlog.offer(event("b", 2))
    backlog.processed(event("a", 1), echo="5")
    assert backlog.take() is None  # kopf waits for "5": it must be able to arrive

    assert names([backlog.offer(event("a", 5, kind="MODIFIED"))]) == ["a"]
    assert backlog.take() is None
    backlog.processed(event("a", 5), echo=None)
    assert names([backlog.take()]) == ["b"]


def test_an_echo_that_never_comes_frees_the_slot_after_the_timeout() -> None:
    clock = Clock()
    backlog = Backlog(limit=1, echo_timeout=30, clock=clock)
    backlog.offer(event("a", 1))
    backlog.offer(event("b", 2))
    backlog.processed(event("a", 1), echo="5")
    assert backlog.next_deadline() == 30
    clock.now = 29.9
    assert backlog.take() is None
    clock.now = 30
    assert names([backlog.take()]) == ["b"]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Backlog(limit=0, echo_timeout=30)


class Kopf:
    """Consumes ``gated`` the way kopf's multiplexer and workers do, one event at a time."""

    def __init__(self, backlog: Backlog, wake: asyncio.Event) -> None:
        self.backlog, self.wake = backlog, wake
        self.seen: list[str] = []

    async def consume(self, stream: AsyncIterator[Any], count: int) -> None:
        async for item in stream:
            if not isinstance(item, dict):
                self.seen.append(str(item))
                continue
            self.seen.append(item["object"]["metadata"]["name"])
            # The worker runs later, outside the stream's loop.
            asyncio.get_running_loop().call_soon(self.process, item)
            if len(self.seen) == count:
                return

    def process(self, item: RawEvent) -> None:
        self.backlog.processed(item, echo=None)
        self.wake.set()


def test_gated_lets_parked_objects_in_as_kopf_processes_others() -> None:
    asyncio.run(gated_lets_parked_objects_in())


async def gated_lets_parked_objects_in() -> None:
    async def watch() -> AsyncIterator[Any]:
        yield "LISTED"
        for i, name in enumerate("abcdef", start=1):
            yield event(name, i)
        await asyncio.sleep(3600)  # a watch stays open

    backlog, wake = Backlog(limit=2, echo_timeout=30), asyncio.Event()
    kopf = Kopf(backlog, wake)
    stream = gated(watch(), backlog, wake)
    await asyncio.wait_for(kopf.consume(stream, count=7), timeout=5)
    await stream.aclose()  # type: ignore[attr-defined]
    assert kopf.seen == ["LISTED", "a", "b", "c", "d", "e", "f"]
    assert backlog.admitted <= 2


def test_gated_hands_on_the_watchs_error() -> None:
    asyncio.run(gated_hands_on_the_error())


async def gated_hands_on_the_error() -> None:
    async def watch() -> AsyncIterator[Any]:
        yield event("a", 1)
        raise RuntimeError("watch broke")

    backlog, wake = Backlog(limit=2, echo_timeout=30), asyncio.Event()
    with pytest.raises(RuntimeError, match="watch broke"):
        async for _ in gated(watch(), backlog, wake):
            pass


def test_events_arriving_while_kopf_does_not_ask_are_parked_not_queued_whole() -> None:
    asyncio.run(events_arriving_while_kopf_is_busy())


async def events_arriving_while_kopf_is_busy() -> None:
    async def listing() -> AsyncIterator[Any]:
        for i in range(1, 101):
            yield event(f"o{i:03d}", i)
        await asyncio.sleep(3600)

    backlog, wake = Backlog(limit=2, echo_timeout=30), asyncio.Event()
    stream = gated(listing(), backlog, wake)
    first = await anext(stream)  # kopf takes one event, then its workers are all busy
    for _ in range(20):  # ...while the listing goes on arriving
        await asyncio.sleep(0)
    assert first["object"]["metadata"]["name"] == "o001"
    assert (backlog.admitted, backlog.parked) == (2, 98)
    assert 0 < backlog.parked_bytes < 98 * 200  # compressed, without managedFields
    await stream.aclose()  # type: ignore[attr-defined]


def test_gated_stops_when_cancelled_as_a_worker_finishes() -> None:
    asyncio.run(cancelled_as_a_worker_finishes())


async def cancelled_as_a_worker_finishes() -> None:
    """The operator stops while kopf awaits an echo: its watcher must end, not watch on."""

    async def watch() -> AsyncIterator[Any]:
        yield event("a", 1)
        await asyncio.sleep(3600)

    backlog, wake = Backlog(limit=1, echo_timeout=30), asyncio.Event()

    async def kopf_watcher() -> None:
        async for item in gated(watch(), backlog, wake):
            backlog.processed(item, echo="5")  # kopf patched it and awaits the echo

    watcher = asyncio.create_task(kopf_watcher())
    for _ in range(10):  # the stream now sleeps until a wake or the echo's deadline
        await asyncio.sleep(0)
    wake.set()  # a worker finishes...
    watcher.cancel()  # ...in the same loop cycle as the operator stops its watchers
    done, _ = await asyncio.wait({watcher}, timeout=1)
    assert watcher in done, "the watcher went on after it was cancelled"
    assert watcher.cancelled()
