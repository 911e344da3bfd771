"""Cross-field rules of a spec: what no single field's constraint can say.

Names unique per list, exactly one transport per MCP server, sub-agents that
name only servers (and tools) of their parent, ``${NAME}`` placeholders that
name declared variables.

The rules read camelCase dicts, not models, and tolerate malformed input:
the model validators (:mod:`.models`) run them on a model's own dump, and
:func:`~.validation.validate_spec` also runs them on the raw spec when
pydantic stopped early (a parent validator never runs once a child field
failed), so every violation is reported in one pass, not one per apply.

Dumping a model only to find nothing is the common case and not free, so
:func:`surely_passes_agent_rules` answers "nothing to find" from the model's
attributes when it can; it sits here, next to the rules it shortcuts, so a
changed rule and its shortcut are read (and tested) together.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeGuard, TypeVar

from pydantic import BaseModel

from stigmer_operator.api.limits import PLACEHOLDER_RE, PLACEHOLDER_START

if TYPE_CHECKING:
    from stigmer_operator.api.models import AgentSpec

#: A location relative to the validated value: field names and list indices.
Loc: TypeAlias = tuple[str | int, ...]
#: One violation a rule found: where, and what is wrong.
Found: TypeAlias = tuple[Loc, str]

#: The transports of an MCP server; exactly one is set.
TRANSPORTS: Final = ("stdio", "http", "docker")


class RuleViolations(ValueError):
    """Raised by a validator that found several violations at once.

    Pydantic keeps one error per raising validator; carrying a list with
    locations relative to the validated value lets :func:`~.validation.validate_spec`
    report each violation at its own path.
    """

    def __init__(self, found: Sequence[tuple[Loc, str]]) -> None:
        self.found: list[tuple[Loc, str]] = list(found)
        super().__init__("; ".join(message for _, message in self.found))


def raise_if_any(found: Iterable[tuple[Loc, str]]) -> None:
    """Raise :class:`RuleViolations` carrying ``found``, unless it is empty."""
    collected = list(found)
    if collected:
        raise RuleViolations(collected)


_T = TypeVar("_T")


def duplicates(items: Sequence[_T], key: Callable[[_T], Hashable]) -> Iterator[tuple[int, int]]:
    """Yield ``(index, first_index)`` for every item whose key was seen before."""
    first: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        seen = first.setdefault(key(item), index)
        if seen != index:
            yield index, seen


def _is_mapping(value: object) -> TypeGuard[Mapping[Any, Any]]:
    """``isinstance(value, Mapping)``, without the ABC check for the common ``dict``."""
    return type(value) is dict or isinstance(value, Mapping)


def _items(data: object, key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(index, item)`` for the object items of list ``data[key]``; junk is skipped."""
    value = data.get(key) if _is_mapping(data) else None
    if isinstance(value, list):
        for index, item in enumerate(value):
            if _is_mapping(item):
                yield index, item


def _strs(data: object, key: str) -> Iterator[tuple[int, str]]:
    """``(index, text)`` for the string items of list ``data[key]``."""
    value = data.get(key) if _is_mapping(data) else None
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield index, item


def _named(
    items: Iterable[tuple[int, Mapping[str, Any]]],
) -> list[tuple[int, str, Mapping[str, Any]]]:
    """``(index, name, item)`` for the ``items`` (of :func:`_items`) that have a string name."""
    return [
        (index, name, item) for index, item in items if isinstance(name := item.get("name"), str)
    ]


def _names_of(items: Iterable[tuple[int, Mapping[str, Any]]]) -> list[tuple[int, str]]:
    """``(index, name)`` for the ``items`` (of :func:`_items`) that have a string name."""
    return [(index, name) for index, name, _ in _named(items)]


def transport_problem(server: Mapping[str, Any]) -> str | None:
    chosen = [name for name in TRANSPORTS if server.get(name) is not None]
    if len(chosen) == 1:
        return None
    found = "none" if not chosen else " and ".join(chosen)
    return f"exactly one of stdio, http or docker must be set (found {found})"


def agent_rules(spec: object) -> Iterator[Found]:
    # Each list is read once and shared by the rules (they run on every validation).
    servers = list(_items(spec, "mcpServers"))
    sub_agents = list(_items(spec, "subAgents"))
    env = list(_items(spec, "env"))
    yield from _transport_violations(servers)
    yield from _duplicate_names(servers, "mcpServers", "MCP server")
    yield from _duplicate_names(sub_agents, "subAgents", "sub-agent")
    yield from _duplicate_names(env, "env", "environment variable")
    yield from _sub_agent_reference_violations(servers, sub_agents)
    yield from _placeholder_violations(servers, env)


def agent_instance_rules(spec: object) -> Iterator[Found]:
    refs = [
        (index, (ref.get("kind"), ref.get("name")))
        for index, ref in _items(spec, "environmentRefs")
        if isinstance(ref.get("kind"), str) and isinstance(ref.get("name"), str)
    ]
    for position, seen in duplicates(refs, lambda pair: pair[1]):
        index, (kind, name) = refs[position]
        yield (
            ("environmentRefs", index),
            f"duplicate reference to {kind} {name!r} "
            f"(same as spec.environmentRefs[{refs[seen][0]}])",
        )


def _transport_violations(servers: list[tuple[int, Mapping[str, Any]]]) -> Iterator[Found]:
    for index, server in servers:
        problem = transport_problem(server)
        if problem is not None:
            yield ("mcpServers", index), problem


def _duplicate_names(
    items: list[tuple[int, Mapping[str, Any]]], field: str, what: str
) -> Iterator[Found]:
    named = _names_of(items)
    if len({name for _, name in named}) == len(named):  # no duplicates: the common case
        return
    for position, seen in duplicates(named, lambda pair: pair[1]):
        index, name = named[position]
        yield (
            (field, index, "name"),
            f"duplicate {what} name {name!r} (already used by spec.{field}[{named[seen][0]}])",
        )


