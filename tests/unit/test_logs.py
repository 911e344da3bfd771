"""Log lines name the object kopf is working on, in both formats, and nothing else of kopf's."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import kopf
import pytest

from stigmer_operator import logs
from stigmer_operator.settings import LogFormat

AGENT = {
    "apiVersion": "agentic.stigmer.ai/v1",
    "kind": "Agent",
    "metadata": {"name": "support-bot", "namespace": "team-a", "uid": "u-1"},
}


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """``logs.configure`` replaces the root handlers; give pytest's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit(log_format: LogFormat, capsys: pytest.CaptureFixture[str]) -> list[str]:
    logs.configure(log_format, "INFO")
    kopf_logger = kopf.ObjectLogger(body=kopf.Body(AGENT), settings=kopf.OperatorSettings())
    kopf_logger.info("Handler %r succeeded.", "agent_created")
    logging.getLogger("stigmer_operator.test").warning("no object %d", 1)
    return capsys.readouterr().err.splitlines()


def test_text_lines_put_the_object_in_front(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _emit(LogFormat.TEXT, capsys)
    assert first.endswith(
        "kopf.objects: [Agent team-a/support-bot] Handler 'agent_created' succeeded."
    )
    assert second.endswith("stigmer_operator.test: no object 1")
    assert "OperatorSettings" not in first


def test_json_lines_carry_the_object_not_kopfs_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = (json.loads(line) for line in _emit(LogFormat.JSON, capsys))
    assert first["message"] == "Handler 'agent_created' succeeded."
    assert first["object"] == {
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "Agent",
        "name": "support-bot",
        "namespace": "team-a",
        "uid": "u-1",
    }
    assert set(first) == {"time", "level", "logger", "message", "object"}
    assert (second["level"], second["message"]) == ("WARNING", "no object 1")
    assert "object" not in second
