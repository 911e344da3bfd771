"""The fast path of the Agent rules never lets a broken spec through, and is taken for valid ones.

:func:`~stigmer_operator.api.rules.surely_passes_agent_rules` answers from a
model's attributes whether :func:`~stigmer_operator.api.rules.agent_rules`
would find nothing in its dump; a wrong "passes" would accept a spec the
rules refuse. Hypothesis draws valid specs (:mod:`.strategies`) and breaks
each in one or two of the ways the rules look for, keeping every field valid
on its own so the break reaches the cross-field rules. The model is built
without its own cross-field validator (which would refuse it), the way a
field-valid spec reaches the fast path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from stigmer_operator.api.models import (
    AgentSpec,
    DockerServer,
    EnvVarDeclaration,
    HttpServer,
    McpServerDefinition,
    StdioServer,
    SubAgent,
)
from stigmer_operator.api.rules import TRANSPORTS, agent_rules, surely_passes_agent_rules

from .strategies import Draw, agent_specs

#: Names the strategies never draw (longer, or lower-case where they draw upper-case).
UNKNOWN_SERVER: Final = "no-such-server"
UNDECLARED: Final = "undeclared"

_TRANSPORT_MODELS: Final[dict[str, type[BaseModel]]] = {
    "stdio": StdioServer,
    "http": HttpServer,
    "docker": DockerServer,
}

Spec = dict[str, Any]
Break = Callable[[Draw[Any], Spec], None]


# --------------------------------------------------------------------------
# Building a field-valid model that may break the cross-field rules
# --------------------------------------------------------------------------


def _server_model(raw: Spec) -> McpServerDefinition:
    """The server with every transport ``raw`` has (none, one or several), each validated."""
    present = [name for name in TRANSPORTS if name in raw]
    one = {key: value for key, value in raw.items() if key not in TRANSPORTS}
    one["stdio"] = {"command": "npx"}  # validated with exactly one, then replaced
    model = McpServerDefinition.model_validate(one)
    transports = {
        name: _TRANSPORT_MODELS[name].model_validate(raw[name]) if name in present else None
        for name in TRANSPORTS
    }
    return model.model_copy(update=transports)


def _unchecked_agent_spec(raw: Spec) -> AgentSpec:
    """``raw`` as a model whose fields are valid, without the cross-field rules applied."""
    lists = ("mcpServers", "subAgents", "env")
    base = AgentSpec.model_validate({k: v for k, v in raw.items() if k not in lists})
    return base.model_copy(
        update={
            "mcp_servers": [_server_model(server) for server in raw.get("mcpServers", [])],
            "sub_agents": [SubAgent.model_validate(sub) for sub in raw.get("subAgents", [])],
            "env": [EnvVarDeclaration.model_validate(var) for var in raw.get("env", [])],
        }
    )


# --------------------------------------------------------------------------
# Breaks: each leaves at least one violation the rules report
# --------------------------------------------------------------------------


def _servers(spec: Spec) -> list[Spec]:
    servers: list[Spec] = spec.setdefault("mcpServers", [])
    if not servers:
        servers.append({"name": "srv", "stdio": {"command": "npx"}})
    return servers


def _sub_agents(spec: Spec) -> list[Spec]:
    subs: list[Spec] = spec.setdefault("subAgents", [])
    if not subs:
        subs.append({"name": "sub", "instructions": "Instructions: help."})
    return subs


def _env(spec: Spec) -> list[Spec]:
    env: list[Spec] = spec.setdefault("env", [])
    if not env:
        env.append({"name": "TOKEN"})
    return env


def _duplicate_an_entry(field: Callable[[Spec], list[Spec]]) -> Break:
    def duplicate(draw: Draw[Any], spec: Spec) -> None:
        items = field(spec)
        original = draw(st.sampled_from(items))
        items.insert(draw(st.integers(0, len(items))), copy.deepcopy(original))

    return duplicate


def _undeclared_placeholder(draw: Draw[Any], spec: Spec) -> None:
    """A ``${undeclared}`` in some string of a transport, maybe after a declared one."""
    server = draw(st.sampled_from(_servers(spec)))
    transport = draw(st.sampled_from([name for name in TRANSPORTS if name in server]))
    declared = [var["name"] for var in spec.get("env", [])]
    text = "${" + UNDECLARED + "}"
    if declared and draw(st.booleans()):
        text = "${" + draw(st.sampled_from(declared)) + "}-" + text
    target: Spec = server[transport]
    if transport == "http":
        where = draw(st.sampled_from(["headers", "queryParams"]))
        target.setdefault(where, {})["x-placeholder"] = text
        return
    locations = ["args", "envPlaceholders", *(["volumes"] if transport == "docker" else [])]
    where = draw(st.sampled_from(locations))
    if where == "args":
        args = target.setdefault("args", [])
        args.insert(draw(st.integers(0, len(args))), text)
    elif where == "envPlaceholders":
        target.setdefault("envPlaceholders", {})["PLACEHOLDER"] = text
    else:  # a string inside a list of objects
        target.setdefault("volumes", []).append({"hostPath": text, "containerPath": "/data"})


def _unknown_server_reference(draw: Draw[Any], spec: Spec) -> None:
    sub = draw(st.sampled_from(_sub_agents(spec)))
    names = sub.setdefault("mcpServers", [])
    names.insert(draw(st.integers(0, len(names))), UNKNOWN_SERVER)


def _unknown_server_selection(draw: Draw[Any], spec: Spec) -> None:
    sub = draw(st.sampled_from(_sub_agents(spec)))
    sub.setdefault("mcpToolSelections", {})[UNKNOWN_SERVER] = {"enabledTools": []}


def _tool_outside_enabled_tools(draw: Draw[Any], spec: Spec) -> None:
    server = draw(st.sampled_from(_servers(spec)))
    allowed = server.setdefault("enabledTools", [])
    if not allowed:
        allowed.append("allowed-tool")
    outside = "outside-tool"
    while outside in allowed:
        outside += "x"
    sub = draw(st.sampled_from(_sub_agents(spec)))
    tools = sub.setdefault("mcpToolSelections", {}).setdefault(
        server["name"], {"enabledTools": []}
    )["enabledTools"]
    if outside not in tools:
        tools.insert(draw(st.integers(0, len(tools))), outside)


def _referenced_server_removed(draw: Draw[Any], spec: Spec) -> None:
    servers = _servers(spec)
    server = draw(st.sampled_from(servers))
    sub = draw(st.sampled_from(_sub_agents(spec)))
    if draw(st.booleans()):
        names = sub.setdefault("mcpServers", [])
        if server["name"] not in names:
            names.append(server["name"])
    else:
        sub.setdefault("mcpToolSelections", {}).setdefault(server["name"], {"enabledTools": []})
    servers[:] = [other for other in servers if other["name"] != server["name"]]


def _not_exactly_one_transport(draw: Draw[Any], spec: Spec) -> None:
    server = draw(st.sampled_from(_servers(spec)))
    if draw(st.booleans()):
        for name in TRANSPORTS:
            server.pop(name, None)
    elif "stdio" in server:
        server["http"] = {"url": "https://second.example/"}
    else:
        server["stdio"] = {"command": "npx"}


#: Every way a spec is broken here, by name (the test's ids).
BREAKS: Final[dict[str, Break]] = {
    "duplicate-server": _duplicate_an_entry(_servers),
    "duplicate-sub-agent": _duplicate_an_entry(_sub_agents),
    "duplicate-env": _duplicate_an_entry(_env),
    "undeclared-placeholder": _undeclared_placeholder,
    "unknown-server-reference": _unknown_server_reference,
    "unknown-server-selection": _unknown_server_selection,
    "tool-outside-enabled-tools": _tool_outside_enabled_tools,
    "referenced-server-removed": _referenced_server_removed,
    "not-exactly-one-transport": _not_exactly_one_transport,
}


@st.composite
def broken_agent_specs(draw: Draw[Any], break_: Break) -> Spec:
    """A valid Agent spec, broken by ``break_``."""
    spec: Spec = draw(agent_specs())
    break_(draw, spec)
    return spec


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


@pytest.mark.parametrize("break_", BREAKS.values(), ids=BREAKS.keys())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_never_passes_a_spec_the_rules_refuse(break_: Break, data: st.DataObject) -> None:
    # One break per test, so a shortcut that misses one kind of violation is
    # found every run, not only when hypothesis happens to draw that break.
    model = _unchecked_agent_spec(data.draw(broken_agent_specs(break_)))
    found = list(agent_rules(model.model_dump(by_alias=True)))
    note(f"rules found: {found}")

    assert found, "the break must leave a violation, or this test proves nothing"
    assert not surely_passes_agent_rules(model)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_specs())
def test_fast_path_passes_every_valid_spec(raw: Spec) -> None:
    model = AgentSpec.model_validate(raw)

    assert not list(agent_rules(model.model_dump(by_alias=True)))
    assert surely_passes_agent_rules(model), "a valid spec should not need the slow rules"
