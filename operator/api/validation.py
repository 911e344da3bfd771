"""Validating a spec: the entry point, and pydantic's errors as violations with CR paths.

:func:`validate_spec` returns a model (:mod:`.models`) or raises
:class:`SpecInvalid` carrying *every* violation with its path in CR terms
(``spec.mcpServers[1].http.url``) and a human message: pydantic's field
errors and, when pydantic stopped before the cross-field rules ran, those
rules (:mod:`.rules`) on the raw spec. The ``ValidateFieldConstraints`` step
and the CRD examples' tests read violations from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.limits import PATTERN_MEANINGS
from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec
from stigmer_operator.api.rules import (
    Found,
    Loc,
    RuleViolations,
    agent_instance_rules,
    agent_rules,
)

__all__ = [
    "MAP_FIELDS",
    "SpecInvalid",
    "Violation",
    "format_path",
    "validate_agent_instance_spec",
    "validate_agent_spec",
    "validate_spec",
]


@dataclass(frozen=True)
class Violation:
    """One broken rule, located by its path in the custom resource."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecInvalid(Exception):
    """A spec broke one or more rules; ``str()`` lists all of them in one message."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations: list[Violation] = list(violations)
        super().__init__("; ".join(str(v) for v in self.violations))


#: Pydantic's last location segment when a map *key* (not its value) is invalid.
_KEY_MARKER: Final = "[key]"

#: camelCase names of the map-valued fields: the segment after one is a key.
MAP_FIELDS: Final = frozenset({"envPlaceholders", "headers", "queryParams", "mcpToolSelections"})

_MESSAGES: Final[Mapping[str, str]] = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} entries",
    "too_long": "must have at most {max_length} entries",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "bool_type": "must be true or false",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "enum": "must be one of {expected}",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "datetime_type": "must be a date-time",
    "datetime_parsing": "must be a date-time",
}


def validate_spec(kind: Kind, raw: Mapping[str, Any]) -> AgentSpec | AgentInstanceSpec:
    """Validate the ``spec`` of a custom resource of ``kind``.

    Raises :class:`SpecInvalid` listing every violation, each at its path
    (``spec.mcpServers[1].http.url``) with a human message.
    """
    if kind is Kind.AGENT:
        return validate_agent_spec(raw)
    return validate_agent_instance_spec(raw)


def validate_agent_spec(raw: Mapping[str, Any]) -> AgentSpec:
    """:func:`validate_spec` for an Agent, typed."""
    return _validate(AgentSpec, agent_rules, raw)


def validate_agent_instance_spec(raw: Mapping[str, Any]) -> AgentInstanceSpec:
    """:func:`validate_spec` for an AgentInstance, typed."""
    return _validate(AgentInstanceSpec, agent_instance_rules, raw)


_SpecT = TypeVar("_SpecT", bound=BaseModel)


def _validate(
    model: type[_SpecT], rules: Callable[[object], Iterator[Found]], raw: Mapping[str, Any]
) -> _SpecT:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        found = [
            *_violations(exc, ("spec",)),
            *(Violation(format_path(("spec", *loc)), message) for loc, message in rules(raw)),
        ]
        raise SpecInvalid(list(dict.fromkeys(found))) from None


def _violations(exc: ValidationError, root: Loc) -> Iterator[Violation]:
    for error in exc.errors():
        loc: Loc = (*root, *error["loc"])
        nested = error.get("ctx", {}).get("error")
        if isinstance(nested, RuleViolations):
            for relative, message in nested.found:
                yield Violation(format_path((*loc, *relative)), message)
        elif loc[-1] == _KEY_MARKER:
            yield Violation(format_path(loc[:-1]), f"key {_human_message(error)}")
        else:
            yield Violation(format_path(loc), _human_message(error))


def format_path(loc: Loc) -> str:
    """A location as a CR path.

    ``("spec", "mcpServers", 1, "http", "headers", "X")`` becomes
    ``spec.mcpServers[1].http.headers[X]``.
    """
    parts: list[str] = []
    previous: str | int | None = None
    for segment in loc:
        if isinstance(segment, int) or previous in MAP_FIELDS:
            parts.append(f"[{segment}]")
        else:
            parts.append(f".{segment}" if parts else segment)
        previous = segment
    return "".join(parts)


def _human_message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx", {})
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "string_pattern_mismatch":
        pattern = str(ctx["pattern"])
        return PATTERN_MEANINGS.get(pattern, f"must match the pattern {pattern}")
    if kind == "string_too_short":
        minimum = int(ctx["min_length"])
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters"
    template = _MESSAGES.get(kind)
    if template is None:
        return error["msg"]
    return template.format(**ctx)
