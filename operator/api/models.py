"""The validation contract: pydantic models of the Agent and AgentInstance specs.

Why pydantic next to protobuf: the ``.proto`` files are the *storage*
contract (what RocksDB holds, field numbers forever), but they cannot say
"at least 10 characters", "exactly one transport" or "this placeholder names
a declared variable". These models say it, in one place, and are the source
of the CRD schema (:mod:`stigmer_operator.api.crdgen`), so ``kubectl
explain``, apply-time schema/CEL checks and the operator's own
``ValidateFieldConstraints`` step all read the same rules.

The bounds and patterns the fields use are in :mod:`.limits`, the rules
across fields in :mod:`.rules`, the entry point that turns pydantic's
errors into violations with CR paths in :mod:`.validation`, and the status
the operator writes in :mod:`.status`.

Conventions:

* Field names are snake_case in Python and camelCase on the wire (the
  protobuf JSON names); either is accepted on input.
* Optional scalars default to their protobuf zero value (``""``, ``False``,
  ``0``) and "zero" means "unset", exactly as in proto3. That keeps
  CR -> model -> proto -> model lossless (see :mod:`~.convert`).
* Every field has a ``description``: it becomes ``kubectl explain`` text.
* Rules CEL can also express carry their ``x-kubernetes-validations`` next
  to the pydantic rule (``json_schema_extra``), so both stay in step.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)
from pydantic.alias_generators import to_camel

from stigmer_operator.api.limits import (
    ABSOLUTE_PATH_PATTERN,
    CONTAINER_NAME_PATTERN,
    HTTP_URL_CEL,
    MAX_ARGS,
    MAX_DESCRIPTION,
    MAX_DISPLAY_NAME,
    MAX_DNS_LABEL,
    MAX_DNS_SUBDOMAIN,
    MAX_ENV,
    MAX_ENVIRONMENT_REFS,
    MAX_MAP_ENTRIES,
    MAX_MCP_SERVERS,
    MAX_PATH,
    MAX_PORT,
    MAX_PORTS,
    MAX_SHARING,
    MAX_SKILL_REFS,
    MAX_SUB_AGENTS,
    MAX_TIMEOUT_SECONDS,
    MAX_TOOLS,
    MAX_URL,
    MAX_VOLUMES,
    MIN_INSTRUCTIONS,
    OPTIONAL_DNS_LABEL_PATTERN,
    VERSION_PATTERN,
    DnsLabel,
    DnsSubdomain,
    EnvVarName,
    HeaderName,
    Instructions,
    OptionalHttpUrl,
    ParamName,
    TemplatedHttpUrl,
    Text,
    ToolName,
)
from stigmer_operator.api.rules import (
    TRANSPORTS,
    agent_instance_rules,
    agent_rules,
    duplicates,
    raise_if_any,
    surely_passes_agent_rules,
    transport_problem,
)

__all__ = [
    "AgentInstanceSpec",
    "AgentRef",
    "AgentSpec",
    "ApiModel",
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
    "StdioServer",
    "SubAgent",
    "ToolSelection",
    "VolumeMount",
]


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
# Schema helpers and list validators
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


def _check_unique(items: list[str]) -> list[str]:
    if len(set(items)) == len(items):  # the common case, without building the report
        return items
    raise_if_any(
        ((index,), f"duplicate entry {items[index]!r} (first at index {seen})")
        for index, seen in duplicates(items, str)
    )
    return items


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


class ApiModel(BaseModel):
    """Shared configuration: camelCase aliases, unknown fields refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class StdioServer(ApiModel):
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


class HttpServer(ApiModel):
    """A remote MCP server reached over streamable HTTP."""

    url: TemplatedHttpUrl = Field(
        min_length=1,
        max_length=MAX_URL,
        description="Endpoint URL (http or https, with a host); may hold ${VAR} placeholders.",
        json_schema_extra=_cel_extra(
            _cel(
                f"self.matches('{HTTP_URL_CEL}')",
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


class VolumeMount(ApiModel):
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


class PortMapping(ApiModel):
    """A container port published on the host."""

    host_port: StrictInt = Field(ge=1, le=MAX_PORT, description="Port on the host, 1-65535.")
    container_port: StrictInt = Field(
        ge=1, le=MAX_PORT, description="Port inside the container, 1-65535."
    )
    protocol: PortProtocol = Field(
        default=PortProtocol.TCP, description="Protocol: tcp (default), udp or sctp."
    )


class DockerServer(ApiModel):
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


class McpServerDefinition(
    ApiModel,
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
        problem = transport_problem({name: getattr(self, name) for name in TRANSPORTS})
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


class SkillRef(ApiModel):
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


class ToolSelection(ApiModel):
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


class SubAgent(ApiModel):
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


class EnvVarDeclaration(ApiModel):
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
    ApiModel,
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
    icon_url: OptionalHttpUrl = Field(
        default="",
        max_length=MAX_URL,
        description="URL (http or https) of an icon for the agent.",
        json_schema_extra=_cel_extra(
            _cel(
                f"self == '' || self.matches('{HTTP_URL_CEL}')",
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
        if not surely_passes_agent_rules(self):
            raise_if_any(agent_rules(self.model_dump(by_alias=True)))
        return self


class AgentRef(ApiModel):
    """The Agent an AgentInstance deploys."""

    name: DnsSubdomain = Field(description="metadata.name of the Agent.")
    namespace: str = Field(
        default="",
        max_length=MAX_DNS_LABEL,
        pattern=OPTIONAL_DNS_LABEL_PATTERN,
        description="Namespace of the Agent; empty means the AgentInstance's own namespace.",
    )


class EnvironmentRef(ApiModel):
    """A Secret or ConfigMap, in the instance's namespace, that supplies environment values."""

    kind: EnvironmentRefKind = Field(description="Secret or ConfigMap.")
    name: DnsSubdomain = Field(description="metadata.name of the Secret or ConfigMap.")


class AgentInstanceSpec(ApiModel):
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
        raise_if_any(agent_instance_rules(self.model_dump(by_alias=True, mode="json")))
        return self
