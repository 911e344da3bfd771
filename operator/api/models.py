"""The validation contract: pydantic models of the Agent and AgentInstance specs.

Why pydantic next to protobuf: the ``.proto`` files are the *storage*
contract (what RocksDB holds, field numbers forever), but they cannot say
"at least 10 characters", "exactly one transport" or "this placeholder names
a declared variable". These models say it, in one place, and are the source
of the CRD schema (:mod:`stigmer_operator.api.crdgen`), so ``kubectl
explain``, apply-time schema/CEL checks and the operator's own
``ValidateFieldConstraints`` step all read the same rules.

Conventions:

* Field names are snake_case in Python and camelCase on the wire (the
  protobuf JSON names); either is accepted on input.
* Optional scalars default to their protobuf zero value (``""``, ``False``,
  ``0``) and "zero" means "unset", exactly as in proto3. That keeps
  CR -> model -> proto -> model lossless (see :mod:`~.convert`).
* Every field has a ``description``: it becomes ``kubectl explain`` text.
* Rules CEL can also express carry their ``x-kubernetes-validations`` next
  to the pydantic rule (``json_schema_extra``), so both stay in step.

:func:`validate_spec` is the entry point: it returns a model or raises
:class:`SpecInvalid` carrying *every* violation with its path in CR terms
(``spec.mcpServers[1].http.url``) and a human message.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Self, TypeAlias, TypeGuard, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.conditions import ConditionStatus

__all__ = [
    "AgentInstanceSpec",
    "AgentInstanceStatus",
    "AgentRef",
    "AgentSpec",
    "AgentStatus",
    "Condition",
    "ConditionStatus",
    "DockerServer",
    "EnvVarDeclaration",
    "EnvironmentRef",
    "EnvironmentRefKind",
    "HttpServer",
    "McpServerDefinition",
    "PortMapping",
    "PortProtocol",
    "Scope",
    "SkillRef",
    "SpecInvalid",
    "StatusAudit",
    "StdioServer",
    "SubAgent",
    "ToolSelection",
    "Violation",
    "VolumeMount",
    "format_path",
    "validate_agent_instance_spec",
    "validate_agent_spec",
    "validate_spec",
]

# --------------------------------------------------------------------------
# Bounds. Every string and list is bounded: the API server's CEL cost
# estimator needs maxLength/maxItems, and an unbounded spec is a denial of
# service waiting to happen.
# --------------------------------------------------------------------------

MAX_INSTRUCTIONS: Final = 1_000_000
MIN_INSTRUCTIONS: Final = 10
MAX_DESCRIPTION: Final = 4096
MAX_DISPLAY_NAME: Final = 256
MAX_URL: Final = 2048
MAX_TEXT: Final = 4096
MAX_PATH: Final = 4096
MAX_TOOL_NAME: Final = 128
MAX_ENV_NAME: Final = 128
MAX_DNS_LABEL: Final = 63
MAX_DNS_SUBDOMAIN: Final = 253
MAX_MCP_SERVERS: Final = 32
MAX_SUB_AGENTS: Final = 16
MAX_TOOLS: Final = 256
MAX_SKILL_REFS: Final = 64
MAX_ENV: Final = 128
MAX_SHARING: Final = 128
MAX_ARGS: Final = 128
MAX_MAP_ENTRIES: Final = 64
MAX_VOLUMES: Final = 32
MAX_PORTS: Final = 32
MAX_ENVIRONMENT_REFS: Final = 32
MAX_CONDITIONS: Final = 16
MAX_TIMEOUT_SECONDS: Final = 3600
MAX_PORT: Final = 65535

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OPTIONAL_DNS_LABEL_PATTERN: Final = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_VAR_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
TOOL_NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]+$"
HEADER_NAME_PATTERN: Final = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
VERSION_PATTERN: Final = r"^([A-Za-z0-9][A-Za-z0-9._+-]*)?$"
CONTAINER_NAME_PATTERN: Final = r"^([A-Za-z0-9][A-Za-z0-9_.-]*)?$"
ABSOLUTE_PATH_PATTERN: Final = r"^/"
CONDITION_TYPE_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

#: What a pattern means, for messages people can act on.
PATTERN_MEANINGS: Final[Mapping[str, str]] = {
    DNS_LABEL_PATTERN: (
        "must be a DNS label: lower-case letters, digits and '-', "
        "starting and ending with a letter or digit"
    ),
    OPTIONAL_DNS_LABEL_PATTERN: (
        "must be empty or a DNS label: lower-case letters, digits and '-', "
        "starting and ending with a letter or digit"
    ),
    DNS_SUBDOMAIN_PATTERN: (
        "must be a DNS subdomain: lower-case letters, digits, '-' and '.', "
        "starting and ending with a letter or digit"
    ),
    ENV_VAR_NAME_PATTERN: (
        "must be an environment variable name: letters, digits and '_', not starting with a digit"
    ),
    TOOL_NAME_PATTERN: "must be a tool name: letters, digits, '_', '.' and '-'",
    HEADER_NAME_PATTERN: "must be an HTTP header name (no spaces, colons or separators)",
    VERSION_PATTERN: "must be a version: letters, digits, '.', '_', '+' and '-'",
    CONTAINER_NAME_PATTERN: "must be a container name: letters, digits, '_', '.' and '-'",
    ABSOLUTE_PATH_PATTERN: "must be an absolute path (starting with '/')",
    CONDITION_TYPE_PATTERN: "must be a condition type in CamelCase, optionally prefixed",
    CONDITION_REASON_PATTERN: "must be a CamelCase reason",
}

#: ``${NAME}`` placeholders in MCP server configuration.
PLACEHOLDER_RE: Final = re.compile(r"\$\{([^}]*)\}")
#: What every match of ``PLACEHOLDER_RE`` starts with (a cheap pre-check).
_PLACEHOLDER_START: Final = "${"

_HTTP_URL_RE: Final = re.compile(r"^https?://[^\s/?#]+([/?#]\S*)?$")
#: CEL twin of ``_HTTP_URL_RE`` (no ``\s`` so the rule needs no escaping).
_HTTP_URL_CEL: Final = "^https?://[^ /?#]+([/?#].*)?$"


# --------------------------------------------------------------------------
# Violations
# --------------------------------------------------------------------------


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


Loc: TypeAlias = tuple[str | int, ...]


class _RuleViolations(ValueError):
    """Raised by a validator that found several violations at once.

    Pydantic keeps one error per raising validator; carrying a list with
    locations relative to the validated value lets :func:`validate_spec`
    report each violation at its own path.
    """

    def __init__(self, found: Sequence[tuple[Loc, str]]) -> None:
        self.found: list[tuple[Loc, str]] = list(found)
        super().__init__("; ".join(message for _, message in self.found))


def _raise_if_any(found: Iterable[tuple[Loc, str]]) -> None:
    collected = list(found)
    if collected:
        raise _RuleViolations(collected)


# --------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------


class Scope(enum.StrEnum):
    """Who owns the resource: an organization (the default) or the platform."""

    ORGANIZATION = "organization"
    PLATFORM = "platform"


class EnvironmentRefKind(enum.StrEnum):
    """The kind of object an environment reference names."""

    SECRET = "Secret"
    CONFIG_MAP = "ConfigMap"


class PortProtocol(enum.StrEnum):
    """Transport protocol of a published container port."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"


