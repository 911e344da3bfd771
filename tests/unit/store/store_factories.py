"""Builders of realistic Agent / AgentInstance messages for the store tests.

Kept apart from the tests so the contract suite, the property tests, the
crash writer and the CLI tests all store the same shapes of data.
"""

from __future__ import annotations

from pathlib import Path

from stigmer_operator.api.kinds import API_VERSION, Kind
from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2, resource_pb2
from stigmer_operator.store.memory import MemoryStore
from stigmer_operator.store.protocol import Store
from stigmer_operator.store.retention import Retention
from stigmer_operator.store.rocks import RocksStore


def open_store(kind: str, path: Path, retention: Retention | None = None) -> Store:
    """A fresh store of ``kind`` (``memory`` or ``rocks``); rocks lives under ``path``."""
    if kind == "memory":
        return MemoryStore(retention)
    return RocksStore.open(path / "store", create=True, retention=retention)


def agent(
    number: int,
    *,
    org: str = "acme",
    namespace: str | None = None,
    name: str | None = None,
    slug: str | None = None,
    generation: int = 1,
    instructions: str = "Answer questions about the billing system.",
) -> agent_pb2.Agent:
    """Agent ``agt-{number:04d}`` with MCP servers, env declarations and labels."""
    message = agent_pb2.Agent(api_version=API_VERSION, kind=Kind.AGENT.value)
    meta = message.metadata
    meta.id = f"agt-{number:04d}"
    meta.name = name if name is not None else f"agent-{number}"
    meta.namespace = namespace if namespace is not None else org
    meta.org = org
    meta.slug = slug if slug is not None else meta.name
    meta.display_name = f"Agent {number}"
    meta.generation = generation
    meta.owner_scope = resource_pb2.OWNER_SCOPE_ORGANIZATION
    meta.labels["app.kubernetes.io/part-of"] = "support"
    spec = message.spec
    spec.display_name = meta.display_name
    spec.description = "Support agent"
    spec.instructions = instructions
    github = spec.mcp_servers.add(name="github")
    github.stdio.command = "npx"
    github.stdio.args.extend(["-y", "@modelcontextprotocol/server-github"])
    github.stdio.env_placeholders["GITHUB_TOKEN"] = "${GITHUB_TOKEN}"
    search = spec.mcp_servers.add(name="search")
    search.http.url = "https://search.example.com/mcp"
    search.http.headers["Authorization"] = "Bearer ${SEARCH_KEY}"
    search.enabled_tools.extend(["query", "fetch"])
    spec.env.add(name="GITHUB_TOKEN", description="GitHub token", secret=True, required=True)
    spec.env.add(name="SEARCH_KEY", description="Search API key", secret=True)
    return message


def instance(
    number: int,
    agent_id: str,
    *,
    org: str = "acme",
    namespace: str | None = None,
    name: str | None = None,
    generation: int = 1,
) -> agent_instance_pb2.AgentInstance:
    """AgentInstance ``ain-{number:04d}`` of ``agent_id`` with two environment refs."""
    message = agent_instance_pb2.AgentInstance(
        api_version=API_VERSION, kind=Kind.AGENT_INSTANCE.value
    )
    meta = message.metadata
    meta.id = f"ain-{number:04d}"
    meta.name = name if name is not None else f"instance-{number}"
    meta.namespace = namespace if namespace is not None else org
    meta.org = org
    meta.slug = meta.name
    meta.generation = generation
    spec = message.spec
    spec.agent_ref.name = "agent"
    spec.environment_refs.add(kind=agent_instance_pb2.ENVIRONMENT_REF_KIND_SECRET, name="tokens")
    spec.environment_refs.add(
        kind=agent_instance_pb2.ENVIRONMENT_REF_KIND_CONFIG_MAP, name="settings"
    )
    message.status.agent_id = agent_id
    return message
