"""An operator that was down catches up with everything that changed meanwhile.

A restart at scale must stay cheap for the API server: the operator's own
objects are listed once, not read one by one (counted by the API server).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import kubernetes
from prometheus_client.parser import text_string_to_metric_families

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.meta import MANAGED_BY
from stigmer_operator.store import NotFoundError
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import Cluster, read_store, wait_for


def verify(control_plane: ControlPlane, operator: OperatorProcess, *namespaces: str) -> int:
    """``stigmer-operator store verify`` exit code, as a user would run it."""
    return verify_run(control_plane, operator, *namespaces).returncode


def verify_run(
    control_plane: ControlPlane, operator: OperatorProcess, *namespaces: str
) -> subprocess.CompletedProcess[str]:
    """``stigmer-operator store verify``, as a user would run it (exit code 0 or 4)."""
    result = subprocess.run(
        [sys.executable, "-P", "-m", "stigmer_operator", "store", "verify",
         f"--path={operator.store_path}", *(f"--namespace={ns}" for ns in namespaces)],
        env={**os.environ, "KUBECONFIG": str(control_plane.admin_kubeconfig)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 4), result.stderr
    return result


def test_restart_with_drift_converges(
    control_plane: ControlPlane, cluster: Cluster, private_namespace: str,
    private_operator: OperatorProcess,
) -> None:  # fmt: skip
    ns = private_namespace
    private_operator.start()
    for name in ("kept", "edited", "deleted", "orphaned"):
        cluster.create_agent(ns, name)
    for name in ("kept", "edited", "deleted", "orphaned"):
        cluster.wait_ready(Kind.AGENT, ns, name)
    deleted_id = cluster.get(Kind.AGENT, ns, "deleted")["status"]["id"]  # type: ignore[index]
    private_operator.stop()
    assert private_operator.returncode == 0, private_operator.log_tail()

    # The world changes while nobody watches.
    cluster.create_agent(ns, "born")
    cluster.patch_spec(
        Kind.AGENT, ns, "edited", {"instructions": "Edited while the operator slept."}
    )
    cluster.delete(Kind.AGENT, ns, "deleted")
    cluster.delete(Kind.AGENT_INSTANCE, ns, "orphaned-default")
    wait_for(
        lambda: cluster.get(Kind.AGENT_INSTANCE, ns, "deleted-default") is None,
        timeout=30,
        what="garbage collection while the operator is down",
    )
    assert verify(control_plane, private_operator, ns) == 4  # the drift is visible

    private_operator.start()
    for name in ("kept", "edited", "born", "orphaned"):
        agent = cluster.wait_ready(Kind.AGENT, ns, name)
        cluster.wait_ready(Kind.AGENT_INSTANCE, ns, agent["status"]["defaultInstanceName"])
    wait_for(
        lambda: verify(control_plane, private_operator, ns) == 0,
        timeout=20,
        what="store verify to report no drift",
    )
    private_operator.stop()
    swept = (
        r"start-up sweep removed [1-9]\d* mirror entries without an object \(compared with kopf's"
    )
    assert re.search(swept, private_operator.log_path.read_text()), "not swept by kopf's listing"
    with read_store(private_operator.store_path) as store:
        try:
            store.get(Kind.AGENT, deleted_id)
            raise AssertionError("the swept Agent is still mirrored")
        except NotFoundError:
            pass
        assert store.history(Kind.AGENT, deleted_id), "sweeping keeps history"
        edited = store.get_by_name(Kind.AGENT, ns, "edited")
        assert [h.generation for h in store.history(Kind.AGENT, edited.metadata.id)] == [2, 1]


#: Agents held while the operator restarts (each with a default instance and its IAM objects).
HELD = 10
IAM_RESOURCES = ("serviceaccounts", "roles", "rolebindings")


def api_requests(api_client: kubernetes.client.ApiClient) -> Counter[tuple[str, str]]:
    """The API server's own count of every request it served, by (verb, resource)."""
    response = api_client.call_api("GET", f"{api_client.configuration.host}/metrics")
    assert response.status == 200, response.reason
    totals: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(response.read().decode()):
        for sample in family.samples:
            if sample.name == "apiserver_request_total":
                totals[(sample.labels["verb"], sample.labels["resource"])] += int(sample.value)
    return totals