# --------------------------------------------------------------------------
# Small validators and constrained types
# --------------------------------------------------------------------------


def _cel(rule: str, message: str, field_path: str = "") -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry.

    ``field_path`` (relative, e.g. ``.subAgents``) makes the API server report
    a rule written on a parent at the child it is about.
    """
    rule_doc = {"rule": rule, "message": message}
    if field_path:
        rule_doc["fieldPath"] = field_path
    return rule_doc


def _cel_extra(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


def _check_http_url(value: str) -> str:
    if not _HTTP_URL_RE.match(value) or not _hostname(value):
        raise ValueError("must be an http(s) URL with a host")
    return value


def _hostname(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def _check_optional_http_url(value: str) -> str:
    return value if value == "" else _check_http_url(value)


def _check_templated_http_url(value: str) -> str:
    """An http(s) URL once each ``${VAR}`` is replaced by a plain host-safe token."""
    _check_http_url(PLACEHOLDER_RE.sub("x", value))
    return value


def _check_instructions(value: str) -> str:
    if len(value.strip()) < MIN_INSTRUCTIONS:
        raise ValueError(
            f"must be at least {MIN_INSTRUCTIONS} characters (not counting surrounding whitespace)"
        )
    return value


_T = TypeVar("_T")


def _duplicates(items: Sequence[_T], key: Callable[[_T], Hashable]) -> Iterator[tuple[int, int]]:
    """Yield ``(index, first_index)`` for every item whose key was seen before."""
    first: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        seen = first.setdefault(key(item), index)
        if seen != index:
            yield index, seen


def _check_unique(items: list[str]) -> list[str]:
    if len(set(items)) == len(items):  # the common case, without building the report
        return items
    _raise_if_any(
        ((index,), f"duplicate entry {items[index]!r} (first at index {seen})")
        for index, seen in _duplicates(items, str)
    )
    return items


DnsLabel = Annotated[str, Field(min_length=1, max_length=MAX_DNS_LABEL, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[
    str, Field(min_length=1, max_length=MAX_DNS_SUBDOMAIN, pattern=DNS_SUBDOMAIN_PATTERN)
]
ToolName = Annotated[str, Field(min_length=1, max_length=MAX_TOOL_NAME, pattern=TOOL_NAME_PATTERN)]
EnvVarName = Annotated[
    str, Field(min_length=1, max_length=MAX_ENV_NAME, pattern=ENV_VAR_NAME_PATTERN)
]
HeaderName = Annotated[str, Field(min_length=1, max_length=256, pattern=HEADER_NAME_PATTERN)]
ParamName = Annotated[str, Field(min_length=1, max_length=256)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Instructions = Annotated[
    str, Field(max_length=MAX_INSTRUCTIONS), AfterValidator(_check_instructions)
]

_INSTRUCTIONS_CEL_RULE: Final = f"self.trim().size() >= {MIN_INSTRUCTIONS}"


def _unique_set_extra() -> dict[str, Any]:
    return {"x-kubernetes-list-type": "set"}


def _unique_names_cel(path: str, what: str) -> dict[str, Any]:
    return _cel_extra(
        _cel("self.all(x, self.exists_one(y, y.name == x.name))", f"{path}: {what} must be unique")
    )


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


class _Model(BaseModel):
    """Shared configuration: camelCase aliases, unknown fields refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class StdioServer(_Model):
    """An MCP server the agent runtime starts as a local process speaking MCP over stdio."""

    command: str = Field(
        min_length=1, max_length=MAX_PATH, description="Executable to run (path or name on PATH)."
    )
    args: list[Text] = Field(
        default_factory=list,
        max_length=MAX_ARGS,
        description="Command-line arguments; may hold ${VAR} placeholders.",
    )
    env_placeholders: dict[EnvVarName, Text] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description=(
            "Environment of the process, by variable name; values may hold ${VAR} "
            "placeholders that name variables declared in spec.env."
        ),
    )
    working_dir: str = Field(
        default="",
        max_length=MAX_PATH,
        description="Working directory of the process; empty means the runtime's default.",
    )


