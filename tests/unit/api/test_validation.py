"""Every validation rule of the specs: its path and its message.

Each case edits a valid spec so exactly one rule breaks, then asserts the
violation names the field in CR terms and says what is wrong in words a
``kubectl apply`` user can act on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.limits import PATTERN_MEANINGS
from stigmer_operator.api.models import (
    AgentInstanceSpec,
    AgentSpec,
    EnvironmentRefKind,
    McpServerDefinition,
    PortProtocol,
    Scope,
)
from stigmer_operator.api.validation import (
    MAP_FIELDS,
    SpecInvalid,
    Violation,
    format_path,
    validate_agent_instance_spec,
    validate_agent_spec,
    validate_spec,
)

from .edits import DELETE, apply_edits
from .specs import agent_instance_spec, agent_spec


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    edits: Mapping[str, Any]
    path: str
    message: str
    kind: Kind = Kind.AGENT


DNS_LABEL = "must be a DNS label"
ENV_NAME = "must be an environment variable name"
URL = "must be an http(s) URL with a host"

AGENT_CASES = [
    Case("instructions required", {"instructions": DELETE}, "spec.instructions", "is required"),
    Case(
        "instructions min length",
        {"instructions": "too short"},
        "spec.instructions",
        "must be at least 10 characters",
    ),
    Case(
        "instructions min length ignores padding",
        {"instructions": "   short          "},
        "spec.instructions",
        "must be at least 10 characters",
    ),
    Case(
        "instructions max length",
        {"instructions": "x" * 1_000_001},
        "spec.instructions",
        "must be at most 1000000 characters",
    ),
    Case("instructions type", {"instructions": 42}, "spec.instructions", "must be a string"),
    Case(
        "displayName max length",
        {"displayName": "d" * 257},
        "spec.displayName",
        "must be at most 256 characters",
    ),
    Case("iconUrl scheme", {"iconUrl": "ftp://example.com/i.png"}, "spec.iconUrl", URL),
    Case("iconUrl host", {"iconUrl": "https:///i.png"}, "spec.iconUrl", URL),
    Case("iconUrl relative", {"iconUrl": "/i.png"}, "spec.iconUrl", URL),
    Case("iconUrl broken IPv6 host", {"iconUrl": "https://[::1/i.png"}, "spec.iconUrl", URL),
    Case("unknown field", {"model": "gpt"}, "spec.model", "is not a known field"),
    Case(
        "unknown nested field",
        {"mcpServers.0.stdio.cmd": "npx"},
        "spec.mcpServers[0].stdio.cmd",
        "is not a known field",
    ),
    Case(
        "server name DNS label",
        {"mcpServers.2.name": "Search"},
        "spec.mcpServers[2].name",
        DNS_LABEL,
    ),
    Case(
        "server name too long",
        {"mcpServers.2.name": "a" * 64},
        "spec.mcpServers[2].name",
        "must be at most 63 characters",
    ),
    Case(
        "server name empty",
        {"mcpServers.2.name": ""},
        "spec.mcpServers[2].name",
        "must not be empty",
    ),
    Case(
        "unique server names",
        {"mcpServers.2.name": "github"},
        "spec.mcpServers[2].name",
        "duplicate MCP server name 'github' (already used by spec.mcpServers[0])",
    ),
    Case(
        "no transport",
        {"mcpServers.0.stdio": DELETE},
        "spec.mcpServers[0]",
        "exactly one of stdio, http or docker must be set (found none)",
    ),
    Case(
        "two transports",
        {"mcpServers.1.docker": {"image": "x"}},
        "spec.mcpServers[1]",
        "exactly one of stdio, http or docker must be set (found http and docker)",
    ),
    Case(
        "null transport is no transport",
        {"mcpServers.0.stdio": None},
        "spec.mcpServers[0]",
        "exactly one of stdio, http or docker must be set (found none)",
    ),
    Case(
        "stdio command required",
        {"mcpServers.0.stdio.command": DELETE},
        "spec.mcpServers[0].stdio.command",
        "is required",
    ),
    Case(
        "env placeholder key",
        {"mcpServers.0.stdio.envPlaceholders": {"bad-key": "v"}},
        "spec.mcpServers[0].stdio.envPlaceholders[bad-key]",
        f"key {ENV_NAME}",
    ),
    Case(
        "http url scheme",
        {"mcpServers.1.http.url": "ftp://mcp.linear.app/mcp"},
        "spec.mcpServers[1].http.url",
        URL,
    ),
    Case(
        "http url host", {"mcpServers.1.http.url": "https://"}, "spec.mcpServers[1].http.url", URL
    ),
    Case(
        "http url spaces",
        {"mcpServers.1.http.url": "https://mcp linear/"},
        "spec.mcpServers[1].http.url",
        URL,
    ),
    Case(
        "http url placeholder must not be the scheme",
        {"mcpServers.1.http.url": "${LINEAR_API_KEY}"},
        "spec.mcpServers[1].http.url",
        URL,
    ),
    Case(
        "header name",
        {"mcpServers.1.http.headers": {"Bad Header": "v"}},
        "spec.mcpServers[1].http.headers[Bad Header]",
        "key must be an HTTP header name",
    ),
    Case(
        "timeout upper bound",
        {"mcpServers.1.http.timeoutSeconds": 3601},
        "spec.mcpServers[1].http.timeoutSeconds",
        "must be at most 3600",
    ),
    Case(
        "timeout lower bound",
        {"mcpServers.1.http.timeoutSeconds": -1},
        "spec.mcpServers[1].http.timeoutSeconds",
        "must be at least 0",
    ),
    Case(
        "timeout is an integer",
        {"mcpServers.1.http.timeoutSeconds": "30"},
        "spec.mcpServers[1].http.timeoutSeconds",
        "must be an integer",
    ),
    Case(
        "host port lower bound",
        {"mcpServers.2.docker.ports.0.hostPort": 0},
        "spec.mcpServers[2].docker.ports[0].hostPort",
        "must be at least 1",
    ),
    Case(
        "container port upper bound",
        {"mcpServers.2.docker.ports.0.containerPort": 65536},
        "spec.mcpServers[2].docker.ports[0].containerPort",
        "must be at most 65535",
    ),
    Case(
        "port protocol",
        {"mcpServers.2.docker.ports.0.protocol": "http"},
        "spec.mcpServers[2].docker.ports[0].protocol",
        "must be one of 'tcp', 'udp' or 'sctp'",
    ),
    Case(
        "container path absolute",
        {"mcpServers.2.docker.volumes.0.containerPath": "docs"},
        "spec.mcpServers[2].docker.volumes[0].containerPath",
        "must be an absolute path",
    ),
    Case(
        "readOnly is a boolean",
        {"mcpServers.2.docker.volumes.0.readOnly": "yes"},
        "spec.mcpServers[2].docker.volumes[0].readOnly",
        "must be true or false",
    ),
    Case(
        "container name",
        {"mcpServers.2.docker.containerName": "-bad"},
        "spec.mcpServers[2].docker.containerName",
        "must be a container name",
    ),
    Case(
        "docker image required",
        {"mcpServers.2.docker.image": ""},
        "spec.mcpServers[2].docker.image",
        "must not be empty",
    ),
    Case(
        "tool name",
        {"mcpServers.0.enabledTools.0": "get pull request"},
        "spec.mcpServers[0].enabledTools[0]",
        "must be a tool name",
    ),
    Case(
        "unique enabled tools",
        {"mcpServers.0.enabledTools.2": "get_pull_request"},
        "spec.mcpServers[0].enabledTools[2]",
        "duplicate entry 'get_pull_request' (first at index 0)",
    ),
    Case(
        "too many servers",
        {
            "mcpServers": [{"name": f"s{i}", "stdio": {"command": "x"}} for i in range(33)],
            "subAgents": DELETE,
        },
        "spec.mcpServers",
        "must have at most 32 entries",
    ),
    Case(
        "placeholder in stdio env",
        {"mcpServers.0.stdio.envPlaceholders.GITHUB_PERSONAL_ACCESS_TOKEN": "${GH_TOKEN}"},
        "spec.mcpServers[0].stdio.envPlaceholders[GITHUB_PERSONAL_ACCESS_TOKEN]",
        "placeholder ${GH_TOKEN} names no variable declared in spec.env",
    ),
    Case(
        "placeholder in stdio args",
        {"mcpServers.0.stdio.args.1": "--token=${NOPE}"},
        "spec.mcpServers[0].stdio.args[1]",
        "placeholder ${NOPE} names no variable declared in spec.env",
    ),
    Case(
        "placeholder in stdio workingDir",
        {"mcpServers.0.stdio.workingDir": "/home/${USER}"},
        "spec.mcpServers[0].stdio.workingDir",
        "placeholder ${USER} names no variable declared in spec.env",
    ),
    Case(
        "placeholder in http url",
        {"mcpServers.1.http.url": "https://${HOST}/mcp"},
        "spec.mcpServers[1].http.url",
        "placeholder ${HOST} names no variable declared in spec.env",
    ),
    Case(
        "placeholder in http header",
        {"mcpServers.1.http.headers.Authorization": "Bearer ${TOKEN}"},
        "spec.mcpServers[1].http.headers[Authorization]",
        "placeholder ${TOKEN} names no variable declared in spec.env",
    ),
    Case(
        "placeholder in http query param",
        {"mcpServers.1.http.queryParams.team": "${TEAM}"},
        "spec.mcpServers[1].http.queryParams[team]",
        "placeholder ${TEAM} names no variable declared in spec.env",
    ),
    Case(
        "placeholder in docker args",
        {"mcpServers.2.docker.args.0": "--key=${SEARCH_KEY}"},
        "spec.mcpServers[2].docker.args[0]",
        "placeholder ${SEARCH_KEY} names no variable declared in spec.env",
    ),
    Case(
        "placeholder in docker env",
        {"mcpServers.2.docker.envPlaceholders.KEY": "${SEARCH_KEY}"},
        "spec.mcpServers[2].docker.envPlaceholders[KEY]",
        "placeholder ${SEARCH_KEY} names no variable declared in spec.env",
    ),
    Case(
        "placeholder in docker volume",
        {"mcpServers.2.docker.volumes.0.hostPath": "${DOCS_DIR}"},
        "spec.mcpServers[2].docker.volumes[0].hostPath",
        "placeholder ${DOCS_DIR} names no variable declared in spec.env",
    ),
    Case(
        "empty placeholder",
        {"mcpServers.0.stdio.args.0": "${}"},
        "spec.mcpServers[0].stdio.args[0]",
        "placeholder ${} names no variable declared in spec.env",
    ),
    Case(
        "sub-agent names parent servers",
        {"subAgents.0.mcpServers.1": "jira"},
        "spec.subAgents[0].mcpServers[1]",
        "names MCP server 'jira', which spec.mcpServers does not define",
    ),
    Case(
        "sub-agent mcpServers unique",
        {"subAgents.0.mcpServers.1": "github"},
        "spec.subAgents[0].mcpServers[1]",
        "duplicate entry 'github' (first at index 0)",
    ),
    Case(
        "sub-agent tool selections name parent servers",
        {"subAgents.0.mcpToolSelections.jira": {"enabledTools": ["x"]}},
        "spec.subAgents[0].mcpToolSelections[jira]",
        "selects tools of MCP server 'jira', which spec.mcpServers does not define",
    ),
    Case(
        "sub-agent tools within the parent's enabledTools",
        {"subAgents.0.mcpToolSelections.github.enabledTools.1": "delete_repository"},
        "spec.subAgents[0].mcpToolSelections[github].enabledTools[1]",
        "tool 'delete_repository' is not in the enabledTools of MCP server 'github'",
    ),
    Case(
        "sub-agent instructions",
        {"subAgents.0.instructions": "short"},
        "spec.subAgents[0].instructions",
        "must be at least 10 characters",
    ),
    Case(
        "sub-agent name",
        {"subAgents.0.name": "Security Auditor"},
        "spec.subAgents[0].name",
        DNS_LABEL,
    ),
    Case(
        "unique sub-agent names",
        {
            "subAgents.1": {
                "name": "security-auditor",
                "instructions": "A second auditor with the same name.",
            }
        },
        "spec.subAgents[1].name",
        "duplicate sub-agent name 'security-auditor' (already used by spec.subAgents[0])",
    ),
    Case(
        "unique env names",
        {"env.2": {"name": "GITHUB_TOKEN"}},
        "spec.env[2].name",
        "duplicate environment variable name 'GITHUB_TOKEN' (already used by spec.env[0])",
    ),
    Case(
        "env name starts with a letter", {"env.2": {"name": "1KEY"}}, "spec.env[2].name", ENV_NAME
    ),
    Case("env name has no dashes", {"env.2": {"name": "MY-KEY"}}, "spec.env[2].name", ENV_NAME),
    Case(
        "env secret is a boolean",
        {"env.0.secret": "true"},
        "spec.env[0].secret",
        "must be true or false",
    ),
    Case(
        "scope enum",
        {"scope": "Platform"},
        "spec.scope",
        "must be one of 'organization' or 'platform'",
    ),
    Case("sharing org names", {"sharing.0": "Team A"}, "spec.sharing[0]", DNS_LABEL),
    Case(
        "sharing unique",
        {"sharing.1": "team-a"},
        "spec.sharing[1]",
        "duplicate entry 'team-a' (first at index 0)",
    ),
    Case("skill name", {"skillRefs.0.name": "Code Review"}, "spec.skillRefs[0].name", DNS_LABEL),
    Case(
        "skill org",
        {"skillRefs.1.org": "ACME"},
        "spec.skillRefs[1].org",
        "must be empty or a DNS label",
    ),
    Case(
        "skill version",
        {"skillRefs.1.version": "1.0 beta"},
        "spec.skillRefs[1].version",
        "must be a version",
    ),
    Case("list type", {"sharing": "team-a"}, "spec.sharing", "must be a list"),
    Case("object type", {"mcpServers.2": "search"}, "spec.mcpServers[2]", "must be an object"),
]

AGENT_INSTANCE_CASES = [
    Case("agentRef required", {"agentRef": DELETE}, "spec.agentRef", "is required"),
    Case(
        "agentRef name",
        {"agentRef.name": "Code_Reviewer"},
        "spec.agentRef.name",
        "must be a DNS subdomain",
    ),
    Case(
        "agentRef namespace",
        {"agentRef.namespace": "a.b"},
        "spec.agentRef.namespace",
        "must be empty or a DNS label",
    ),
    Case(
        "environmentRef kind",
        {"environmentRefs.0.kind": "Pod"},
        "spec.environmentRefs[0].kind",
        "must be one of 'Secret' or 'ConfigMap'",
    ),
    Case(
        "environmentRef name",
        {"environmentRefs.0.name": "Creds"},
        "spec.environmentRefs[0].name",
        "must be a DNS subdomain",
    ),
    Case(
        "unique environmentRefs",
        {"environmentRefs.2": {"kind": "Secret", "name": "code-reviewer-credentials"}},
        "spec.environmentRefs[2]",
        "duplicate reference to Secret 'code-reviewer-credentials' "
        "(same as spec.environmentRefs[0])",
    ),
    Case(
        "scope enum",
        {"scope": "global"},
        "spec.scope",
        "must be one of 'organization' or 'platform'",
    ),
    Case("unknown field", {"agentId": "agt-1"}, "spec.agentId", "is not a known field"),
]
for _case in AGENT_INSTANCE_CASES:
    object.__setattr__(_case, "kind", Kind.AGENT_INSTANCE)

_BASES = {Kind.AGENT: agent_spec, Kind.AGENT_INSTANCE: agent_instance_spec}


def _violations(kind: Kind, raw: Mapping[str, Any]) -> list[Violation]:
    with pytest.raises(SpecInvalid) as caught:
        validate_spec(kind, raw)
    return caught.value.violations


@pytest.mark.parametrize("case", AGENT_CASES + AGENT_INSTANCE_CASES, ids=lambda c: c.id)
def test_rule_reports_path_and_message(case: Case) -> None:
    raw = apply_edits(_BASES[case.kind](), case.edits)

    violations = _violations(case.kind, raw)

    assert [v.path for v in violations] == [case.path], violations
    assert case.message in violations[0].message
    assert "Value error" not in violations[0].message
    assert "Input should" not in violations[0].message


def test_base_specs_are_valid() -> None:
    assert isinstance(validate_spec(Kind.AGENT, agent_spec()), AgentSpec)
    assert isinstance(validate_spec(Kind.AGENT_INSTANCE, agent_instance_spec()), AgentInstanceSpec)


def test_minimal_agent_gets_defaults() -> None:
    spec = validate_agent_spec({"instructions": "Answer questions politely."})

    assert spec.scope is Scope.ORGANIZATION
    assert spec.display_name == ""
    assert spec.mcp_servers == []


def test_minimal_agent_instance_gets_defaults() -> None:
    spec = validate_agent_instance_spec({"agentRef": {"name": "helper"}})

    assert spec.agent_ref.namespace == ""
    assert spec.scope is Scope.ORGANIZATION
    assert spec.environment_refs == []


def test_values_are_typed() -> None:
    spec = validate_agent_spec(agent_spec())

    assert spec.mcp_servers[2].docker is not None
    assert spec.mcp_servers[2].docker.ports[0].protocol is PortProtocol.UDP
    assert isinstance(spec.mcp_servers[1].transport, type(spec.mcp_servers[1].http))
    instance = validate_agent_instance_spec(agent_instance_spec())
    assert instance.environment_refs[1].kind is EnvironmentRefKind.CONFIG_MAP


def test_placeholders_naming_declared_variables_are_accepted() -> None:
    raw = apply_edits(agent_spec(), {"mcpServers.1.http.url": "https://${LINEAR_API_KEY}.example/"})

    validate_agent_spec(raw)


def test_tool_selection_is_free_when_the_parent_does_not_restrict_tools() -> None:
    raw = apply_edits(agent_spec(), {"subAgents.0.mcpToolSelections.linear.enabledTools.1": "any"})

    validate_agent_spec(raw)


def test_same_name_of_different_kinds_is_not_a_duplicate_environment_ref() -> None:
    raw = apply_edits(
        agent_instance_spec(),
        {"environmentRefs.1": {"kind": "ConfigMap", "name": "code-reviewer-credentials"}},
    )

    validate_agent_instance_spec(raw)


def test_snake_case_names_are_accepted() -> None:
    spec = validate_agent_instance_spec({"agent_ref": {"name": "helper"}, "display_name": "Helper"})

    assert spec.display_name == "Helper"


def test_every_violation_is_reported_in_one_pass() -> None:
    raw = apply_edits(
        agent_spec(),
        {
            "instructions": "short",
            "mcpServers.1.http.url": "ftp://x",
            "mcpServers.2.name": "github",
            "env.2": {"name": "GITHUB_TOKEN"},
            "subAgents.0.mcpServers.1": "jira",
            "mcpServers.0.stdio.args.0": "${MISSING}",
        },
    )

    paths = {v.path for v in _violations(Kind.AGENT, raw)}

    assert paths == {
        "spec.instructions",
        "spec.mcpServers[1].http.url",
        "spec.mcpServers[2].name",
        "spec.env[2].name",
        "spec.subAgents[0].mcpServers[1]",
        "spec.mcpServers[0].stdio.args[0]",
    }


def test_cross_field_rules_survive_malformed_siblings() -> None:
    raw = apply_edits(
        agent_spec(),
        {"mcpServers.0.name": ["not", "a", "string"], "env.0": 7, "subAgents.0.mcpServers": "x"},
    )

    paths = [v.path for v in _violations(Kind.AGENT, raw)]

    assert "spec.mcpServers[0].name" in paths
    assert "spec.env[0]" in paths
    assert "spec.subAgents[0].mcpServers" in paths
    assert len(paths) == len(set(paths))


def test_message_joins_every_violation() -> None:
    raw = apply_edits(agent_spec(), {"instructions": "short", "scope": "everyone"})

    with pytest.raises(SpecInvalid) as caught:
        validate_agent_spec(raw)

    assert str(caught.value) == "; ".join(str(v) for v in caught.value.violations)
    assert str(caught.value).startswith("spec.instructions: must be at least 10 characters")
    assert "; spec.scope: must be one of 'organization' or 'platform'" in str(caught.value)


@pytest.mark.parametrize("raw", [None, [], "spec"])
def test_spec_must_be_an_object(raw: Any) -> None:
    assert _violations(Kind.AGENT, raw) == [Violation("spec", "must be an object")]


def test_violation_is_frozen_and_prints_path_first() -> None:
    violation = Violation("spec.scope", "must be one of 'organization' or 'platform'")

    with pytest.raises(dataclasses.FrozenInstanceError):
        violation.path = "spec"  # type: ignore[misc]
    assert str(violation) == "spec.scope: must be one of 'organization' or 'platform'"


def test_models_are_immutable() -> None:
    spec = validate_agent_spec(agent_spec())

    with pytest.raises(ValidationError):
        spec.instructions = "changed"


def test_model_validators_enforce_cross_field_rules_without_validate_spec() -> None:
    with pytest.raises(ValidationError, match="exactly one of stdio, http or docker"):
        McpServerDefinition.model_validate({"name": "x"})
    with pytest.raises(ValidationError, match="duplicate environment variable name"):
        AgentSpec.model_validate(apply_edits(agent_spec(), {"env.1.name": "GITHUB_TOKEN"}))


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("spec",), "spec"),
        (("spec", "mcpServers", 1, "http", "url"), "spec.mcpServers[1].http.url"),
        (
            ("spec", "mcpServers", 0, "http", "headers", "X-Key"),
            "spec.mcpServers[0].http.headers[X-Key]",
        ),
        (
            ("spec", "subAgents", 0, "mcpToolSelections", "github", "enabledTools", 2),
            "spec.subAgents[0].mcpToolSelections[github].enabledTools[2]",
        ),
    ],
)
def test_format_path(loc: tuple[str | int, ...], path: str) -> None:
    assert format_path(loc) == path


_ALL_MODELS = (AgentSpec, AgentInstanceSpec)


def _schema_values(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and not isinstance(value, dict):
                yield value
            yield from _schema_values(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _schema_values(item, key)


def test_every_pattern_has_a_human_meaning() -> None:
    patterns = {
        pattern
        for model in _ALL_MODELS
        for pattern in _schema_values(model.model_json_schema(by_alias=True), "pattern")
    }

    assert patterns
    assert patterns <= set(PATTERN_MEANINGS)


def test_map_fields_lists_every_map_valued_field() -> None:
    maps = set()
    for model in _ALL_MODELS:
        for definition in model.model_json_schema(by_alias=True).get("$defs", {}).values():
            for name, prop in definition.get("properties", {}).items():
                if prop.get("type") == "object" and (
                    "additionalProperties" in prop or "patternProperties" in prop
                ):
                    maps.add(name)

    assert maps == MAP_FIELDS
