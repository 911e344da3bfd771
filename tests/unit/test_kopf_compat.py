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