class HttpServer(_Model):
    """A remote MCP server reached over streamable HTTP."""

    url: Annotated[str, AfterValidator(_check_templated_http_url)] = Field(
        min_length=1,
        max_length=MAX_URL,
        description="Endpoint URL (http or https, with a host); may hold ${VAR} placeholders.",
        json_schema_extra=_cel_extra(
            _cel(
                f"self.matches('{_HTTP_URL_CEL}')",
                "spec.mcpServers[].http.url must be an http(s) URL with a host",
            )
        ),
    )
    headers: dict[HeaderName, Text] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description="HTTP headers sent with every request; values may hold ${VAR} placeholders.",
    )
    query_params: dict[ParamName, Text] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description="Query parameters added to the URL; values may hold ${VAR} placeholders.",
    )
    timeout_seconds: StrictInt = Field(
        default=0,
        ge=0,
        le=MAX_TIMEOUT_SECONDS,
        description=(
            f"Request timeout in seconds, at most {MAX_TIMEOUT_SECONDS}; "
            "0 or omitted means the runtime's default."
        ),
    )


class VolumeMount(_Model):
    """A host path mounted into a Docker MCP server's container."""

    host_path: str = Field(
        min_length=1, max_length=MAX_PATH, description="Path on the host (may hold ${VAR})."
    )
    container_path: str = Field(
        min_length=1,
        max_length=MAX_PATH,
        pattern=ABSOLUTE_PATH_PATTERN,
        description="Absolute path inside the container.",
    )
    read_only: StrictBool = Field(default=False, description="Mount read-only.")


