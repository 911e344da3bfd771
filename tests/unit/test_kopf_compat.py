"""kopf's private modules as the operator uses them: namespace matching, wrapped workers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from stigmer_operator.kopf_compat import namespace_matches


@pytest.mark.parametrize(
    ("namespace", "pattern", "watched"),
    [
        ("team-a", "team-a", True),
        ("team-b", "team-a", False),
        ("team-a", "team-*", True),
        ("platform", "team-*", False),
        ("team-pr-7", "team-*, !*-pr-*", False),
        ("team-live", "team-*, !*-pr-*", True),
        ("anything", "!*-pr-*", True),  # a leading exclusion implies "*"
        ("app-pr-7", "!*-pr-*", False),
        ("team-pr-123", "team-*, !*-pr-*, *pr-123", True),  # re-included
        ("other-pr-123", "team-*, !*-pr-*, *pr-123", False),  # never included
        ("team-a1", "team-??", True),
        ("team-a12", "team-??", False),
    ],
)
def test_namespace_patterns_mean_what_kopf_watches(
    namespace: str, pattern: str, watched: bool
) -> None:
    assert namespace_matches(namespace, pattern) is watched


def test_the_backlog_wraps_kopfs_watch_and_processor_only_while_open() -> None:
    """kopf looks both up when a watch starts: wrapped inside, its own again outside."""
    from kopf._cogs.clients import watching
    from kopf._core.reactor import processing

    from stigmer_operator.kopf_compat import parked_backlog

    watch, process = watching.infinite_watch, processing.process_resource_event
    with parked_backlog(8, "agentic.stigmer.ai"):
        assert watching.infinite_watch is not watch
        assert processing.process_resource_event is not process
    assert watching.infinite_watch is watch
    assert processing.process_resource_event is process


def test_observers_see_each_event_before_kopf_and_a_failing_one_does_not_stop_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What kopf's workers call for an event: the observer of its kind, then kopf."""
    from kopf._core.reactor import processing

    from stigmer_operator.kopf_compat import observed_events

    calls: list[tuple[str, object]] = []

    async def kopf_processing(**kw: Any) -> str:
        calls.append(("kopf", kw["raw_event"]["type"]))
        return "echo"

    async def observe(event: Any, memo: Any) -> None:
        calls.append(("observer", (event["type"], memo)))
        if event["type"] == "DELETED":
            raise RuntimeError("boom")

    monkeypatch.setattr(processing, "process_resource_event", kopf_processing)
    agents = SimpleNamespace(group="agentic.stigmer.ai", plural="agents")
    namespaces = SimpleNamespace(group="", plural="namespaces")
    memo = object()

    def event(kind: object, type_: str | None) -> dict[str, Any]:
        raw = {"type": type_, "object": {"metadata": {"namespace": "a", "name": "n"}}}
        return {"resource": kind, "raw_event": raw, "memobase": memo}

    with observed_events({("agentic.stigmer.ai", "agents"): observe}):
        wrapped = processing.process_resource_event
        echoes = [
            asyncio.run(wrapped(**event(agents, None))),
            asyncio.run(wrapped(**event(namespaces, "ADDED"))),
            asyncio.run(wrapped(**event(agents, "DELETED"))),
        ]
    assert processing.process_resource_event is kopf_processing

    assert echoes == ["echo", "echo", "echo"]
    assert calls == [
        ("observer", (None, memo)),
        ("kopf", None),
        ("kopf", "ADDED"),
        ("observer", ("DELETED", memo)),
        ("kopf", "DELETED"),
    ]
    assert "observing a watch event of agents a/n failed" in caplog.text
    assert "boom" in caplog.text


def _processing(memories: Any, raw: dict[str, Any], memo: object) -> dict[str, Any]:
    """The keyword arguments kopf's worker passes for one event of an Agent."""
    import kopf

    agents = SimpleNamespace(group="agentic.stigmer.ai", plural="agents")
    return {
        "resource": agents,
        "raw_event": raw,
        "memobase": memo,
        "memories": memories,
        "settings": kopf.OperatorSettings(),
    }


#: kopf's diff base, as its default storage keeps it: the object was handled before.
HANDLED = {"kopf.zalando.org/last-handled-configuration": '{"spec": {}}'}


