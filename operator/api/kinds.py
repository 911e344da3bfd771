"""The two custom resources, named once.

Every module that needs a kind's API group, plural, id prefix or protobuf
enum value reads it from :class:`Kind`, so a rename touches one file.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2, store_pb2

GROUP = "agentic.stigmer.ai"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Label naming the owning org when it is not the namespace.
ORG_LABEL = f"{GROUP}/org"
#: Label (value ``"true"``) on the AgentInstance an Agent creates as its default.
DEFAULT_INSTANCE_LABEL = f"{GROUP}/default-instance"

Resource: TypeAlias = agent_pb2.Agent | agent_instance_pb2.AgentInstance


class Kind(enum.StrEnum):
    """A custom resource kind served by the operator."""

    AGENT = "Agent"
    AGENT_INSTANCE = "AgentInstance"

    @property
    def plural(self) -> str:
        return _PLURALS[self]

    @property
    def short_name(self) -> str:
        return _SHORT_NAMES[self]

    @property
    def id_prefix(self) -> str:
        """Prefix of the stable ids: ``agt-`` or ``ain-``."""
        return _ID_PREFIXES[self]

    @property
    def proto_kind(self) -> store_pb2.ResourceKind.ValueType:
        return _PROTO_KINDS[self]

    @property
    def message_type(self) -> type[Resource]:
        return _MESSAGE_TYPES[self]

    @classmethod
    def of(cls, resource: Resource) -> Kind:
        """The kind of a protobuf resource message."""
        if isinstance(resource, agent_pb2.Agent):
            return cls.AGENT
        return cls.AGENT_INSTANCE

    @classmethod
    def from_proto(cls, value: store_pb2.ResourceKind.ValueType) -> Kind:
        for kind, proto_value in _PROTO_KINDS.items():
            if proto_value == value:
                return kind
        raise ValueError(f"unknown resource kind {value}")

    @classmethod
    def parse(cls, text: str) -> Kind:
        """Accept ``Agent``, ``agents``, ``ag``, ``agentinstance``, ``agi``, ... (any case)."""
        lowered = text.lower()
        for kind in cls:
            if lowered in {kind.value.lower(), kind.plural, kind.short_name}:
                return kind
        names = ", ".join(k.value for k in cls)
        raise ValueError(f"unknown kind {text!r}; expected one of {names}")


_PLURALS = {Kind.AGENT: "agents", Kind.AGENT_INSTANCE: "agentinstances"}
_SHORT_NAMES = {Kind.AGENT: "ag", Kind.AGENT_INSTANCE: "agi"}
_ID_PREFIXES = {Kind.AGENT: "agt-", Kind.AGENT_INSTANCE: "ain-"}
_PROTO_KINDS = {
    Kind.AGENT: store_pb2.RESOURCE_KIND_AGENT,
    Kind.AGENT_INSTANCE: store_pb2.RESOURCE_KIND_AGENT_INSTANCE,
}
_MESSAGE_TYPES: dict[Kind, type[Resource]] = {
    Kind.AGENT: agent_pb2.Agent,
    Kind.AGENT_INSTANCE: agent_instance_pb2.AgentInstance,
}

#: (group, version, plural) of each kind, as kopf's handler decorators take them.
AGENTS = (GROUP, VERSION, Kind.AGENT.plural)
INSTANCES = (GROUP, VERSION, Kind.AGENT_INSTANCE.plural)