class PortMapping(_Model):
    """A container port published on the host."""

    host_port: StrictInt = Field(ge=1, le=MAX_PORT, description="Port on the host, 1-65535.")
    container_port: StrictInt = Field(
        ge=1, le=MAX_PORT, description="Port inside the container, 1-65535."
    )
    protocol: PortProtocol = Field(
        default=PortProtocol.TCP, description="Protocol: tcp (default), udp or sctp."
    )


class DockerServer(_Model):
    """An MCP server the agent runtime runs as a Docker container speaking MCP over stdio."""

    image: str = Field(
        min_length=1, max_length=512, description="Container image reference, e.g. ghcr.io/o/x:1."
    )
    args: list[Text] = Field(
        default_factory=list,
        max_length=MAX_ARGS,
        description="Arguments passed to the container; may hold ${VAR} placeholders.",
    )
    env_placeholders: dict[EnvVarName, Text] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description=(
            "Environment of the container, by variable name; values may hold ${VAR} "
            "placeholders that name variables declared in spec.env."
        ),
    )
    volumes: list[VolumeMount] = Field(
        default_factory=list, max_length=MAX_VOLUMES, description="Host paths to mount."
    )
    network: str = Field(
        default="",
        max_length=MAX_DNS_SUBDOMAIN,
        description="Docker network to attach to; empty means the default network.",
    )
    ports: list[PortMapping] = Field(
        default_factory=list, max_length=MAX_PORTS, description="Ports to publish."
    )
    container_name: str = Field(
        default="",
        max_length=MAX_DNS_SUBDOMAIN,
        pattern=CONTAINER_NAME_PATTERN,
        description="Name for the container; empty lets Docker choose.",
    )


_TRANSPORTS: Final = ("stdio", "http", "docker")


class McpServerDefinition(
    _Model,
    json_schema_extra=_cel_extra(
        _cel(
            "[has(self.stdio), has(self.http), has(self.docker)].filter(x, x).size() == 1",
            "spec.mcpServers[]: exactly one of stdio, http or docker must be set",
        )
    ),
):
    """An MCP server the agent may use: a name and exactly one transport."""

    name: DnsLabel = Field(
        description="Name of the server, unique in the Agent; sub-agents refer to it by name."
    )
    stdio: StdioServer | None = Field(
        default=None, description="Run the server as a local process (stdio transport)."
    )
    http: HttpServer | None = Field(
        default=None, description="Reach the server over HTTP (streamable HTTP transport)."
    )
    docker: DockerServer | None = Field(
        default=None, description="Run the server in a Docker container."
    )
    enabled_tools: Annotated[list[ToolName], AfterValidator(_check_unique)] = Field(
        default_factory=list,
        max_length=MAX_TOOLS,
        description="Tools of this server the agent may call; empty means all of them.",
        json_schema_extra=_unique_set_extra(),
    )

    @model_validator(mode="after")
    def _exactly_one_transport(self) -> Self:
        if (self.stdio is None) + (self.http is None) + (self.docker is None) == 2:
            return self  # exactly one set: the common case, without building the report
        # The transports themselves, not a dump of them: only "is it set" matters.
        problem = _transport_problem({name: getattr(self, name) for name in _TRANSPORTS})
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def transport(self) -> StdioServer | HttpServer | DockerServer:
        """The one transport that is set."""
        chosen = self.stdio or self.http or self.docker
        if chosen is None:  # unreachable after validation; keeps the type honest
            raise ValueError(f"MCP server {self.name!r} has no transport")
        return chosen


