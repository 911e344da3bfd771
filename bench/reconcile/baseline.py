"""The baseline: the operator's API requests per Agent, replayed without the operator.

What the operator wrote during the burst (by verb, resource and
subresource) is spread over as many Agents and sent directly, in each
Agent's causal order, into a namespace the operator does not watch: the
time that takes is the API-bound limit the burst is measured against.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .client import Api
from .common import API, FIELD_MANAGER, GROUP, RBAC, VERSION, agent_manifest

#: Resources whose writes make up the operator's work per Agent.
OUR_RESOURCES = (
    "agents",
    "agentinstances",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "events",
)

#: The order in which one Agent's writes can happen (each needs the ones before it).
WRITE_ORDER = (
    ("POST", "agents", ""),
    ("PATCH", "agents", "status"),
    ("PATCH", "agents", ""),
    ("POST", "agentinstances", ""),
    ("PATCH", "agentinstances", "status"),
    ("PATCH", "agentinstances", ""),
    ("POST", "serviceaccounts", ""),
    ("POST", "roles", ""),
    ("POST", "rolebindings", ""),
    ("PATCH", "serviceaccounts", ""),
    ("PATCH", "roles", ""),
    ("PATCH", "rolebindings", ""),
    ("POST", "events", ""),
)
#: Reads the baseline can replay (``--baseline-reads``).
READ_ORDER = (
    ("GET", "agents", ""),
    ("GET", "agentinstances", ""),
    ("GET", "serviceaccounts", ""),
    ("GET", "roles", ""),
    ("GET", "rolebindings", ""),
)


def operator_requests(
    before: Counter[tuple[str, str, str]], after: Counter[tuple[str, str, str]], bench_creates: int
) -> Counter[tuple[str, str, str]]:
    """Requests to our resources between two snapshots, minus the bench's own creates."""
    delta: Counter[tuple[str, str, str]] = Counter()
    for key, value in after.items():
        if key[1] in OUR_RESOURCES and value - before.get(key, 0) > 0:
            delta[key] = value - before.get(key, 0)
    delta[("POST", "agents", "")] -= bench_creates
    return +delta


@dataclass
class Templates:
    """Bodies taken from a real reconciled Agent and its default instance."""

    agent_status: dict[str, Any]
    agent_annotations: dict[str, str]
    instance_status: dict[str, Any]
    instance_annotations: dict[str, str]


def templates_from(api: Api, namespace: str, name: str) -> Templates:
    agent = api.json("GET", f"{API}/namespaces/{namespace}/agents/{name}")
    instance_name = agent["status"]["defaultInstanceName"]
    instance = api.json("GET", f"{API}/namespaces/{namespace}/agentinstances/{instance_name}")

    def ours(obj: Mapping[str, Any]) -> dict[str, str]:
        annotations = obj["metadata"].get("annotations") or {}
        return {k: v for k, v in annotations.items() if k.startswith(GROUP)}

    return Templates(agent["status"], ours(agent), instance["status"], ours(instance))


def _varied_status(status: Mapping[str, Any], round_: int) -> dict[str, Any]:
    """The status with a message that differs per patch, so no patch is a no-op."""
    varied = json.loads(json.dumps(status))
    for condition in varied.get("conditions") or []:
        condition["message"] = f"{condition.get('message', '')} ({round_})"
    return {"status": varied}


def _varied_annotations(annotations: Mapping[str, str], round_: int) -> dict[str, Any]:
    return {"metadata": {"annotations": {k: v + " " * round_ for k, v in annotations.items()}}}


