"""Read-only deep copies of Kubernetes objects.

kopf hands handlers the object as plain dicts. A step that mutated that
input would change what later steps (and the failure responder) see, and
such bugs only show under retries. The pipeline therefore freezes the input
once: dicts become ``MappingProxyType`` and lists become tuples, so any write
raises ``TypeError`` at the offending line. :func:`thaw` produces a fresh,
mutable plain copy for code that needs ``dict``/``list`` (e.g. pydantic).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

FrozenObject = Mapping[str, Any]

_EMPTY: FrozenObject = MappingProxyType({})
_LEAVES = frozenset({str, int, bool, float, type(None)})


def freeze(value: Any) -> Any:
    """A deep, read-only copy of a JSON-like value."""
    kind = type(value)
    if kind in _LEAVES:
        return value  # the common case, without an ABC isinstance check
    if kind is list or kind is tuple:  # before the (slow) ABC check below
        return tuple([v if type(v) in _LEAVES else freeze(v) for v in value])
    if kind is dict or isinstance(value, Mapping):
        return MappingProxyType(
            {str(k): v if type(v) in _LEAVES else freeze(v) for k, v in value.items()}
        )
    return value


def freeze_object(obj: Mapping[str, Any]) -> FrozenObject:
    """``freeze`` for a top-level object (always a mapping)."""
    frozen: FrozenObject = freeze(obj)
    return frozen


def thaw(value: Any) -> Any:
    """A deep, mutable plain-``dict``/``list`` copy of a (frozen) JSON-like value."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is tuple or kind is list:  # before the (slow) ABC check below
        return [thaw(v) for v in value]
    if kind is MappingProxyType or kind is dict or isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    return value


def _is_mapping(value: Any) -> bool:
    kind = type(value)
    if kind is MappingProxyType or kind is dict:
        return True
    # Leaves (None for an absent key, most often) without the slow ABC check.
    return kind not in _LEAVES and isinstance(value, Mapping)


def mapping_at(obj: Mapping[str, Any], *path: str) -> FrozenObject:
    """The mapping at ``path`` (e.g. ``"metadata", "labels"``), empty if absent."""
    current: Any = obj
    for part in path:
        if not _is_mapping(current):
            return _EMPTY
        current = current.get(part)
    return current if _is_mapping(current) else _EMPTY


def str_at(obj: Mapping[str, Any], *path: str) -> str:
    """The string at ``path``, ``""`` if absent or not a string."""
    parent = mapping_at(obj, *path[:-1])
    value = parent.get(path[-1])
    return value if isinstance(value, str) else ""
