"""Realistic objects shared by the benchmarks, so every table measures the same Agent.

Two MCP servers (HTTP with a header placeholder, stdio with an env
placeholder), skill references, a sub-agent with a tool selection, two
declared environment variables, labels and an annotation: about 600 bytes
of protobuf once mirrored.
"""

from __future__ import annotations

from typing import Any

from stigmer_operator.api.kinds import API_VERSION, Kind


def realistic_agent(name: str, display_name: str, namespace: str | None = None) -> dict[str, Any]:
    """An Agent manifest; ``namespace`` is set only when given (API calls take it apart)."""
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/part-of": "support", "tier": "gold"},
        "annotations": {"owner": "platform-team@example.com"},
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": Kind.AGENT.value,
        "metadata": metadata,
        "spec": {
            "displayName": display_name,
            "description": "Answers customer questions with the help of the knowledge base.",
            "instructions": "You are a support agent. Be concise, cite sources, never guess.",
            "mcpServers": [
                {
                    "name": "github",
                    "http": {
                        "url": "https://mcp.example.com/github",
                        "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"},
                        "timeoutSeconds": 30,
                    },
                    "enabledTools": ["search_issues", "get_issue"],
                },
                {
                    "name": "files",
                    "stdio": {
                        "command": "npx",
                        "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"],
                        "envPlaceholders": {"ROOT": "${DATA_ROOT}"},
                    },
                },
            ],
            "skillRefs": [{"name": "triage"}, {"name": "summarize", "version": "1.2.0"}],
            "subAgents": [
                {
                    "name": "researcher",
                    "instructions": "Find the relevant issues and summarise them briefly.",
                    "mcpServers": ["github"],
                    "mcpToolSelections": {"github": {"enabledTools": ["search_issues"]}},
                }
            ],
            "env": [
                {"name": "GITHUB_TOKEN", "secret": True, "required": True},
                {"name": "DATA_ROOT", "description": "where the files live"},
            ],
        },
    }
