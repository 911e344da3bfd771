"""Converters between CR dicts, the pydantic models and the protobuf messages.

Why this is short: the models' field names *are* the protobuf field names
(snake_case in Python, camelCase -- the protobuf JSON names -- on the wire;
``tests/unit/api/test_roundtrip.py`` proves the models and the messages
agree field by field), so the structural work is done by protobuf itself:

* model -> proto: the message's keyword constructor takes the model's
  (snake_case) dump as is -- nested messages as dicts, repeated fields as
  lists, maps as dicts -- in C, about ten times faster than
  ``json_format.ParseDict`` (this conversion is on every reconcile's hot
  path). Only enum values need a word: a descriptor-derived
  :class:`_Plan` maps each model enum to its protobuf number and checks
  that at most one member of each ``oneof`` is set (as ``ParseDict`` did).
* proto -> model: protobuf's JSON mapping, with the enum spellings
  (``platform`` in a CR, ``OWNER_SCOPE_PLATFORM`` in protobuf JSON) from
  :data:`_ENUM_SPELLINGS`, applied by a descriptor-guided walk.

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
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec, EnvironmentRefKind, Scope
from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2, resource_pb2
from stigmer_operator.api.validation import validate_agent_instance_spec, validate_agent_spec

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
    return agent_pb2.AgentSpec(**_proto_fields(spec, _AGENT_SPEC_PLAN))


def agent_spec_from_proto(message: agent_pb2.AgentSpec) -> AgentSpec:
    """A stored Agent spec as a model; raises ``SpecInvalid`` if it breaks today's rules."""
    return validate_agent_spec(_from_proto_json(message))


def agent_instance_spec_to_proto(spec: AgentInstanceSpec) -> agent_instance_pb2.AgentInstanceSpec:
    """The storage form of a validated AgentInstance spec."""
    return agent_instance_pb2.AgentInstanceSpec(**_proto_fields(spec, _AGENT_INSTANCE_SPEC_PLAN))


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
# model -> proto: keyword construction, guided by a per-message plan
# --------------------------------------------------------------------------

#: Per protobuf enum (full name): model enum value -> protobuf number.
_ENUM_NUMBERS: Final[Mapping[str, Mapping[str, int]]] = {
    resource_pb2.OwnerScope.DESCRIPTOR.full_name: {str(k): v for k, v in _SCOPES.items()},
    agent_instance_pb2.EnvironmentRefKind.DESCRIPTOR.full_name: {
        str(k): v for k, v in _ENVIRONMENT_REF_KINDS.items()
    },
}

_SINGULAR, _REPEATED, _MAP = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a model dump of one message type needs before the constructor takes it.

    Only the fields that need a step are listed: enums (the model's value ->
    the protobuf number, by ``shape``: one value, a list, or map values) and
    message fields whose type needs a step itself. ``oneofs`` lists the
    member names of each ``oneof``: at most one may be set.
    """

    enums: tuple[tuple[str, int, Mapping[str, int], str], ...]
    messages: tuple[tuple[str, int, _Plan], ...]
    oneofs: tuple[tuple[str, ...], ...]
    name: str

    @property
    def empty(self) -> bool:
        return not (self.enums or self.messages or self.oneofs)


def _shape(field: FieldDescriptor) -> tuple[int, FieldDescriptor]:
    """The field's shape, and the descriptor of its values (a map's ``value`` field)."""
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        return _MAP, message_type.fields_by_name["value"]
    return (_REPEATED if field.is_repeated else _SINGULAR), field


def _plan(descriptor: Descriptor) -> _Plan:
    enums: list[tuple[str, int, Mapping[str, int], str]] = []
    messages: list[tuple[str, int, _Plan]] = []
    for field in descriptor.fields:
        shape, value_field = _shape(field)
        if value_field.enum_type is not None:
            name = value_field.enum_type.full_name
            enums.append((field.name, shape, _ENUM_NUMBERS[name], name))
        elif value_field.message_type is not None:
            nested = _plan(value_field.message_type)
            if not nested.empty:
                messages.append((field.name, shape, nested))
    oneofs = tuple(tuple(field.name for field in oneof.fields) for oneof in descriptor.oneofs)
    return _Plan(tuple(enums), tuple(messages), oneofs, descriptor.full_name)


def _enum_number(table: Mapping[str, int], enum_name: str, value: Any) -> int:
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"{value!r} has no {enum_name} value") from None


def _prepare(data: dict[str, Any], plan: _Plan) -> dict[str, Any]:
    """Apply ``plan`` to one message's dump, in place (the dump is ours); returns it."""
    for members in plan.oneofs:
        chosen = [name for name in members if name in data]
        if len(chosen) > 1:
            raise ValueError(f"{plan.name}: more than one of {', '.join(chosen)} is set")
    for name, shape, table, enum_name in plan.enums:
        if name not in data:
            continue
        value = data[name]
        if shape == _SINGULAR:
            data[name] = _enum_number(table, enum_name, value)
        elif shape == _REPEATED:
            data[name] = [_enum_number(table, enum_name, item) for item in value]
        else:
            data[name] = {k: _enum_number(table, enum_name, v) for k, v in value.items()}
    for name, shape, nested in plan.messages:
        value = data.get(name)
        if not value:
            continue
        if shape == _SINGULAR:
            _prepare(value, nested)
        elif shape == _REPEATED:
            for item in value:
                _prepare(item, nested)
        else:
            for item in value.values():
                _prepare(item, nested)
    return data


def _proto_fields(spec: AgentSpec | AgentInstanceSpec, plan: _Plan) -> dict[str, Any]:
    """The keyword arguments of the spec's message: its snake_case dump, enums as numbers.

    ``exclude_none`` leaves unset ``oneof`` members (the MCP transports) out,
    so exactly the chosen one is set. Everything else is written, defaults
    included, as before (proto3 does not tell them apart).
    """
    return _prepare(spec.model_dump(exclude_none=True), plan)


_AGENT_SPEC_PLAN: Final = _plan(agent_pb2.AgentSpec.DESCRIPTOR)
_AGENT_INSTANCE_SPEC_PLAN: Final = _plan(agent_instance_pb2.AgentInstanceSpec.DESCRIPTOR)


# --------------------------------------------------------------------------
# proto -> model: the enum-spelling walk over protobuf JSON
# --------------------------------------------------------------------------


def _from_proto_json(message: agent_pb2.AgentSpec | agent_instance_pb2.AgentInstanceSpec) -> Any:
    return _respell(json_format.MessageToDict(message), message.DESCRIPTOR, _ENUM_READINGS)


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
