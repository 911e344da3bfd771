"""The example manifests in ``examples/`` are valid: users copy them first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stigmer_operator.api.kinds import API_VERSION, Kind
from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec, Scope
from stigmer_operator.api.validation import validate_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _custom_resources(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [
            doc for doc in yaml.safe_load_all(stream) if doc and doc["apiVersion"] == API_VERSION
        ]


def _by_name(name: str) -> dict[str, Any]:
    (resource,) = _custom_resources(EXAMPLES / name)
    return resource


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_custom_resource_validates(path: Path) -> None:
    resources = _custom_resources(path)

    assert resources, f"{path.name} holds no {API_VERSION} object"
    for resource in resources:
        validate_spec(Kind.parse(resource["kind"]), resource["spec"])


def test_agent_example_shows_stdio_http_sub_agent_and_env() -> None:
    spec = validate_spec(Kind.AGENT, _by_name("agent.yaml")["spec"])

    assert isinstance(spec, AgentSpec)
    assert {s.name for s in spec.mcp_servers if s.stdio} and {
        s.name for s in spec.mcp_servers if s.http
    }
    assert spec.sub_agents and spec.env


def test_agent_instance_example_references_the_agent_example() -> None:
    agent = _by_name("agent.yaml")
    instance = _by_name("agent-instance.yaml")

    spec = validate_spec(Kind.AGENT_INSTANCE, instance["spec"])

    assert isinstance(spec, AgentInstanceSpec)
    assert spec.agent_ref.name == agent["metadata"]["name"]
    assert spec.environment_refs


def test_agent_instance_example_ships_the_objects_it_references() -> None:
    with (EXAMPLES / "agent-instance.yaml").open(encoding="utf-8") as stream:
        docs = [doc for doc in yaml.safe_load_all(stream) if doc]
    shipped = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}

    refs = _by_name("agent-instance.yaml")["spec"]["environmentRefs"]

    assert {(ref["kind"], ref["name"]) for ref in refs} <= shipped


def test_platform_example_is_platform_scoped_in_the_default_platform_namespace() -> None:
    resource = _by_name("platform-agent.yaml")

    spec = validate_spec(Kind.AGENT, resource["spec"])

    assert spec.scope is Scope.PLATFORM
    assert resource["metadata"]["namespace"] == "stigmer-system"
