"""Hypothesis strategies of *valid* CR specs, in camelCase, optional keys sometimes omitted.

Cross-field rules shape the generation: server, sub-agent and env names are
drawn unique; sub-agents only name servers of the parent and select tools the
parent enables; every ``${VAR}`` placeholder names a declared variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")
Draw = Callable[[st.SearchStrategy[T]], T]

dns_labels = st.from_regex(r"[a-z]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True)
tool_names = st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
#: Free text without ``$`` (placeholders are added on purpose, never by accident).
texts = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="$"),
    max_size=30,
)
instructions = st.builds(lambda tail: "Instructions: " + tail, texts)
urls = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    dns_labels,
    st.from_regex(r"[a-z0-9/]{0,12}", fullmatch=True),
)


def _maybe(
    draw: Draw[Any], out: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]
) -> None:
    """Set ``out[key]`` to a drawn value, or leave the key out."""
    if draw(st.booleans()):
        out[key] = draw(strategy)


def _templated(draw: Draw[Any], env: Sequence[str]) -> str:
    """Text that may embed ``${VAR}`` placeholders of declared variables."""
    text: str = draw(texts)
    if env and draw(st.booleans()):
        text += "${" + draw(st.sampled_from(env)) + "}"
    return text


def _string_map(
    draw: Draw[Any], keys: st.SearchStrategy[str], env: Sequence[str]
) -> dict[str, str]:
    names = draw(st.lists(keys, max_size=3, unique=True))
    return {name: _templated(draw, env) for name in names}


def _stdio(draw: Draw[Any], env: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"command": draw(st.sampled_from(["npx", "uvx", "/usr/bin/mcp"]))}
    if draw(st.booleans()):
        out["args"] = [_templated(draw, env) for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        out["envPlaceholders"] = _string_map(draw, env_names, env)
    _maybe(draw, out, "workingDir", st.builds(lambda name: "/work/" + name, dns_labels))
    return out


def _http(draw: Draw[Any], env: Sequence[str]) -> dict[str, Any]:
    url = draw(urls)
    if env and draw(st.booleans()):
        url += "?key=${" + draw(st.sampled_from(env)) + "}"
    out: dict[str, Any] = {"url": url}
    if draw(st.booleans()):
        out["headers"] = _string_map(draw, header_names, env)
    if draw(st.booleans()):
        out["queryParams"] = _string_map(draw, dns_labels, env)
    _maybe(draw, out, "timeoutSeconds", st.integers(1, 3600))
    return out


def _docker(draw: Draw[Any], env: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"image": "ghcr.io/example/" + draw(dns_labels) + ":1"}
    if draw(st.booleans()):
        out["args"] = [_templated(draw, env) for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        out["envPlaceholders"] = _string_map(draw, env_names, env)
    _maybe(draw, out, "volumes", st.lists(_volumes(), max_size=2))
    _maybe(draw, out, "network", dns_labels)
    _maybe(draw, out, "ports", st.lists(_ports(), max_size=2))
    _maybe(draw, out, "containerName", dns_labels)
    return out


def _volumes() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"hostPath": st.just("/srv/data"), "containerPath": st.just("/data")},
        optional={"readOnly": st.booleans()},
    )


def _ports() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"hostPort": st.integers(1, 65535), "containerPort": st.integers(1, 65535)},
        optional={"protocol": st.sampled_from(["tcp", "udp", "sctp"])},
    )


_TRANSPORT_BUILDERS = {"stdio": _stdio, "http": _http, "docker": _docker}


def _server(draw: Draw[Any], name: str, env: Sequence[str]) -> dict[str, Any]:
    transport = draw(st.sampled_from(sorted(_TRANSPORT_BUILDERS)))
    out: dict[str, Any] = {"name": name, transport: _TRANSPORT_BUILDERS[transport](draw, env)}
    _maybe(draw, out, "enabledTools", st.lists(tool_names, max_size=4, unique=True))
    return out


def _skill_refs() -> st.SearchStrategy[list[dict[str, Any]]]:
    ref = st.fixed_dictionaries(
        {"name": dns_labels},
        optional={"org": dns_labels, "version": st.from_regex(r"v?[0-9]\.[0-9]", fullmatch=True)},
    )
    return st.lists(ref, max_size=2)


def _sub_agent(draw: Draw[Any], name: str, servers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "instructions": draw(instructions)}
    _maybe(draw, out, "description", texts)
    chosen = (
        draw(st.lists(st.sampled_from(servers), max_size=len(servers), unique_by=_name))
        if servers
        else []
    )
    if chosen:
        out["mcpServers"] = [server["name"] for server in chosen]
        out["mcpToolSelections"] = {
            server["name"]: _selection(draw, server) for server in chosen if draw(st.booleans())
        }
    _maybe(draw, out, "skillRefs", _skill_refs())
    return out


def _name(item: Mapping[str, Any]) -> Any:
    return item["name"]


def _selection(draw: Draw[Any], server: Mapping[str, Any]) -> dict[str, Any]:
    allowed = server.get("enabledTools") or []
    pool = st.sampled_from(allowed) if allowed else tool_names
    return {"enabledTools": draw(st.lists(pool, max_size=3, unique=True))}


@st.composite
def agent_specs(draw: Draw[Any]) -> dict[str, Any]:
    """A valid Agent spec, as a CR would carry it."""
    env = draw(st.lists(env_names, max_size=4, unique=True))
    server_names = draw(st.lists(dns_labels, max_size=4, unique=True))
    servers = [_server(draw, name, env) for name in server_names]
    sub_names = draw(st.lists(dns_labels, max_size=3, unique=True))
    out: dict[str, Any] = {"instructions": draw(instructions)}
    _maybe(draw, out, "displayName", texts)
    _maybe(draw, out, "description", texts)
    _maybe(draw, out, "iconUrl", urls)
    if servers or draw(st.booleans()):
        out["mcpServers"] = servers
    _maybe(draw, out, "skillRefs", _skill_refs())
    if sub_names:
        out["subAgents"] = [_sub_agent(draw, name, servers) for name in sub_names]
    if env or draw(st.booleans()):
        out["env"] = [_env_var(draw, name) for name in env]
    _maybe(draw, out, "scope", st.sampled_from(["organization", "platform"]))
    _maybe(draw, out, "sharing", st.lists(dns_labels, max_size=3, unique=True))
    return out


def _env_var(draw: Draw[Any], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    _maybe(draw, out, "description", texts)
    _maybe(draw, out, "secret", st.booleans())
    _maybe(draw, out, "required", st.booleans())
    return out


@st.composite
def agent_instance_specs(draw: Draw[Any]) -> dict[str, Any]:
    """A valid AgentInstance spec, as a CR would carry it."""
    agent_ref: dict[str, Any] = {"name": draw(dns_labels)}
    _maybe(draw, agent_ref, "namespace", dns_labels)
    out: dict[str, Any] = {"agentRef": agent_ref}
    _maybe(draw, out, "displayName", texts)
    _maybe(draw, out, "description", texts)
    refs = st.fixed_dictionaries(
        {"kind": st.sampled_from(["Secret", "ConfigMap"]), "name": dns_labels}
    )
    _maybe(
        draw,
        out,
        "environmentRefs",
        st.lists(refs, max_size=4, unique_by=lambda ref: (ref["kind"], ref["name"])),
    )
    _maybe(draw, out, "scope", st.sampled_from(["organization", "platform"]))
    return out
