"""CR dict -> model -> protobuf -> model -> CR dict is lossless, and the
pydantic models (validation contract) and the protobuf messages (storage
contract) agree field by field.

The agreement test is what lets :mod:`stigmer_operator.api.convert` lean on
protobuf's JSON mapping: a field added to one side only fails here, before
it can be silently dropped on the way to the store.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel

from stigmer_operator.api.convert import (
    agent_instance_spec_from_proto,
    agent_instance_spec_to_proto,
    agent_spec_from_proto,
    agent_spec_to_proto,
    environment_ref_kind_from_proto,
    environment_ref_kind_to_proto,
    scope_from_proto,
    scope_to_proto,
    spec_from_proto,
    spec_to_cr,
    spec_to_proto,
)
from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec, EnvironmentRefKind, Scope
from stigmer_operator.api.status import AgentInstanceStatus, AgentStatus, StatusAudit
from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2, resource_pb2
from stigmer_operator.api.validation import (
    SpecInvalid,
    validate_agent_instance_spec,
    validate_agent_spec,
)

from .specs import agent_instance_spec, agent_spec
from .strategies import agent_instance_specs, agent_specs

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(agent_specs())
def test_agent_spec_round_trip(raw: dict[str, Any]) -> None:
    model = validate_agent_spec(raw)

    message = agent_spec_to_proto(model)
    stored = agent_pb2.AgentSpec.FromString(message.SerializeToString(deterministic=True))
    back = agent_spec_from_proto(stored)

    assert back == model
    assert spec_to_cr(back) == spec_to_cr(model)
    assert validate_agent_spec(spec_to_cr(model)) == model


@PROPERTY_SETTINGS
@given(agent_instance_specs())
def test_agent_instance_spec_round_trip(raw: dict[str, Any]) -> None:
    model = validate_agent_instance_spec(raw)

    message = agent_instance_spec_to_proto(model)
    stored = agent_instance_pb2.AgentInstanceSpec.FromString(message.SerializeToString())
    back = agent_instance_spec_from_proto(stored)

    assert back == model
    assert spec_to_cr(back) == spec_to_cr(model)
    assert validate_agent_instance_spec(spec_to_cr(model)) == model


def test_full_agent_spec_round_trip_keeps_every_value() -> None:
    model = validate_agent_spec(agent_spec())

    back = agent_spec_from_proto(agent_spec_to_proto(model))

    expected = agent_spec()
    del expected["scope"]  # the default: canonical CRs omit it
    assert spec_to_cr(back) == expected


def test_full_agent_instance_spec_round_trip_keeps_every_value() -> None:
    model = validate_agent_instance_spec(agent_instance_spec())

    back = agent_instance_spec_from_proto(agent_instance_spec_to_proto(model))

    expected = agent_instance_spec()
    del expected["scope"]
    assert spec_to_cr(back) == expected


def test_proto_values_use_protobuf_names_and_enums() -> None:
    message = agent_spec_to_proto(validate_agent_spec(agent_spec()))

    assert message.mcp_servers[0].stdio.env_placeholders["GITHUB_PERSONAL_ACCESS_TOKEN"] == (
        "${GITHUB_TOKEN}"
    )
    assert message.mcp_servers[1].WhichOneof("transport") == "http"
    assert message.mcp_servers[1].http.timeout_seconds == 30
    assert message.mcp_servers[2].docker.ports[0].protocol == "udp"
    assert list(message.sub_agents[0].mcp_tool_selections["github"].enabled_tools) == [
        "get_file_contents"
    ]
    assert message.scope == resource_pb2.OWNER_SCOPE_ORGANIZATION
    instance = agent_instance_spec_to_proto(validate_agent_instance_spec(agent_instance_spec()))
    assert instance.environment_refs[1].kind == agent_instance_pb2.ENVIRONMENT_REF_KIND_CONFIG_MAP


def test_stored_unspecified_scope_reads_as_organization() -> None:
    message = agent_pb2.AgentSpec(instructions="Answer questions politely.")

    assert agent_spec_from_proto(message).scope is Scope.ORGANIZATION


def test_platform_scope_survives() -> None:
    model = validate_agent_spec({"instructions": "Answer questions.", "scope": "platform"})

    assert agent_spec_to_proto(model).scope == resource_pb2.OWNER_SCOPE_PLATFORM
    assert spec_to_cr(model)["scope"] == "platform"


def test_invalid_stored_spec_is_reported_like_a_cr() -> None:
    message = agent_pb2.AgentSpec(instructions="short")

    with pytest.raises(SpecInvalid, match=r"^spec.instructions: must be at least 10 characters"):
        agent_spec_from_proto(message)


def test_spec_to_cr_is_canonical_and_minimal() -> None:
    model = validate_agent_spec(
        {
            "instructions": "Answer questions politely.",
            "displayName": "",
            "scope": "organization",
            "mcpServers": [],
            "env": [{"name": "X", "secret": False}],
        }
    )

    assert spec_to_cr(model) == {
        "instructions": "Answer questions politely.",
        "env": [{"name": "X"}],
    }


def test_dispatching_converters() -> None:
    agent = validate_agent_spec(agent_spec())
    instance = validate_agent_instance_spec(agent_instance_spec())

    assert isinstance(spec_to_proto(agent), agent_pb2.AgentSpec)
    assert isinstance(spec_to_proto(instance), agent_instance_pb2.AgentInstanceSpec)
    assert spec_from_proto(spec_to_proto(agent)) == agent
    assert spec_from_proto(spec_to_proto(instance)) == instance


def test_scope_mapping_is_a_bijection_and_unspecified_is_organization() -> None:
    for scope in Scope:
        assert scope_from_proto(scope_to_proto(scope)) is scope
    assert scope_from_proto(resource_pb2.OWNER_SCOPE_UNSPECIFIED) is Scope.ORGANIZATION
    with pytest.raises(ValueError, match="unknown OwnerScope"):
        scope_from_proto(99)  # type: ignore[arg-type]


def test_environment_ref_kind_mapping_is_a_bijection() -> None:
    for kind in EnvironmentRefKind:
        assert environment_ref_kind_from_proto(environment_ref_kind_to_proto(kind)) is kind
    with pytest.raises(ValueError, match="neither Secret nor ConfigMap"):
        environment_ref_kind_from_proto(agent_instance_pb2.ENVIRONMENT_REF_KIND_UNSPECIFIED)


# --------------------------------------------------------------------------
# Field-by-field agreement of pydantic and protobuf
# --------------------------------------------------------------------------

_ENUM_TO_PROTO: dict[type[enum.Enum], Callable[[Any], int]] = {
    Scope: scope_to_proto,
    EnvironmentRefKind: environment_ref_kind_to_proto,
}
_SCALARS: dict[int, tuple[type, ...]] = {
    FieldDescriptor.TYPE_STRING: (str,),
    FieldDescriptor.TYPE_INT32: (int,),
    FieldDescriptor.TYPE_INT64: (int,),
    FieldDescriptor.TYPE_BOOL: (bool,),
}


def _strip(annotation: Any) -> Any:
    """Drop ``Annotated[...]`` metadata and ``| None``."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _strip(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _strip(inner)
    return annotation


