"""Declarative edits of nested spec dicts: ``{"mcpServers.1.http.url": "ftp://x"}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: Value meaning "remove this key".
DELETE: Final = object()


def apply_edits(spec: dict[str, Any], edits: Mapping[str, Any]) -> dict[str, Any]:
    """Apply each ``dotted.path: value`` edit to ``spec`` in place; return it."""
    for dotted, value in edits.items():
        *parents, last = dotted.split(".")
        target: Any = spec
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is DELETE:
            del target[key]
        elif isinstance(target, list) and key == len(target):
            target.append(value)
        else:
            target[key] = value
    return spec
