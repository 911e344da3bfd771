"""Turn store contents into JSON or YAML documents for people and scripts.

Protobuf messages are rendered with :func:`google.protobuf.json_format.MessageToDict`
so the field names are the camelCase names a Kubernetes user already knows
from the custom resources (``displayName``, ``mcpServers``), and enums print
as their names. Everything else the CLI prints (stats, dumps) uses the same
camelCase convention, so one ``jq`` habit works on every command.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message

from stigmer_operator.store.protocol import StoreStats

Document = dict[str, Any] | list[Any]


class OutputFormat(enum.StrEnum):
    """How the CLI prints a document."""

    JSON = "json"
    YAML = "yaml"


def message(value: Message) -> dict[str, Any]:
    """One protobuf message as a camelCase dict."""
    return json_format.MessageToDict(value)


def messages(values: Iterable[Message]) -> list[dict[str, Any]]:
    return [message(value) for value in values]


def stats(value: StoreStats) -> dict[str, Any]:
    return {
        "agents": value.agents,
        "agentInstances": value.agent_instances,
        "historyEntries": value.history_entries,
        "changeLogEntries": value.change_log_entries,
        "lastSequence": value.last_sequence,
        "bytesOnDisk": value.bytes_on_disk,
    }


def render(document: Document, output: OutputFormat) -> str:
    """The document as text ending in a newline."""
    if output is OutputFormat.YAML:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
