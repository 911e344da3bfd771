"""The one place that reaches into kopf's private modules.

kopf is pinned (pyproject.toml), but its ``_cogs`` package is not public API
and may change in any release. Everything the operator needs from it goes
through a function here, so a kopf upgrade breaks this module and its test
(``tests/unit/test_kopf_compat.py``) rather than code far away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Executor
from typing import Any

import kopf
from kopf._cogs.structs.references import NamespaceName, match_namespace

from stigmer_operator import metrics
from stigmer_operator.backlog import Backlog, gated
from stigmer_operator.first_listing import FirstListings

logger = logging.getLogger(__name__)

#: Called with a raw watch event and the memo given to ``kopf.operator``.
EventObserver = Callable[[Any, Any], Awaitable[None]]
#: Called on a thread with an object's raw body and the memo given to ``kopf.operator``.
Resume = Callable[[Any, Any], None]


def namespace_matches(namespace: str, pattern: str) -> bool:
    """Whether kopf watches ``namespace`` for one ``--namespace`` pattern.

    The same semantics as kopf's own watching: comma-separated globs
    (``team-*``), exclusions (``!*-pr-*``; a leading exclusion implies
    ``*``), and later inclusions only re-include what an exclusion removed.
    Re-implementing them would risk the sweep deleting what kopf watches.
    """
    return match_namespace(NamespaceName(namespace), pattern)


@contextlib.contextmanager
def parked_backlog(limit: int, group: str) -> Iterator[None]:
    """While open, kopf's watches of ``group``'s kinds go through :mod:`.backlog`.

    kopf offers no hook between its watch stream and its per-object queues,
    so two of its module functions are wrapped: ``infinite_watch`` (the
    stream kopf's multiplexer reads) and ``process_resource_event`` (what
    its workers call for each event; the wrapper tells the backlog an event
    is done and what echo kopf now awaits). kopf looks both up at the time
    it starts a watch, so this must be open before ``kopf.operator`` starts.
    Other groups' watches (Namespaces for globs) pass untouched.
    """
    from kopf._cogs.clients import watching
    from kopf._core.reactor import processing

    gates: dict[tuple[Any, str | None], tuple[Backlog, asyncio.Event]] = {}
    original_watch = watching.infinite_watch
    original_process = processing.process_resource_event

    async def infinite_watch(*, settings: Any, resource: Any, namespace: Any, **kw: Any) -> Any:
        stream = original_watch(settings=settings, resource=resource, namespace=namespace, **kw)
        if resource.group != group:
            async for item in stream:
                yield item
            return
        key = (resource, namespace)
        backlog = Backlog(limit, echo_timeout=settings.persistence.consistency_timeout)
        wake = asyncio.Event()
        gates[key] = backlog, wake
        metrics.BACKLOG.track(resource.plural, backlog)
        try:
            async for passed in gated(stream, backlog, wake):
                yield passed
        finally:
            metrics.BACKLOG.untrack(resource.plural, backlog)
            if gates.get(key, (None,))[0] is backlog:
                del gates[key]

    async def process_resource_event(**kw: Any) -> str | None:
        echo: str | None = None
        try:
            echo = await original_process(**kw)
            return echo
        finally:
            event = kw["raw_event"]
            namespace = event["object"].get("metadata", {}).get("namespace")
            gate = gates.get((kw["resource"], namespace)) or gates.get((kw["resource"], None))
            if gate is not None:
                backlog, wake = gate
                backlog.processed(event, echo)
                wake.set()

    watching.infinite_watch = infinite_watch
    processing.process_resource_event = process_resource_event  # type: ignore[assignment]
    try:
        yield
    finally:
        watching.infinite_watch = original_watch
        processing.process_resource_event = original_process


@contextlib.contextmanager
def recorded_first_listings(listings: FirstListings, group: str) -> Iterator[None]:
    """While open, the uids of kopf's first listing of ``group``'s watches go to ``listings``.

    Recorded as they arrive, ahead of anything that holds events back; the
    end of a listing is kopf's ``LISTED`` bookmark in the stream.
    """
    from kopf._cogs.clients import watching

    original_watch = watching.infinite_watch

    async def infinite_watch(*, settings: Any, resource: Any, namespace: Any, **kw: Any) -> Any:
        stream = original_watch(settings=settings, resource=resource, namespace=namespace, **kw)
        key = (resource.plural, namespace)
        listing = resource.group == group and listings.is_listing(key)
        async for item in stream:
            if listing:
                if isinstance(item, dict):
                    listings.add(key, str(item["object"]["metadata"]["uid"]))
                elif item is watching.Bookmark.LISTED:
                    listings.complete(key)
                    listing = False
            yield item

    watching.infinite_watch = infinite_watch
    try:
        yield
    finally:
        watching.infinite_watch = original_watch


@contextlib.contextmanager
def observed_events(
    observers: Mapping[tuple[str, str], EventObserver],
    resumes: Mapping[tuple[str, str], Resume] | None = None,
) -> Iterator[None]:
    """While open, each watch event of a ``(group, plural)`` goes to its observer and resume first.

    Wraps ``process_resource_event``, which kopf's per-object workers call
    for each event in order. On that worker, before kopf processes the
    event as always:

    * the kind's observer gets the raw event and the operator's memo
      (:mod:`.handlers.observers` says why not ``kopf.on.event``); one that
      raises is logged, as kopf logs a failed event handler, and the event
      still goes to kopf;
    * the kind's resume gets the object's body and the memo, on kopf's
      handler threads, when kopf would run its ``on.resume`` handlers for
      this event (:func:`first_sight`). It runs to its end even when the
      worker is cancelled, as kopf's handlers do, so no resume is still
      writing when the operator closes its store. It handles its own
      failures; one it lets through is logged.

    Open it before :func:`parked_backlog`, whose wrapper must see an event
    done only after its observer and resume.
    """
    from kopf._core.reactor import processing

    original_process = processing.process_resource_event
    resumes = resumes or {}

    async def process_resource_event(**kw: Any) -> str | None:
        resource = kw["resource"]
        kind = (resource.group, resource.plural)
        observer = observers.get(kind)
        if observer is not None:
            await _quietly(
                observer(kw["raw_event"], kw["memobase"]), "observing a watch event of", kw
            )
        resume = resumes.get(kind)
        if resume is not None and await first_sight(kw):
            executor = kw["settings"].execution.executor
            body, memo = kw["raw_event"]["object"], kw["memobase"]
            await _quietly(_to_completion(executor, resume, body, memo), "resuming", kw)
        return await original_process(**kw)

    processing.process_resource_event = process_resource_event  # type: ignore[assignment]
    try:
        yield
    finally:
        processing.process_resource_event = original_process


async def first_sight(kw: Mapping[str, Any]) -> bool:
    """Whether kopf would run ``on.resume`` handlers for this event (``kw``: its processing's).

    kopf's own rule: an object of a listing (its event has no ``type``),
    not being deleted, not fully handled by this process yet, and handled
    before (it carries kopf's diff base: one that does not is *created*,
    never resumed). The object's memory is the one kopf keeps for it,
    recalled as kopf is about to (it creates a new one the same way).
    """
    event = kw["raw_event"]
    body = event["object"]
    if event["type"] is not None or body.get("metadata", {}).get("deletionTimestamp"):
        return False
    memory = await kw["memories"].recall(body, noticed_by_listing=True, memobase=kw["memobase"])
    if not memory.noticed_by_listing or memory.fully_handled_once:
        return False  # a re-listing of an object this process handled: no diff base to parse
    diffbase = kw["settings"].persistence.diffbase_storage
    return diffbase.fetch(body=kopf.Body(body)) is not None


async def _to_completion(executor: Executor, fn: Resume, body: Any, memo: Any) -> None:
    """``fn(body, memo)`` on ``executor``; a cancellation waits for it to end, then applies."""
    future = asyncio.get_running_loop().run_in_executor(executor, fn, body, memo)
    cancelled: asyncio.CancelledError | None = None
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError as error:
            cancelled = error
    if cancelled is not None:
        raise cancelled
    future.result()


async def _quietly(work: Awaitable[None], doing: str, kw: Mapping[str, Any]) -> None:
    """Await ``work``; an exception is logged, and the event still goes to kopf."""
    try:
        await work
    except Exception:
        metadata = kw["raw_event"]["object"].get("metadata", {})
        logger.exception(
            "%s %s %s/%s failed; kopf processes the event anyway",
            doing,
            kw["resource"].plural,
            metadata.get("namespace"),
            metadata.get("name"),
        )
