"""The start-up sweep compares with the uids of kopf's own first listing, not a second LIST."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from kopf._cogs.clients import watching

from stigmer_operator.first_listing import FirstListings
from stigmer_operator.kopf_compat import recorded_first_listings

GROUP = "agentic.stigmer.ai"


def listed(uid: str) -> dict[str, Any]:
    return {"type": None, "object": {"metadata": {"uid": uid, "name": uid}}}


def modified(uid: str) -> dict[str, Any]:
    return {"type": "MODIFIED", "object": {"metadata": {"uid": uid, "name": uid}}}


STREAMS: dict[tuple[str, str | None], list[Any]] = {
    ("agents", "team-a"): [listed("a1"), listed("a2"), watching.Bookmark.LISTED, modified("a3")],
    ("agentinstances", "team-a"): [listed("i1"), watching.Bookmark.LISTED],
    ("namespaces", None): [listed("ns1"), watching.Bookmark.LISTED],
}


async def kopf_watch(
    *, settings: Any, resource: Any, namespace: Any, **_: Any
) -> AsyncIterator[Any]:
    for item in STREAMS[(resource.plural, namespace)]:
        yield item


async def read_all(plural: str, namespace: str | None, group: str = GROUP) -> list[Any]:
    resource = SimpleNamespace(plural=plural, group=group)
    stream = watching.infinite_watch(settings=None, resource=resource, namespace=namespace)  # type: ignore[arg-type]
    return [item async for item in stream]


def test_the_uids_of_kopfs_first_listing_are_handed_over_once_every_watch_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watching, "infinite_watch", kopf_watch)
    listings = FirstListings([("agents", "team-a"), ("agentinstances", "team-a")])
    with recorded_first_listings(listings, GROUP):
        passed = asyncio.run(read_all("agents", "team-a"))
        assert passed == STREAMS[("agents", "team-a")]  # every event passes, in order
        assert listings.take(timeout=0.01) is None  # the instances are not listed yet
        assert listings.take(timeout=0.01) is None  # nor recorded any more: the sweep lists

    listings = FirstListings([("agents", "team-a"), ("agentinstances", "team-a")])
    with recorded_first_listings(listings, GROUP):
        asyncio.run(read_all("agents", "team-a"))
        asyncio.run(read_all("agentinstances", "team-a"))
        asyncio.run(read_all("namespaces", None, group=""))  # another group's watch: untouched
    # a3 came after the listing: the watch delivers it, the sweep does not need it
    assert listings.take(timeout=0.01) == {"agents": {"a1", "a2"}, "agentinstances": {"i1"}}
    assert listings.take(timeout=0.01) is None  # handed over once
    assert watching.infinite_watch is kopf_watch  # kopf's own again outside


def test_the_sweep_waits_for_a_listing_still_under_way() -> None:
    listings = FirstListings([("agents", None)])

    async def kopf_lists_later() -> dict[str, set[str]] | None:
        waiting = asyncio.create_task(asyncio.to_thread(listings.take, 5.0))
        await asyncio.sleep(0.05)
        listings.add(("agents", None), "a1")
        listings.complete(("agents", None))
        return await waiting

    assert asyncio.run(kopf_lists_later()) == {"agents": {"a1"}}
