"""Logging set-up: text for people, JSON lines for log pipelines.

kopf logs through the stdlib ``logging`` module with per-object context in
``extra`` (``k8s_ref``): the JSON formatter keeps those fields so a log system
can filter by namespace and name, and the text formatter puts the object in
front of the message -- "Handler 'agent_created' succeeded." alone does not
say which of a thousand Agents it was.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from stigmer_operator.settings import LogFormat

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
#: kopf's own extras that are bookkeeping, not context: its whole settings
#: object would otherwise be printed into every per-object line.
_KOPF_PRIVATE = frozenset({"settings", "k8s_skip"})
#: kopf's per-object reference (apiVersion, kind, namespace, name, uid).
_KOPF_REF = "k8s_ref"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ``object``, extras."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key in _KOPF_PRIVATE or key.startswith("_"):
                continue
            document["object" if key == _KOPF_REF else key] = _jsonable(value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def _jsonable(value: object) -> object:
    """``value`` itself when JSON can carry it, else its ``str``."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: [Kind namespace/name] message``; the object only when known."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        ref = getattr(record, _KOPF_REF, None)
        if not isinstance(ref, dict) or not ref.get("name"):
            return super().formatMessage(record)
        where = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else ref["name"]
        kind = f"{ref['kind']} " if ref.get("kind") else ""
        prefixed = logging.makeLogRecord(
            {**record.__dict__, "message": f"[{kind}{where}] {record.message}"}
        )
        return super().formatMessage(prefixed)


def configure(log_format: LogFormat, level: str) -> None:
    """Replace root handlers with one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The Kubernetes client logs every request at DEBUG; keep it out of INFO runs.
    logging.getLogger("kubernetes").setLevel(max(root.level, logging.INFO))
    logging.getLogger("urllib3").setLevel(max(root.level, logging.WARNING))
