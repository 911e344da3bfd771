"""Each kind's watch-event observer is registered once (handlers/observers.py)."""

from __future__ import annotations

import pytest

import stigmer_operator.handlers  # noqa: F401  (registers the observers)
from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers import agent, agent_instance
from stigmer_operator.handlers.observers import OBSERVERS, on_event


def test_every_kind_has_its_observer() -> None:
    """Without one, a kind's deletions would never run their pipeline."""
    expected = {Kind.AGENT: agent.agent_event, Kind.AGENT_INSTANCE: agent_instance.instance_event}
    registered = dict(OBSERVERS)
    assert registered == expected


def test_a_second_observer_for_a_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="Agent already has one"):
        on_event(Kind.AGENT)(agent_instance.instance_event)
    assert OBSERVERS[Kind.AGENT] is agent.agent_event
