"""Turn store contents into JSON or YAML documents for people and scripts.

Protobuf messages are rendered with :func:`google.protobuf.json_format.MessageToDict`
so the field names are the camelCase names a Kubernetes user already knows
from the custom resources (``displayName``, ``mcpServers``), and enums print
as their names. Everything else the CLI prints (stats, dumps) uses the same
camelCase convention, so one ``jq`` habit works on every command.

Lists print as a table by default, like ``kubectl get``: a few columns a
person scans, picked from the same camelCase documents ``-o json`` prints
in full. A version of a resource can also print as a manifest -- the
custom resource a user would ``kubectl apply`` -- so rolling back is a
commit of that file to Git (the operator itself never writes a spec).
"""

from __future__ import annotations

import difflib
import enum
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message

from stigmer_operator.api.kinds import API_VERSION, Kind, Resource
from stigmer_operator.store.protocol import StoreStats

#: A document to print, or text printed as it is (a diff).
Document = dict[str, Any] | list[Any] | str


class OutputFormat(enum.StrEnum):
    """How the CLI prints a document."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: a header and how to read its cell from a row document."""

    header: str
    cell: Callable[[dict[str, Any]], object]


def field(*path: str) -> Callable[[dict[str, Any]], object]:
    """A cell reading a nested field (empty when absent)."""

    def read(row: dict[str, Any]) -> object:
        value: Any = row
        for name in path:
            value = value.get(name, "") if isinstance(value, dict) else ""
        return value

    return read


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as left-aligned columns under upper-case headers (``kubectl get`` style)."""
    cells = [[column.header for column in columns]]
    cells += [[_cell(column.cell(row)) for column in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    lines = [
        "   ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value == "" or value is None:
        return "<none>"
    return str(value)


def manifest(resource: Resource) -> dict[str, Any]:
    """The resource as the custom resource a user would apply: spec, name, namespace."""
    from stigmer_operator.api.convert import spec_from_proto, spec_to_cr  # pydantic: on demand

    meta = resource.metadata
    return {
        "apiVersion": API_VERSION,
        "kind": Kind.of(resource).value,
        "metadata": {"name": meta.name, "namespace": meta.namespace},
        "spec": spec_to_cr(spec_from_proto(resource.spec)),
    }


def diff(older: dict[str, Any], newer: dict[str, Any], older_name: str, newer_name: str) -> str:
    """A unified diff of two documents as YAML ("" when they are equal)."""
    lines = difflib.unified_diff(
        _yaml(older).splitlines(keepends=True),
        _yaml(newer).splitlines(keepends=True),
        fromfile=older_name,
        tofile=newer_name,
    )
    return "".join(lines)


def _yaml(document: Document) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


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


def render(
    document: Document, output: OutputFormat, columns: Sequence[Column] | None = None
) -> str:
    """The document as text ending in a newline (a table needs ``columns`` and a list)."""
    if isinstance(document, str):
        return document
    if output is OutputFormat.TABLE and columns is not None and isinstance(document, list):
        return table(document, columns)
    if output is OutputFormat.YAML:
        return _yaml(document)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
