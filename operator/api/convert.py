"""Converters between CR dicts, the pydantic models and the protobuf messages.

Why this is short: a CR's camelCase field names *are* the protobuf JSON
names (``tests/unit/api/test_roundtrip.py`` proves the models and the
messages agree field by field), so protobuf's own JSON mapping does the
structural work. The one thing it cannot know is how an enum is spelled on
each side (``platform`` in a CR, ``OWNER_SCOPE_PLATFORM`` in protobuf JSON);
:data:`_ENUM_SPELLINGS` holds that, and a descriptor-guided walk applies it.

Defaults policy:

* model -> proto writes every field, so a stored message always carries an
  explicit ``scope`` (``OWNER_SCOPE_ORGANIZATION``, never ``UNSPECIFIED``).
* proto -> model reads proto3 zero values as "unset": the model default
  applies (``OWNER_SCOPE_UNSPECIFIED`` reads as ``organization``).
* :func:`spec_to_cr` returns the *canonical minimal* CR spec: fields equal
  to their default are omitted (like protobuf JSON). The CRD schema
  re-applies ``scope: organization`` and ``protocol: tcp`` server-side, so
  compare models, not dicts, against what the API server returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from stigmer_operator.api.models import (
    AgentInstanceSpec,
    AgentSpec,
    EnvironmentRefKind,
    Scope,
    validate_agent_instance_spec,
    validate_agent_spec,
)
from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2, resource_pb2

__all__ = [
    "agent_instance_spec_from_proto",
    "agent_instance_spec_to_proto",
    "agent_spec_from_proto",
    "agent_spec_to_proto",
    "environment_ref_kind_from_proto",
    "environment_ref_kind_to_proto",
    "scope_from_proto",
    "scope_to_proto",
    "spec_from_proto",
    "spec_to_cr",
    "spec_to_proto",
]

_SCOPES: Final[Mapping[Scope, resource_pb2.OwnerScope.ValueType]] = {
    Scope.ORGANIZATION: resource_pb2.OWNER_SCOPE_ORGANIZATION,
    Scope.PLATFORM: resource_pb2.OWNER_SCOPE_PLATFORM,
}
_ENVIRONMENT_REF_KINDS: Final[
    Mapping[EnvironmentRefKind, agent_instance_pb2.EnvironmentRefKind.ValueType]
] = {
    EnvironmentRefKind.SECRET: agent_instance_pb2.ENVIRONMENT_REF_KIND_SECRET,
    EnvironmentRefKind.CONFIG_MAP: agent_instance_pb2.ENVIRONMENT_REF_KIND_CONFIG_MAP,
}


def scope_to_proto(scope: Scope) -> resource_pb2.OwnerScope.ValueType:
    """``organization`` -> ``OWNER_SCOPE_ORGANIZATION``; ``platform`` -> ``..._PLATFORM``."""
    return _SCOPES[scope]


def scope_from_proto(value: resource_pb2.OwnerScope.ValueType) -> Scope:
    """The inverse of :func:`scope_to_proto`; ``UNSPECIFIED`` reads as the default, organization."""
    for scope, proto_value in _SCOPES.items():
        if proto_value == value:
            return scope
    if value == resource_pb2.OWNER_SCOPE_UNSPECIFIED:
        return Scope.ORGANIZATION
    raise ValueError(f"unknown OwnerScope value {value}")


def environment_ref_kind_to_proto(
    kind: EnvironmentRefKind,
) -> agent_instance_pb2.EnvironmentRefKind.ValueType:
    """``Secret`` -> ``ENVIRONMENT_REF_KIND_SECRET``, ``ConfigMap`` -> ``..._CONFIG_MAP``."""
    return _ENVIRONMENT_REF_KINDS[kind]


def environment_ref_kind_from_proto(
    value: agent_instance_pb2.EnvironmentRefKind.ValueType,
) -> EnvironmentRefKind:
    """The inverse of :func:`environment_ref_kind_to_proto`; ``UNSPECIFIED`` has no meaning."""
    for kind, proto_value in _ENVIRONMENT_REF_KINDS.items():
        if proto_value == value:
            return kind
    raise ValueError(f"EnvironmentRefKind value {value} names neither Secret nor ConfigMap")


def _spellings(
    table: Mapping[Scope, resource_pb2.OwnerScope.ValueType]
    | Mapping[EnvironmentRefKind, agent_instance_pb2.EnvironmentRefKind.ValueType],
    descriptor: EnumDescriptor,
) -> dict[str, str]:
    return {str(cr): descriptor.values_by_number[proto].name for cr, proto in table.items()}


#: Per protobuf enum (full name): CR spelling -> protobuf JSON spelling.
_ENUM_SPELLINGS: Final[Mapping[str, Mapping[str, str]]] = {
    resource_pb2.OwnerScope.DESCRIPTOR.full_name: _spellings(
        _SCOPES, resource_pb2.OwnerScope.DESCRIPTOR
    ),
    agent_instance_pb2.EnvironmentRefKind.DESCRIPTOR.full_name: _spellings(
        _ENVIRONMENT_REF_KINDS, agent_instance_pb2.EnvironmentRefKind.DESCRIPTOR
    ),
}
_ENUM_READINGS: Final[Mapping[str, Mapping[str, str]]] = {
    name: {proto: cr for cr, proto in spellings.items()}
    for name, spellings in _ENUM_SPELLINGS.items()
}


# --------------------------------------------------------------------------
# Public converters
# --------------------------------------------------------------------------


def agent_spec_to_proto(spec: AgentSpec) -> agent_pb2.AgentSpec:
    """The storage form of a validated Agent spec."""
    message = agent_pb2.AgentSpec()
    json_format.ParseDict(_to_proto_json(_full_dump(spec), message.DESCRIPTOR), message)
    return message


def agent_spec_from_proto(message: agent_pb2.AgentSpec) -> AgentSpec:
    """A stored Agent spec as a model; raises ``SpecInvalid`` if it breaks today's rules."""
    return validate_agent_spec(_from_proto_json(message))