def _sub_agent_reference_violations(
    server_items: list[tuple[int, Mapping[str, Any]]],
    sub_agents: list[tuple[int, Mapping[str, Any]]],
) -> Iterator[Found]:
    servers = {name: server for _, name, server in _named(server_items)}
    for index, sub in sub_agents:
        base: Loc = ("subAgents", index)
        for position, name in _strs(sub, "mcpServers"):
            if name not in servers:
                yield (
                    (*base, "mcpServers", position),
                    f"names MCP server {name!r}, which spec.mcpServers does not define",
                )
        selections = sub.get("mcpToolSelections")
        if not isinstance(selections, Mapping):
            continue
        for name, selection in selections.items():
            server = servers.get(name)
            if server is None:
                yield (
                    (*base, "mcpToolSelections", name),
                    f"selects tools of MCP server {name!r}, which spec.mcpServers does not define",
                )
            else:
                loc = (*base, "mcpToolSelections", name, "enabledTools")
                yield from _tool_subset_violations(loc, selection, server)


def _tool_subset_violations(
    loc: Loc, selection: object, server: Mapping[str, Any]
) -> Iterator[Found]:
    allowed = {tool for _, tool in _strs(server, "enabledTools")}
    if not allowed:
        return
    for position, tool in _strs(selection, "enabledTools"):
        if tool not in allowed:
            yield (
                (*loc, position),
                f"tool {tool!r} is not in the enabledTools of MCP server {server.get('name')!r}",
            )


def _placeholder_violations(
    servers: list[tuple[int, Mapping[str, Any]]], env: list[tuple[int, Mapping[str, Any]]]
) -> Iterator[Found]:
    declared = {name for _, name in _names_of(env)}
    for index, server in servers:
        for transport in TRANSPORTS:
            value = server.get(transport)
            if value is None:
                continue
            strings: list[Found] = []
            _placeholder_strings(value, ("mcpServers", index, transport), strings)
            for loc, text in strings:
                for name in PLACEHOLDER_RE.findall(text):
                    if name not in declared:
                        yield (
                            loc,
                            f"placeholder ${{{name}}} names no variable declared in spec.env",
                        )


def _placeholder_strings(value: object, loc: Loc, found: list[Found]) -> None:
    """Append every string inside ``value`` that can hold a placeholder, with its location.

    Map keys are excluded. A placeholder starts with ``${``, so strings
    without one are skipped before their location is even built, and so are
    numbers and booleans.
    """
    if isinstance(value, str):
        if PLACEHOLDER_START in value:
            found.append((loc, value))
    elif _is_mapping(value):
        for key, item in value.items():
            if isinstance(item, str):
                if PLACEHOLDER_START in item:
                    found.append(((*loc, str(key)), item))
            elif isinstance(item, list) or _is_mapping(item):
                _placeholder_strings(item, (*loc, str(key)), found)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            if isinstance(item, str):
                if PLACEHOLDER_START in item:
                    found.append(((*loc, position), item))
            elif isinstance(item, list) or _is_mapping(item):
                _placeholder_strings(item, (*loc, position), found)


def surely_passes_agent_rules(spec: AgentSpec) -> bool:
    """True only if :func:`agent_rules` of the spec's dump would find nothing.

    A shortcut on the model's own attributes for the common case, not a second
    copy of the rules: ``False`` means "ask the rules", which then report
    whatever they find (with their messages). Anything unexpected -- a name
    that is not a string, a tool selection without a list of tools, a
    duplicate, an unknown reference, a placeholder not declared -- answers
    ``False``.
    """
    servers = spec.mcp_servers
    tools: dict[str, list[str]] = {}
    for server in servers:
        name = server.name
        if type(name) is not str or name in tools:
            return False
        transports = (server.stdio, server.http, server.docker)
        if sum(transport is not None for transport in transports) != 1:
            return False
        tools[name] = server.enabled_tools
    sub_names: set[str] = set()
    for sub in spec.sub_agents:
        if type(sub.name) is not str or sub.name in sub_names:
            return False
        sub_names.add(sub.name)
        if not all(type(name) is str and name in tools for name in sub.mcp_servers):
            return False
        for name, selection in sub.mcp_tool_selections.items():
            allowed = tools.get(name)
            # Read, not type-checked: the models import this module, not the other way round.
            enabled = getattr(selection, "enabled_tools", None)
            if allowed is None or type(enabled) is not list:
                return False
            if allowed and not all(tool in allowed for tool in enabled):
                return False
    declared: set[str] = set()
    for variable in spec.env:
        if type(variable.name) is not str or variable.name in declared:
            return False
        declared.add(variable.name)
    for server in servers:
        for transport in (server.stdio, server.http, server.docker):
            if transport is not None and not _placeholders_declared(transport, declared):
                return False
    return True


def _placeholders_declared(value: object, declared: set[str]) -> bool:
    """Every ``${NAME}`` in the strings of ``value`` (map keys excluded) names a declared one."""
    if isinstance(value, BaseModel):
        value = value.__dict__
    if isinstance(value, dict):
        items: Iterable[object] = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return not isinstance(value, str) or _text_placeholders_declared(value, declared)
    for item in items:
        if isinstance(item, str):
            if not _text_placeholders_declared(item, declared):
                return False
        elif isinstance(item, dict | list | BaseModel) and not _placeholders_declared(
            item, declared
        ):
            return False
    return True


def _text_placeholders_declared(text: str, declared: set[str]) -> bool:
    return PLACEHOLDER_START not in text or declared.issuperset(PLACEHOLDER_RE.findall(text))