def _agent(type_: str | None, uid: str = "u1", **metadata: Any) -> dict[str, Any]:
    obj = {"metadata": {"namespace": "a", "name": "n", "uid": uid, "annotations": HANDLED}}
    obj["metadata"].update(metadata)
    return {"type": type_, "object": obj}


def test_an_object_is_resumed_when_kopf_would_resume_it_between_its_observer_and_kopf(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """kopf's rule: listed, handled before, not fully handled by this process, not going."""
    import threading

    import kopf
    from kopf._core.reactor import inventory, processing

    from stigmer_operator.kopf_compat import observed_events

    calls: list[tuple[str, str | None, str]] = []
    memories = inventory.ResourceMemories()
    memo = kopf.Memo()

    async def kopf_processing(**kw: Any) -> None:
        calls.append(
            ("kopf", kw["raw_event"]["type"], kw["raw_event"]["object"]["metadata"]["uid"])
        )
        memory = await kw["memories"].recall(kw["raw_event"]["object"])
        memory.fully_handled_once = kw["raw_event"]["object"]["metadata"]["uid"] != "fails"

    async def observe(event: Any, memo: Any) -> None:
        calls.append(("observer", event["type"], event["object"]["metadata"]["uid"]))

    def resume(body: Any, given: object) -> None:
        assert given is memo
        assert threading.current_thread() is not threading.main_thread()
        calls.append(("resume", None, body["metadata"]["uid"]))
        if body["metadata"]["uid"] == "fails":
            raise RuntimeError("boom")

    monkeypatch.setattr(processing, "process_resource_event", kopf_processing)
    kind = ("agentic.stigmer.ai", "agents")
    with observed_events({kind: observe}, {kind: resume}):
        wrapped = processing.process_resource_event
        for raw in (
            _agent(None),  # kopf's first listing: resumed
            _agent("MODIFIED"),  # a watch event: no
            _agent(None),  # a re-listing of an object kopf handled: no
            _agent("ADDED", uid="u2"),  # first seen by the watch: created, not resumed
            _agent(None, uid="u2"),
            _agent(None, uid="u3", deletionTimestamp="2026-12-03T18:00:00Z"),  # going: no
            _agent(None, uid="u4", annotations={}),  # never handled: kopf creates it, no resume
            _agent(None, uid="fails"),  # logged, and kopf still processes it
            _agent(None, uid="fails"),  # not fully handled yet: resumed again
        ):
            asyncio.run(wrapped(**_processing(memories, raw, memo)))

    resumed = [uid for who, _, uid in calls if who == "resume"]
    assert resumed == ["u1", "fails", "fails"]
    assert calls[:3] == [("observer", None, "u1"), ("resume", None, "u1"), ("kopf", None, "u1")]
    assert calls[-3:] == [
        ("observer", None, "fails"),
        ("resume", None, "fails"),
        ("kopf", None, "fails"),
    ]
    assert "resuming agents a/n failed" in caplog.text
    assert "boom" in caplog.text


def test_a_cancelled_worker_waits_for_its_resume_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """As kopf waits for its handlers: nothing still writes when the operator closes its store."""
    import threading

    import kopf
    from kopf._core.reactor import inventory, processing

    from stigmer_operator.kopf_compat import observed_events

    started, release = threading.Event(), threading.Event()
    ended: list[str] = []

    async def kopf_processing(**kw: Any) -> None:
        ended.append("kopf")

    def resume(body: Any, memo: object) -> None:
        started.set()
        release.wait(10)
        ended.append("resume")

    async def cancel_while_resuming() -> None:
        wrapped = processing.process_resource_event
        task = asyncio.create_task(
            wrapped(**_processing(inventory.ResourceMemories(), _agent(None), kopf.Memo()))
        )
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        await asyncio.sleep(0.2)
        assert not task.done(), "the worker ended while its resume still ran"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    monkeypatch.setattr(processing, "process_resource_event", kopf_processing)
    kind = ("agentic.stigmer.ai", "agents")
    with observed_events({}, {kind: resume}):
        asyncio.run(cancel_while_resuming())
    assert ended == ["resume"]