class SkillRef(_Model):
    """A reference to a skill by slug, optionally in another org and at a version."""

    name: DnsLabel = Field(description="Slug of the skill.")
    org: str = Field(
        default="",
        max_length=MAX_DNS_LABEL,
        pattern=OPTIONAL_DNS_LABEL_PATTERN,
        description="Organization that owns the skill; empty means the Agent's own org.",
    )
    version: str = Field(
        default="",
        max_length=128,
        pattern=VERSION_PATTERN,
        description="Version of the skill; empty means the latest.",
    )


class ToolSelection(_Model):
    """The tools of one MCP server a sub-agent may call."""

    enabled_tools: Annotated[list[ToolName], AfterValidator(_check_unique)] = Field(
        default_factory=list,
        max_length=MAX_TOOLS,
        description=(
            "Tool names; a subset of the server's enabledTools when the parent restricts them. "
            "Empty means every tool the parent allows."
        ),
        json_schema_extra=_unique_set_extra(),
    )


class SubAgent(_Model):
    """An inline sub-agent the agent can delegate to."""

    name: DnsLabel = Field(description="Name of the sub-agent, unique in the Agent.")
    description: str = Field(
        default="",
        max_length=MAX_DESCRIPTION,
        description="What the sub-agent does; the parent reads it to decide when to delegate.",
    )
    instructions: Instructions = Field(
        description=(
            f"System instructions of the sub-agent, at least {MIN_INSTRUCTIONS} characters."
        ),
        json_schema_extra=_cel_extra(
            _cel(
                _INSTRUCTIONS_CEL_RULE,
                f"spec.subAgents[].instructions must be at least {MIN_INSTRUCTIONS} characters",
            )
        ),
    )
    mcp_servers: Annotated[list[DnsLabel], AfterValidator(_check_unique)] = Field(
        default_factory=list,
        max_length=MAX_MCP_SERVERS,
        description="Names of MCP servers, defined in the parent's spec.mcpServers, it may use.",
        json_schema_extra=_unique_set_extra(),
    )
    mcp_tool_selections: dict[DnsLabel, ToolSelection] = Field(
        default_factory=dict,
        max_length=MAX_MCP_SERVERS,
        description="Per MCP server name (of the parent): the tools this sub-agent may call.",
    )
    skill_refs: list[SkillRef] = Field(
        default_factory=list, max_length=MAX_SKILL_REFS, description="Skills of the sub-agent."
    )


class EnvVarDeclaration(_Model):
    """An environment variable the agent needs; ``${NAME}`` placeholders refer to it."""

    name: EnvVarName = Field(description="Variable name, unique in the Agent.")
    description: str = Field(
        default="", max_length=MAX_DESCRIPTION, description="What the variable is for."
    )
    secret: StrictBool = Field(
        default=False, description="The value is sensitive: supply it from a Secret."
    )
    required: StrictBool = Field(
        default=False, description="An AgentInstance must supply a value for it."
    )


_SUB_AGENT_SERVERS_CEL: Final = (
    "!has(self.subAgents) || self.subAgents.all(s, !has(s.mcpServers) || "
    "s.mcpServers.all(n, has(self.mcpServers) && self.mcpServers.exists(m, m.name == n)))"
)
_SUB_AGENT_SELECTIONS_CEL: Final = (
    "!has(self.subAgents) || self.subAgents.all(s, !has(s.mcpToolSelections) || "
    "s.mcpToolSelections.all(n, has(self.mcpServers) && self.mcpServers.exists(m, m.name == n)))"
)