def agent_instance_spec_to_proto(spec: AgentInstanceSpec) -> agent_instance_pb2.AgentInstanceSpec:
    """The storage form of a validated AgentInstance spec."""
    message = agent_instance_pb2.AgentInstanceSpec()
    json_format.ParseDict(_to_proto_json(_full_dump(spec), message.DESCRIPTOR), message)
    return message


def agent_instance_spec_from_proto(
    message: agent_instance_pb2.AgentInstanceSpec,
) -> AgentInstanceSpec:
    """A stored AgentInstance spec as a model; raises ``SpecInvalid`` if it breaks the rules."""
    return validate_agent_instance_spec(_from_proto_json(message))


def spec_to_proto(
    spec: AgentSpec | AgentInstanceSpec,
) -> agent_pb2.AgentSpec | agent_instance_pb2.AgentInstanceSpec:
    """:func:`agent_spec_to_proto` or :func:`agent_instance_spec_to_proto`, by type."""
    if isinstance(spec, AgentSpec):
        return agent_spec_to_proto(spec)
    return agent_instance_spec_to_proto(spec)


def spec_from_proto(
    message: agent_pb2.AgentSpec | agent_instance_pb2.AgentInstanceSpec,
) -> AgentSpec | AgentInstanceSpec:
    """:func:`agent_spec_from_proto` or :func:`agent_instance_spec_from_proto`, by type."""
    if isinstance(message, agent_pb2.AgentSpec):
        return agent_spec_from_proto(message)
    return agent_instance_spec_from_proto(message)


def spec_to_cr(spec: AgentSpec | AgentInstanceSpec) -> dict[str, Any]:
    """The canonical minimal CR ``spec``: camelCase, fields at their default omitted.

    JSON-ready (enums as their CR strings). ``validate_spec`` of the result
    gives back an equal model.
    """
    return spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)


# --------------------------------------------------------------------------
# The enum-spelling walk
# --------------------------------------------------------------------------


def _full_dump(spec: AgentSpec | AgentInstanceSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def _from_proto_json(message: agent_pb2.AgentSpec | agent_instance_pb2.AgentInstanceSpec) -> Any:
    return _respell(json_format.MessageToDict(message), message.DESCRIPTOR, _ENUM_READINGS)


def _to_proto_json(cr: Mapping[str, Any], descriptor: Descriptor) -> Any:
    return _respell(cr, descriptor, _ENUM_SPELLINGS)


def _respell(
    value: Mapping[str, Any], descriptor: Descriptor, table: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """A copy of a JSON object of message ``descriptor`` with enum values respelled."""
    fields = descriptor.fields_by_camelcase_name
    return {
        key: _respell_field(item, fields[key], table) if key in fields else item
        for key, item in value.items()
    }


def _respell_field(
    value: Any, field: FieldDescriptor, table: Mapping[str, Mapping[str, str]]
) -> Any:
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        value_field = message_type.fields_by_name["value"]
        return {key: _respell_value(item, value_field, table) for key, item in value.items()}
    if field.is_repeated:
        return [_respell_value(item, field, table) for item in value]
    return _respell_value(value, field, table)


def _respell_value(
    value: Any, field: FieldDescriptor, table: Mapping[str, Mapping[str, str]]
) -> Any:
    if field.enum_type is not None:
        spellings = table.get(field.enum_type.full_name, {})
        return spellings.get(value, value)
    if field.message_type is not None:
        return _respell(value, field.message_type, table)
    return value
