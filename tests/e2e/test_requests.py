"""What one new Agent costs the API server, counted by the API server itself.

``apiserver_request_total`` counts every request, kopf's own patches
included. The test's reads use LIST (``kubectl get`` of a namespace), so
every GET, POST and PATCH counted while the operator works is the
operator's; the test waits for the counters to stand still before and
after, so work of earlier tests does not leak in.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import kubernetes
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stigmer_operator.api.kinds import GROUP, VERSION, Kind
from tests.e2e.helpers import Cluster, condition, wait_for

pytestmark = pytest.mark.usefixtures("operator_process")

AGENTS = 3
#: What the operator writes and reads for our objects (LIST and WATCH are the informers').
COUNTED_VERBS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
COUNTED_RESOURCES = frozenset(
    {"agents", "agentinstances", "serviceaccounts", "roles", "rolebindings", "events"}
)
Requests = Counter[tuple[str, str, str]]


def _requests(api: kubernetes.client.ApiClient) -> Requests:
    method, url, headers, body, _ = api.param_serialize(
        "GET", "/metrics", auth_settings=["BearerToken"]
    )
    response = api.call_api(method, url, header_params=headers, body=body)
    response.read()
    counted: Requests = Counter()
    for family in text_string_to_metric_families(response.data.decode()):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "apiserver_request_total"
                and labels.get("verb") in COUNTED_VERBS
                and labels.get("resource") in COUNTED_RESOURCES
            ):
                key = (labels["verb"], labels["resource"], labels.get("subresource", ""))
                counted[key] += int(sample.value)
    return counted


def _still(api: kubernetes.client.ApiClient, quiet: float = 5.0) -> Requests:
    """The counters once they have not moved for ``quiet`` seconds.

    Every client counts: the garbage collector reads owners and dependents
    of an earlier test's deleted namespace in bursts a few seconds apart.
    """
    last, since = _requests(api), time.monotonic()
    deadline = since + 90
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _requests(api)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError("the API server's request counters never stood still")


def _all_ready(cluster: Cluster, namespace: str, kind: Kind) -> list[dict[str, Any]] | None:
    listed = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural)
    items: list[dict[str, Any]] = listed["items"]
    ready = [obj for obj in items if condition(obj, "Ready").get("status") == "True"]
    return items if len(items) == AGENTS and len(ready) == AGENTS else None


def test_a_new_agent_costs_nine_requests(
    cluster: Cluster, namespace: str, kube_api: kubernetes.client.ApiClient
) -> None:
    before = _still(kube_api)

    for i in range(AGENTS):
        cluster.create_agent(namespace, f"counted-{i}")
    agents = wait_for(lambda: _all_ready(cluster, namespace, Kind.AGENT), what="Agents Ready")
    wait_for(lambda: _all_ready(cluster, namespace, Kind.AGENT_INSTANCE), what="instances Ready")
    spent = _still(kube_api)
    spent.subtract(before)
    spent[("POST", "agents", "")] -= AGENTS  # the test's own creates

    per_agent = {key: count / AGENTS for key, count in spent.items() if count}
    assert per_agent == {
        ("PATCH", "agents", "status"): 1,  # Ready, in the Agent's first run
        ("PATCH", "agents", ""): 1,  # kopf's diff-base annotation
        ("POST", "agentinstances", ""): 1,  # the default instance, with that annotation
        ("PATCH", "agentinstances", "status"): 1,  # Ready, in the same run
        ("POST", "serviceaccounts", ""): 1,
        ("POST", "roles", ""): 1,
        ("POST", "rolebindings", ""): 1,
        ("POST", "events", ""): 2,  # Created, for the Agent and for its instance
    }
    assert all(condition(agent, "Reconciling") == {} for agent in agents)
