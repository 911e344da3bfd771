"""Bounds and formats of spec values, and the constrained types that carry them.

Every string and list in a spec is bounded: the API server's CEL cost
estimator needs maxLength/maxItems, and an unbounded spec is a denial of
service waiting to happen. The numbers and patterns live here, once, with
what each pattern means in words; the models (:mod:`.models`) use them as
field constraints, the CRD schema (:mod:`.crdgen`) inherits them from the
models, and :mod:`.validation` turns a broken pattern into its meaning.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import AfterValidator, Field

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
#: What every match of ``PLACEHOLDER_RE`` starts with (a cheap pre-check).
PLACEHOLDER_START: Final = "${"

_HTTP_URL_RE: Final = re.compile(r"^https?://[^\s/?#]+([/?#]\S*)?$")
#: CEL twin of ``_HTTP_URL_RE`` (no ``\s`` so the rule needs no escaping).
HTTP_URL_CEL: Final = "^https?://[^ /?#]+([/?#].*)?$"


# --------------------------------------------------------------------------
# Value checks and constrained types
# --------------------------------------------------------------------------


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

#: An http(s) URL with a host, or empty.
OptionalHttpUrl = Annotated[str, AfterValidator(_check_optional_http_url)]
#: An http(s) URL with a host once each ``${VAR}`` placeholder is filled in.
TemplatedHttpUrl = Annotated[str, AfterValidator(_check_templated_http_url)]