def replay_agent(
    api: Api, namespace: str, name: str, plan: Mapping[tuple[str, str, str], int], t: Templates
) -> int:
    """The operator's writes (and optionally reads) for one Agent, in causal order."""
    requests = 0
    ns = f"/namespaces/{namespace}"
    merge = "application/merge-patch+json"
    agent_path, instance_name = f"{API}{ns}/agents/{name}", f"{name}-default"
    instance_path = f"{API}{ns}/agentinstances/{instance_name}"
    sa_name = f"{instance_name}-agent"
    uid = {"agent": "", "instance": ""}

    def check(status: int, data: bytes, what: str) -> bytes:
        if status >= 300 and status != 409:
            raise RuntimeError(f"baseline {what}: HTTP {status} {data[:200]!r}")
        return data

    def owner(kind: str) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": kind,
                "name": name if kind == "Agent" else instance_name,
                "uid": uid["agent" if kind == "Agent" else "instance"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]

    def meta(obj_name: str) -> dict[str, Any]:
        return {
            "name": obj_name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "stigmer-operator"},
            "ownerReferences": owner("AgentInstance"),
        }

    body: dict[str, Any]
    for key in (*WRITE_ORDER, *READ_ORDER):
        for round_ in range(plan.get(key, 0)):
            verb, resource, sub = key
            fm = f"?fieldManager={FIELD_MANAGER}"
            if key == ("POST", "agents", ""):
                data = check(
                    *api.call("POST", f"{API}{ns}/agents{fm}", agent_manifest(name)), "agent"
                )
                uid["agent"] = json.loads(data)["metadata"]["uid"] if data else ""
            elif key == ("POST", "agentinstances", ""):
                body = {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "AgentInstance",
                    "metadata": {
                        "name": instance_name,
                        "ownerReferences": owner("Agent"),
                        "labels": {f"{GROUP}/agent": name, f"{GROUP}/default-instance": "true"},
                    },
                    "spec": {"agentRef": {"name": name}},
                }
                data = check(*api.call("POST", f"{API}{ns}/agentinstances{fm}", body), "instance")
                uid["instance"] = json.loads(data)["metadata"]["uid"] if data else ""
            elif verb == "PATCH" and resource in ("agents", "agentinstances"):
                path = agent_path if resource == "agents" else instance_path
                if sub == "status":
                    tmpl = t.agent_status if resource == "agents" else t.instance_status
                    body = _varied_status(tmpl, round_)
                    path += "/status"
                else:
                    tmpl = t.agent_annotations if resource == "agents" else t.instance_annotations
                    body = _varied_annotations(tmpl, round_)
                check(*api.call("PATCH", path + fm, body, content_type=merge), f"patch {resource}")
            elif key == ("POST", "serviceaccounts", ""):
                body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(sa_name)}
                check(*api.call("POST", f"/api/v1{ns}/serviceaccounts{fm}", body), "sa")
            elif key == ("POST", "roles", ""):
                body = {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": meta(sa_name),
                    "rules": [],
                }
                check(
                    *api.call("POST", f"{RBAC}{ns}/roles{fm}", body),
                    "role",
                )
            elif key == ("POST", "rolebindings", ""):
                body = {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": meta(sa_name),
                    "subjects": [
                        {"kind": "ServiceAccount", "name": sa_name, "namespace": namespace}
                    ],
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": sa_name,
                    },
                }
                check(
                    *api.call("POST", f"{RBAC}{ns}/rolebindings{fm}", body),
                    "rb",
                )
            elif verb == "PATCH" and resource in ("serviceaccounts", "roles", "rolebindings"):
                group = "/api/v1" if resource == "serviceaccounts" else RBAC
                body = {"metadata": {"labels": {f"{GROUP}/bench-round": str(round_)}}}
                check(
                    *api.call(
                        "PATCH", f"{group}{ns}/{resource}/{sa_name}{fm}", body, content_type=merge
                    ),
                    f"patch {resource}",
                )
            elif key == ("POST", "events", ""):
                target = (
                    (name, "Agent", uid["agent"])
                    if round_ % 2
                    else (instance_name, "AgentInstance", uid["instance"])
                )
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                body = {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": f"{target[0]}.{round_}.bench", "namespace": namespace},
                    "involvedObject": {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": target[1],
                        "name": target[0],
                        "namespace": namespace,
                        "uid": target[2],
                    },
                    "type": "Normal",
                    "reason": "Created",
                    "action": "Created",
                    "message": f"{target[1]} {namespace}/{target[0]} created",
                    "source": {"component": "stigmer-operator"},
                    "reportingComponent": "stigmer-operator",
                    "reportingInstance": "stigmer-operator",
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                }
                check(*api.call("POST", f"/api/v1{ns}/events{fm}", body), "event")
            elif verb == "GET":
                paths = {
                    "agents": agent_path,
                    "agentinstances": instance_path,
                    "serviceaccounts": f"/api/v1{ns}/serviceaccounts/{sa_name}",
                    "roles": f"{RBAC}{ns}/roles/{sa_name}",
                    "rolebindings": f"{RBAC}{ns}/rolebindings/{sa_name}",
                }
                api.call("GET", paths[resource])
            else:
                continue
            requests += 1
    return requests


def per_agent_plans(
    totals: Mapping[tuple[str, str, str], int], n: int
) -> list[dict[tuple[str, str, str], int]]:
    """Spread ``totals`` over ``n`` Agents so the sums match exactly."""
    plans: list[dict[tuple[str, str, str], int]] = [{} for _ in range(n)]
    for key, total in totals.items():
        base, extra = divmod(total, n)
        for i in range(n):
            plans[i][key] = base + (1 if i < extra else 0)
    for plan in plans:
        plan[("POST", "agents", "")] = 1
    return plans