def quiet_api_requests(api_client: kubernetes.client.ApiClient) -> Counter[tuple[str, str]]:
    """:func:`api_requests` once no IAM object has been read for 5 s (at most 90 s).

    The garbage collector reads ownerReferenced objects it has just seen
    (the operator made them a moment ago), and the objects of earlier tests'
    namespaces as their deletion proceeds (in bursts, with pauses of a few
    seconds); those reads are not the restart's.
    """
    deadline = time.monotonic() + 90
    counts = api_requests(api_client)
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1)
        later = api_requests(api_client)
        if any(later[("GET", r)] != counts[("GET", r)] for r in IAM_RESOURCES):
            still_since = time.monotonic()
        elif time.monotonic() - still_since >= 5:
            return later
        counts = later
    return counts


def resumes(operator: OperatorProcess) -> float:
    """Resume handlers the operator ran, whatever their result."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in operator.metrics().splitlines()
        if line.startswith("stigmer_reconcile_total{") and 'operation="resume"' in line
    )


def ready_in(items: list[dict[str, Any]]) -> set[str]:
    return {
        str(obj["metadata"]["name"])
        for obj in items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (obj.get("status") or {}).get("conditions") or []
        )
    }


def test_restart_lists_the_operators_objects_instead_of_reading_each(
    control_plane: ControlPlane, cluster: Cluster, kube_api: kubernetes.client.ApiClient,
    private_namespace: str, private_operator: OperatorProcess,
) -> None:  # fmt: skip
    ns = private_namespace
    names = [f"held-{i}" for i in range(HELD)]
    private_operator.start()
    for name in names:
        cluster.create_agent(ns, name)
    wait_for(
        lambda: ready_in(cluster.list(Kind.AGENT, ns)) == set(names), timeout=120, what="Ready"
    )
    private_operator.stop()
    assert private_operator.returncode == 0, private_operator.log_tail()

    # While the operator is down, its IAM objects are tampered with and a default instance goes.
    role, binding, account, gone = (f"{name}-default-agent" for name in names[:4])
    cluster.rbac.patch_namespaced_role(role, ns, {"rules": [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["x"]},
    ]})  # fmt: skip
    cluster.rbac.delete_namespaced_role_binding(binding, ns)
    cluster.core.patch_namespaced_service_account(
        account, ns, {"metadata": {"labels": {MANAGED_BY[0]: None}}}
    )
    cluster.delete(Kind.AGENT_INSTANCE, ns, f"{names[3]}-default")
    wait_for(
        lambda: (
            not any(
                o.metadata.name == gone
                for o in cluster.core.list_namespaced_service_account(ns).items
            )
        ),
        timeout=60,
        what="the garbage collector to remove the deleted instance's IAM objects",
    )

    before = quiet_api_requests(kube_api)  # the garbage collector's reads are over
    private_operator.start()
    # Watched with LISTs only, so that every GET counted below is the operator's.
    wait_for(
        lambda: (
            resumes(private_operator) >= 2 * HELD - 1
            and ready_in(cluster.list(Kind.AGENT, ns)) == set(names)
            and len(ready_in(cluster.list(Kind.AGENT_INSTANCE, ns))) == HELD
        ),
        timeout=120,
        what="every object resumed and Ready",
    )
    served = api_requests(kube_api) - before

    gets = {resource: served[("GET", resource)] for resource in IAM_RESOURCES}
    # Only the two objects the listing showed changed (the Role) or could not see (the
    # unlabelled ServiceAccount, after its create was refused) are read; 3 GETs per instance
    # before. The deleted RoleBinding is created without a read. The API server counts
    # every client: the garbage collector reads the three objects made for the re-created
    # default instance at most once each, hence the one read of slack per kind.
    read_by_the_operator = {"serviceaccounts": 1, "roles": 1, "rolebindings": 0}
    assert all(gets[r] <= read_by_the_operator[r] + 1 for r in IAM_RESOURCES), gets
    assert all(served[("LIST", resource)] >= 1 for resource in IAM_RESOURCES), served
    assert served[("GET", "agentinstances")] < HELD // 2, served

    assert cluster.rbac.read_namespaced_role(role, ns).rules is None  # no refs: no rules
    subjects = cluster.rbac.read_namespaced_role_binding(binding, ns).subjects
    assert [(s.kind, s.name) for s in subjects] == [("ServiceAccount", binding)]
    labels = cluster.core.read_namespaced_service_account(account, ns).metadata.labels
    assert labels[MANAGED_BY[0]] == MANAGED_BY[1]
    recreated = cluster.get(Kind.AGENT_INSTANCE, ns, f"{names[3]}-default")
    assert recreated is not None
    assert (
        cluster.rbac.read_namespaced_role(gone, ns).metadata.owner_references[0].uid
        == (recreated["metadata"]["uid"])
    )
    wait_for(
        lambda: verify(control_plane, private_operator, ns) == 0,
        timeout=20,
        what="store verify to report no drift",
    )
