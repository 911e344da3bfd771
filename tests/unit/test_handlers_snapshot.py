"""Sync handlers iterate a copy of a kopf index value, never the live store."""

from __future__ import annotations

from typing import Any

from stigmer_operator.handlers.agent import snapshot


def test_an_index_value_changing_during_the_loop_does_not_break_it() -> None:
    live: dict[str, str] = {"a": "instance-a", "b": "instance-b"}
    index: Any = {("team-a", "support-bot"): live.values()}  # what kopf's Store iterates
    seen = []
    for value in snapshot(index, ("team-a", "support-bot")):
        live[f"new-{value}"] = value  # kopf indexing another event meanwhile
        seen.append(value)
    assert seen == ["instance-a", "instance-b"]
    assert snapshot(index, ("team-a", "nobody")) == []
