"""Who read the operator's kinds: the API server's audit log, by client.

``apiserver_request_total`` counts requests by verb and resource, not by
client, and the operator, kube-controller-manager and the bench all talk to
the same API server. The bench's control plane therefore runs with an audit
policy that records one thing -- reads (``get``, ``list``) of Agents and
AgentInstances, at ``Metadata`` level -- so a phase can say which client sent
the reads it counted. Nothing else is logged: the policy's cost to the API
server is a rule match per request.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .common import GROUP

#: The reads of the operator's kinds, and nothing else.
POLICY = f"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["get", "list"]
    resources:
      - group: "{GROUP}"
        resources: ["agents", "agentinstances"]
  - level: None
"""

#: ``(verb, resource, client)``: the client is the authenticated user name and
#: the product of its user agent (``kopf``, ``OpenAPI-Generator``: the
#: operator; ``kube-controller-manager``; ``python-urllib3``: the bench).
Read = tuple[str, str, str]


def write_policy(directory: Path) -> Path:
    """:data:`POLICY` as a file in ``directory``, for ``ControlPlane(audit_policy=...)``."""
    path = directory / "audit-policy.yaml"
    path.write_text(POLICY)
    return path


def reads_since(log: Path | None, since: datetime) -> Counter[Read]:
    """The reads the audit ``log`` recorded from ``since`` (timezone-aware) on, by client."""
    counts: Counter[Read] = Counter()
    for event in _events(log):
        received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if received >= since:
            verb = str(event["verb"]).upper()
            resource = str(event.get("objectRef", {}).get("resource", ""))
            counts[(verb, resource, _client(event))] += 1
    return counts


def _events(log: Path | None) -> Iterator[dict[str, Any]]:
    if log is None or not log.exists():
        return
    with log.open() as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def _client(event: dict[str, Any]) -> str:
    user = str(event.get("user", {}).get("username", ""))
    product = str(event.get("userAgent", "")).split("/", 1)[0]
    return f"{user} {product}"