def _aliases(model: type[BaseModel]) -> dict[str, Any]:
    return {str(info.alias): info.annotation for info in model.model_fields.values()}


def _disagreements(model: type[BaseModel], descriptor: Descriptor, path: str) -> list[str]:
    fields = _aliases(model)
    protos = {field.json_name: field for field in descriptor.fields}
    problems = [
        f"{path}.{name}: no protobuf field" for name in sorted(fields.keys() - protos.keys())
    ]
    problems += [
        f"{path}.{name}: no pydantic field" for name in sorted(protos.keys() - fields.keys())
    ]
    for name in sorted(fields.keys() & protos.keys()):
        problems += _field_disagreements(_strip(fields[name]), protos[name], f"{path}.{name}")
    return problems


def _field_disagreements(annotation: Any, field: FieldDescriptor, path: str) -> list[str]:
    origin = typing.get_origin(annotation)
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        if origin is not dict:
            return [f"{path}: protobuf map, pydantic {annotation}"]
        value_annotation = _strip(typing.get_args(annotation)[1])
        return _value_disagreements(value_annotation, message_type.fields_by_name["value"], path)
    if field.is_repeated:
        if origin is not list:
            return [f"{path}: protobuf repeated, pydantic {annotation}"]
        return _value_disagreements(_strip(typing.get_args(annotation)[0]), field, path)
    if origin in (list, dict):
        return [f"{path}: protobuf singular, pydantic {annotation}"]
    return _value_disagreements(annotation, field, path)


def _value_disagreements(annotation: Any, field: FieldDescriptor, path: str) -> list[str]:
    if field.message_type is not None:
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return [f"{path}: protobuf message, pydantic {annotation}"]
        return _disagreements(annotation, field.message_type, path)
    if field.enum_type is not None:
        return _enum_disagreements(annotation, field.enum_type, path)
    expected = _SCALARS[field.type]
    if not (isinstance(annotation, type) and issubclass(annotation, expected)):
        return [f"{path}: protobuf {expected}, pydantic {annotation}"]
    return []


def _enum_disagreements(annotation: Any, proto_enum: EnumDescriptor, path: str) -> list[str]:
    to_proto = _ENUM_TO_PROTO.get(annotation)
    if to_proto is None:
        return [f"{path}: protobuf enum {proto_enum.full_name}, pydantic {annotation}"]
    mapped = {to_proto(member) for member in annotation}
    meaningful = {value.number for value in proto_enum.values if value.number != 0}
    if mapped != meaningful:
        return [f"{path}: {annotation.__name__} maps to {mapped}, protobuf has {meaningful}"]
    return []


@pytest.mark.parametrize(
    ("model", "descriptor"),
    [
        (AgentSpec, agent_pb2.AgentSpec.DESCRIPTOR),
        (AgentInstanceSpec, agent_instance_pb2.AgentInstanceSpec.DESCRIPTOR),
    ],
    ids=["AgentSpec", "AgentInstanceSpec"],
)
def test_pydantic_and_protobuf_agree_field_by_field(
    model: type[BaseModel], descriptor: Descriptor
) -> None:
    assert _disagreements(model, descriptor, "spec") == []


def test_agreement_check_notices_a_missing_field() -> None:
    class Narrow(BaseModel):
        model_config = AgentInstanceSpec.model_config

        display_name: str = ""

    problems = _disagreements(Narrow, agent_instance_pb2.AgentInstanceSpec.DESCRIPTOR, "spec")

    assert "spec.agentRef: no pydantic field" in problems


@pytest.mark.parametrize(
    ("model", "descriptor"),
    [
        (AgentStatus, agent_pb2.AgentStatus.DESCRIPTOR),
        (AgentInstanceStatus, agent_instance_pb2.AgentInstanceStatus.DESCRIPTOR),
        (StatusAudit, resource_pb2.Audit.DESCRIPTOR),
    ],
    ids=["AgentStatus", "AgentInstanceStatus", "Audit"],
)
def test_every_stored_status_field_has_a_status_field_in_the_crd(
    model: type[BaseModel], descriptor: Descriptor
) -> None:
    # Status also carries Kubernetes-only fields (conditions, observedGeneration,
    # id, slug), so this direction is a subset check.
    assert {field.json_name for field in descriptor.fields} <= set(_aliases(model))