class AgentSpec(
    _Model,
    json_schema_extra=_cel_extra(
        _cel(
            _SUB_AGENT_SERVERS_CEL,
            "spec.subAgents[].mcpServers must name servers defined in spec.mcpServers",
            field_path=".subAgents",
        ),
        _cel(
            _SUB_AGENT_SELECTIONS_CEL,
            "spec.subAgents[].mcpToolSelections keys must name servers defined in spec.mcpServers",
            field_path=".subAgents",
        ),
    ),
):
    """Desired state of an Agent: an AI agent template."""

    display_name: str = Field(
        default="",
        max_length=MAX_DISPLAY_NAME,
        description="Human name; the slug derives from it. Empty means metadata.name.",
    )
    description: str = Field(
        default="", max_length=MAX_DESCRIPTION, description="What the agent does."
    )
    icon_url: Annotated[str, AfterValidator(_check_optional_http_url)] = Field(
        default="",
        max_length=MAX_URL,
        description="URL (http or https) of an icon for the agent.",
        json_schema_extra=_cel_extra(
            _cel(
                f"self == '' || self.matches('{_HTTP_URL_CEL}')",
                "spec.iconUrl must be an http(s) URL with a host",
            )
        ),
    )
    instructions: Instructions = Field(
        description=f"System instructions of the agent, at least {MIN_INSTRUCTIONS} characters.",
        json_schema_extra=_cel_extra(
            _cel(
                _INSTRUCTIONS_CEL_RULE,
                f"spec.instructions must be at least {MIN_INSTRUCTIONS} characters",
            )
        ),
    )
    mcp_servers: list[McpServerDefinition] = Field(
        default_factory=list,
        max_length=MAX_MCP_SERVERS,
        description="MCP servers the agent can use; names are unique.",
        json_schema_extra=_unique_names_cel("spec.mcpServers", "MCP server names"),
    )
    skill_refs: list[SkillRef] = Field(
        default_factory=list, max_length=MAX_SKILL_REFS, description="Skills of the agent."
    )
    sub_agents: list[SubAgent] = Field(
        default_factory=list,
        max_length=MAX_SUB_AGENTS,
        description="Inline sub-agents the agent can delegate to; names are unique.",
        json_schema_extra=_unique_names_cel("spec.subAgents", "sub-agent names"),
    )
    env: list[EnvVarDeclaration] = Field(
        default_factory=list,
        max_length=MAX_ENV,
        description="Environment variables the agent needs; ${NAME} placeholders refer to them.",
        json_schema_extra=_unique_names_cel("spec.env", "environment variable names"),
    )
    scope: Scope = Field(
        default=Scope.ORGANIZATION,
        description="Owner: organization (the default) or platform.",
    )
    sharing: Annotated[list[DnsLabel], AfterValidator(_check_unique)] = Field(
        default_factory=list,
        max_length=MAX_SHARING,
        description="Organizations, other than the owner, allowed to instantiate this Agent.",
        json_schema_extra=_unique_set_extra(),
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        # The rules (and their messages) read a camelCase dump; a spec that
        # surely passes them -- nearly every one -- needs neither.
        if not _surely_passes_agent_rules(self):
            _raise_if_any(_agent_rules(self.model_dump(by_alias=True)))
        return self


class AgentRef(_Model):
    """The Agent an AgentInstance deploys."""

    name: DnsSubdomain = Field(description="metadata.name of the Agent.")
    namespace: str = Field(
        default="",
        max_length=MAX_DNS_LABEL,
        pattern=OPTIONAL_DNS_LABEL_PATTERN,
        description="Namespace of the Agent; empty means the AgentInstance's own namespace.",
    )


class EnvironmentRef(_Model):
    """A Secret or ConfigMap, in the instance's namespace, that supplies environment values."""

    kind: EnvironmentRefKind = Field(description="Secret or ConfigMap.")
    name: DnsSubdomain = Field(description="metadata.name of the Secret or ConfigMap.")


class AgentInstanceSpec(_Model):
    """Desired state of an AgentInstance: a configured deployment of an Agent."""

    agent_ref: AgentRef = Field(
        description="The Agent to deploy; immutable once set.",
        json_schema_extra=_cel_extra(
            _cel(
                "self == oldSelf",
                "spec.agentRef is immutable; create a new AgentInstance to deploy another Agent",
            )
        ),
    )
    display_name: str = Field(
        default="",
        max_length=MAX_DISPLAY_NAME,
        description="Human name; the slug derives from it. Empty means metadata.name.",
    )
    description: str = Field(
        default="", max_length=MAX_DESCRIPTION, description="What this deployment is for."
    )
    environment_refs: list[EnvironmentRef] = Field(
        default_factory=list,
        max_length=MAX_ENVIRONMENT_REFS,
        description="Secrets and ConfigMaps that supply the Agent's environment; unique.",
        json_schema_extra=_cel_extra(
            _cel(
                "self.all(x, self.exists_one(y, y.kind == x.kind && y.name == x.name))",
                "spec.environmentRefs must not name the same Secret or ConfigMap twice",
            )
        ),
    )
    scope: Scope = Field(
        default=Scope.ORGANIZATION,
        description="Owner: organization (the default) or platform.",
    )

    @model_validator(mode="after")
    def _unique_environment_refs(self) -> Self:
        _raise_if_any(_agent_instance_rules(self.model_dump(by_alias=True, mode="json")))
        return self


# --------------------------------------------------------------------------
# Status (written by the operator; modelled here so the CRD schema is complete)
# --------------------------------------------------------------------------


class Condition(_Model):
    """The state of one aspect of the resource, in the shape of metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of the condition in CamelCase, e.g. Ready or Accepted.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: int = Field(
        default=0,
        ge=0,
        description="metadata.generation the condition was set for.",
        json_schema_extra={"format": "int64"},
    )
    last_transition_time: datetime = Field(
        description="When the status last changed from one value to another."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="CamelCase reason for the last transition.",
    )
    message: str = Field(max_length=32768, description="Human-readable details.")


class StatusAudit(_Model):
    """When the operator accepted the resource, and what happened last."""

    created_at: datetime | None = Field(
        default=None, description="When the operator first stored the resource."
    )
    updated_at: datetime | None = Field(
        default=None, description="When the operator last stored a change."
    )
    event: str = Field(
        default="", max_length=32, description="The last change: created, updated or deleted."
    )


_CONDITIONS_LIST_EXTRA: Final[dict[str, Any]] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


def _conditions_field() -> Any:
    return Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description="Observations of the resource's state; Ready is always present.",
        json_schema_extra=_CONDITIONS_LIST_EXTRA,
    )


def _observed_generation_field() -> Any:
    return Field(
        default=0,
        ge=0,
        description="metadata.generation the status was computed for.",
        json_schema_extra={"format": "int64"},
    )


class AgentStatus(_Model):
    """Observed state of an Agent, written by the operator."""

    observed_generation: int = _observed_generation_field()
    id: str = Field(default="", max_length=64, description="Stable id (agt-...); never changes.")
    slug: str = Field(
        default="", max_length=MAX_DNS_LABEL, description="URL-safe slug, unique per org."
    )
    conditions: list[Condition] = _conditions_field()
    default_instance_id: str = Field(
        default="", max_length=64, description="Id (ain-...) of the default AgentInstance."
    )
    default_instance_name: str = Field(
        default="",
        max_length=MAX_DNS_SUBDOMAIN,
        description="metadata.name of the default AgentInstance.",
    )
    audit: StatusAudit | None = Field(default=None, description="Creation and update times.")


class AgentInstanceStatus(_Model):
    """Observed state of an AgentInstance, written by the operator."""

    observed_generation: int = _observed_generation_field()
    id: str = Field(default="", max_length=64, description="Stable id (ain-...); never changes.")
    slug: str = Field(
        default="", max_length=MAX_DNS_LABEL, description="URL-safe slug, unique per org."
    )
    agent_id: str = Field(
        default="", max_length=64, description="Id (agt-...) of the resolved Agent."
    )
    service_account_name: str = Field(
        default="",
        max_length=MAX_DNS_SUBDOMAIN,
        description="ServiceAccount that may read exactly the referenced Secrets/ConfigMaps.",
    )
    conditions: list[Condition] = _conditions_field()
    audit: StatusAudit | None = Field(default=None, description="Creation and update times.")


# --------------------------------------------------------------------------
# Cross-field rules
#
# The rules read camelCase dicts, not models, and tolerate malformed input:
# the model validators run them on a model's own dump, and validate_spec also
# runs them on the raw spec when pydantic stopped early (a parent validator
# never runs once a child field failed), so every violation is reported in
# one pass, not one per apply.
# --------------------------------------------------------------------------

Found: TypeAlias = tuple[Loc, str]


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


def _transport_problem(server: Mapping[str, Any]) -> str | None:
    chosen = [name for name in _TRANSPORTS if server.get(name) is not None]
    if len(chosen) == 1:
        return None
    found = "none" if not chosen else " and ".join(chosen)
    return f"exactly one of stdio, http or docker must be set (found {found})"


def _agent_rules(spec: object) -> Iterator[Found]:
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


def _agent_instance_rules(spec: object) -> Iterator[Found]:
    refs = [
        (index, (ref.get("kind"), ref.get("name")))
        for index, ref in _items(spec, "environmentRefs")
        if isinstance(ref.get("kind"), str) and isinstance(ref.get("name"), str)
    ]
    for position, seen in _duplicates(refs, lambda pair: pair[1]):
        index, (kind, name) = refs[position]
        yield (
            ("environmentRefs", index),
            f"duplicate reference to {kind} {name!r} "
            f"(same as spec.environmentRefs[{refs[seen][0]}])",
        )


def _transport_violations(servers: list[tuple[int, Mapping[str, Any]]]) -> Iterator[Found]:
    for index, server in servers:
        problem = _transport_problem(server)
        if problem is not None:
            yield ("mcpServers", index), problem


def _duplicate_names(
    items: list[tuple[int, Mapping[str, Any]]], field: str, what: str
) -> Iterator[Found]:
    named = _names_of(items)
    if len({name for _, name in named}) == len(named):  # no duplicates: the common case
        return
    for position, seen in _duplicates(named, lambda pair: pair[1]):
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
        for transport in _TRANSPORTS:
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
        if _PLACEHOLDER_START in value:
            found.append((loc, value))
    elif _is_mapping(value):
        for key, item in value.items():
            if isinstance(item, str):
                if _PLACEHOLDER_START in item:
                    found.append(((*loc, str(key)), item))
            elif isinstance(item, list) or _is_mapping(item):
                _placeholder_strings(item, (*loc, str(key)), found)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            if isinstance(item, str):
                if _PLACEHOLDER_START in item:
                    found.append(((*loc, position), item))
            elif isinstance(item, list) or _is_mapping(item):
                _placeholder_strings(item, (*loc, position), found)


def _surely_passes_agent_rules(spec: AgentSpec) -> bool:
    """True only if :func:`_agent_rules` of the spec's dump would find nothing.

    A shortcut on the model's own attributes for the common case, not a second
    copy of the rules: ``False`` means "ask the rules", which then report
    whatever they find (with their messages). Anything unexpected -- a name
    that is not a string, a duplicate, an unknown reference, a placeholder not
    declared -- answers ``False``.
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
            if allowed is None or not isinstance(selection, ToolSelection):
                return False
            if allowed and not all(tool in allowed for tool in selection.enabled_tools):
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
    return _PLACEHOLDER_START not in text or declared.issuperset(PLACEHOLDER_RE.findall(text))


# --------------------------------------------------------------------------
# validate_spec: pydantic errors -> violations with CR paths
# --------------------------------------------------------------------------

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
    return _validate(AgentSpec, _agent_rules, raw)


def validate_agent_instance_spec(raw: Mapping[str, Any]) -> AgentInstanceSpec:
    """:func:`validate_spec` for an AgentInstance, typed."""
    return _validate(AgentInstanceSpec, _agent_instance_rules, raw)


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
        if isinstance(nested, _RuleViolations):
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
