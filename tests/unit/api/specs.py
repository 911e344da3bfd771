"""Valid base specs the tests mutate, one rule at a time."""

from __future__ import annotations

import copy
from typing import Any


def agent_spec() -> dict[str, Any]:
    """A valid Agent spec using every kind of field."""
    return copy.deepcopy(_AGENT)


def agent_instance_spec() -> dict[str, Any]:
    """A valid AgentInstance spec."""
    return copy.deepcopy(_AGENT_INSTANCE)


_AGENT: dict[str, Any] = {
    "displayName": "Code Reviewer",
    "description": "Reviews pull requests.",
    "iconUrl": "https://example.com/icon.svg",
    "instructions": "Review every pull request carefully.",
    "mcpServers": [
        {
            "name": "github",
            "stdio": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "envPlaceholders": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"},
                "workingDir": "/tmp",
            },
            "enabledTools": ["get_pull_request", "get_file_contents"],
        },
        {
            "name": "linear",
            "http": {
                "url": "https://mcp.linear.app/mcp",
                "headers": {"Authorization": "Bearer ${LINEAR_API_KEY}"},
                "queryParams": {"team": "eng"},
                "timeoutSeconds": 30,
            },
        },
        {
            "name": "search",
            "docker": {
                "image": "ghcr.io/example/search:1.0",
                "args": ["--verbose"],
                "envPlaceholders": {"KEY": "${LINEAR_API_KEY}"},
                "volumes": [{"hostPath": "/srv/docs", "containerPath": "/docs", "readOnly": True}],
                "network": "bridge",
                "ports": [{"hostPort": 8080, "containerPort": 80, "protocol": "udp"}],
                "containerName": "search-mcp",
            },
        },
    ],
    "skillRefs": [
        {"name": "code-review"},
        {"name": "secure-coding", "org": "acme", "version": "1.0"},
    ],
    "subAgents": [
        {
            "name": "security-auditor",
            "description": "Audits diffs.",
            "instructions": "Look for injection and leaked secrets.",
            "mcpServers": ["github", "linear"],
            "mcpToolSelections": {
                "github": {"enabledTools": ["get_file_contents"]},
                "linear": {"enabledTools": ["create_issue"]},
            },
            "skillRefs": [{"name": "secure-coding", "org": "acme"}],
        }
    ],
    "env": [
        {"name": "GITHUB_TOKEN", "description": "GitHub token.", "secret": True, "required": True},
        {"name": "LINEAR_API_KEY", "secret": True},
    ],
    "scope": "organization",
    "sharing": ["team-a", "team-b"],
}

_AGENT_INSTANCE: dict[str, Any] = {
    "agentRef": {"name": "code-reviewer", "namespace": "acme"},
    "displayName": "Code Reviewer (prod)",
    "description": "Production deployment.",
    "environmentRefs": [
        {"kind": "Secret", "name": "code-reviewer-credentials"},
        {"kind": "ConfigMap", "name": "code-reviewer-settings"},
    ],
    "scope": "organization",
}
