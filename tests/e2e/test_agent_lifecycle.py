"""The Agent lifecycle as a user sees it, against the real control plane.

Each test applies objects through the API, lets the operator (a real
process) reconcile them, and asserts what ``kubectl`` would show: status
conditions, children, events, garbage collection, and the store mirror.
"""

from __future__ import annotations

import pytest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.store import NotFoundError
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import (
    EXAMPLES,
    FIELD_MANAGER,
    VALID_SPEC,
    Cluster,
    condition,
    read_store,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("operator_process")


def test_example_agent_becomes_ready_with_default_instance(
    control_plane: ControlPlane, cluster: Cluster, namespace: str
) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "agent.yaml"))
    control_plane.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "agent/code-reviewer", "--timeout=60s"
    )
    agent = cluster.get(Kind.AGENT, namespace, "code-reviewer")
    assert agent is not None
    status = agent["status"]
    assert status["id"].startswith("agt-")
    assert status["slug"] == "code-reviewer"
    assert status["defaultInstanceName"] == "code-reviewer-default"
    assert status["observedGeneration"] == agent["metadata"]["generation"]
    assert condition(agent, "Accepted")["status"] == "True"

    instance = cluster.wait_ready(Kind.AGENT_INSTANCE, namespace, "code-reviewer-default")
    assert status["defaultInstanceId"] == instance["status"]["id"]
    owner = instance["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Agent", "code-reviewer", True)

    table = control_plane.kubectl("get", "ag", "-n", namespace).stdout
    header = table.splitlines()[0].split()
    assert header[:5] == ["NAME", "READY", "DEFAULT", "INSTANCE", "SCOPE"], table
    assert "code-reviewer-default" in table and "True" in table
    instances = control_plane.kubectl("get", "agi", "-n", namespace).stdout
    assert instances.splitlines()[0].split()[:3] == ["NAME", "AGENT", "READY"], instances


def test_agent_is_mirrored_with_history_and_events(
    cluster: Cluster, namespace: str, operator_process: OperatorProcess
) -> None:
    cluster.create_agent(namespace, "weather")
    agent = cluster.wait_ready(Kind.AGENT, namespace, "weather")
    with read_store(operator_process.store_path) as store:
        mirrored = store.get_by_name(Kind.AGENT, namespace, "weather")
        assert mirrored.metadata.id == agent["status"]["id"]
        assert mirrored.metadata.uid == agent["metadata"]["uid"]
        assert mirrored.spec.instructions == VALID_SPEC["instructions"]
        assert len(store.history(Kind.AGENT, mirrored.metadata.id)) == 1
    reasons = {(e.type, e.reason) for e in cluster.events(namespace, "weather")}
    assert ("Normal", "Created") in reasons


def test_deleted_default_instance_is_recreated(cluster: Cluster, namespace: str) -> None:
    cluster.create_agent(namespace, "phoenix")
    cluster.wait_ready(Kind.AGENT, namespace, "phoenix")
    first = cluster.get(Kind.AGENT_INSTANCE, namespace, "phoenix-default")
    assert first is not None
    cluster.delete(Kind.AGENT_INSTANCE, namespace, "phoenix-default")

    def recreated() -> dict | None:
        obj = cluster.get(Kind.AGENT_INSTANCE, namespace, "phoenix-default")
        return obj if obj and obj["metadata"]["uid"] != first["metadata"]["uid"] else None

    wait_for(recreated, timeout=10, what="a new phoenix-default")
    new = cluster.wait_ready(Kind.AGENT_INSTANCE, namespace, "phoenix-default")
    # Read after the new instance: the Agent may still show its old, Ready status
    # for a moment between the instance's creation and its own status patch.
    wait_for(
        lambda: (cluster.get(Kind.AGENT, namespace, "phoenix") or {}).get("status", {})
        .get("defaultInstanceId") == new["status"]["id"],
        timeout=20, what="the Agent to name its new default instance",
    )  # fmt: skip
    cluster.wait_ready(Kind.AGENT, namespace, "phoenix", timeout=20)


def test_spec_edit_updates_status_and_history(
    cluster: Cluster, namespace: str, operator_process: OperatorProcess
) -> None:
    cluster.create_agent(namespace, "editable")
    before = cluster.wait_ready(Kind.AGENT, namespace, "editable")
    cluster.patch_spec(
        Kind.AGENT,
        namespace,
        "editable",
        {"instructions": "New instructions, at least ten characters."},
    )
    after = cluster.wait_ready(Kind.AGENT, namespace, "editable")
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["status"]["id"] == before["status"]["id"]
    assert after["status"]["audit"]["createdAt"] == before["status"]["audit"]["createdAt"]
    with read_store(operator_process.store_path) as store:
        history = store.history(Kind.AGENT, after["status"]["id"])
    assert [h.generation for h in history] == [2, 1]
    assert history[0].agent.spec.instructions.startswith("New instructions")


def test_instance_waits_for_its_agent(cluster: Cluster, namespace: str) -> None:
    cluster.create(Kind.AGENT_INSTANCE, namespace, "early", {"agentRef": {"name": "late"}})
    waiting = cluster.wait_condition(Kind.AGENT_INSTANCE, namespace, "early", "Ready", "False")
    assert condition(waiting, "Ready")["reason"] == "AgentNotFound"

    cluster.create_agent(namespace, "late")
    instance = cluster.wait_ready(Kind.AGENT_INSTANCE, namespace, "early", timeout=15)
    agent = cluster.get(Kind.AGENT, namespace, "late")
    assert agent is not None
    assert instance["status"]["agentId"] == agent["status"]["id"]


def test_deleting_agent_collects_instances_and_mirror(
    cluster: Cluster, namespace: str, operator_process: OperatorProcess
) -> None:
    cluster.create_agent(namespace, "doomed")
    agent = cluster.wait_ready(Kind.AGENT, namespace, "doomed")
    instance = cluster.wait_ready(Kind.AGENT_INSTANCE, namespace, "doomed-default")
    cluster.delete(Kind.AGENT, namespace, "doomed")

    wait_for(
        lambda: cluster.get(Kind.AGENT_INSTANCE, namespace, "doomed-default") is None,
        timeout=30,
        what="garbage collection of doomed-default",
    )

    def mirror_gone() -> bool:
        with read_store(operator_process.store_path) as store:
            for kind, obj in ((Kind.AGENT, agent), (Kind.AGENT_INSTANCE, instance)):
                try:
                    store.get(kind, obj["status"]["id"])
                    return False
                except NotFoundError:
                    continue
            # History survives deletion.
            return bool(store.history(Kind.AGENT, agent["status"]["id"]))

    wait_for(mirror_gone, timeout=15, what="mirror entries removed, history kept")


def test_operator_never_writes_spec(cluster: Cluster, namespace: str) -> None:
    """Only the test's own field manager owns spec fields of user objects."""
    cluster.create_agent(namespace, "hands-off")
    cluster.create(Kind.AGENT_INSTANCE, namespace, "extra", {"agentRef": {"name": "hands-off"}})
    cluster.wait_ready(Kind.AGENT, namespace, "hands-off")
    cluster.wait_ready(Kind.AGENT_INSTANCE, namespace, "extra")
    for kind, name in ((Kind.AGENT, "hands-off"), (Kind.AGENT_INSTANCE, "extra")):
        obj = cluster.get(kind, namespace, name)
        assert obj is not None
        managers = {entry["manager"] for entry in obj["metadata"]["managedFields"]}
        assert "stigmer-operator" in managers, managers  # the status writes are visible
        for entry in obj["metadata"]["managedFields"]:
            if entry["manager"] == FIELD_MANAGER:
                continue
            assert "f:spec" not in entry.get("fieldsV1", {}), (kind.value, entry)


def test_every_example_becomes_ready(
    control_plane: ControlPlane, cluster: Cluster, namespace: str
) -> None:
    """``examples/*.yaml`` as a user applies them: the platform Agent in stigmer-system."""
    control_plane.kubectl("create", "namespace", "stigmer-system", check=False)
    for name in ("agent.yaml", "agent-instance.yaml"):
        control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / name))
    control_plane.kubectl("apply", "-f", str(EXAMPLES / "platform-agent.yaml"))
    for kind, ns, name in (
        (Kind.AGENT, namespace, "code-reviewer"),
        (Kind.AGENT_INSTANCE, namespace, "code-reviewer-default"),
        (Kind.AGENT_INSTANCE, namespace, "code-reviewer-prod"),
        (Kind.AGENT, "stigmer-system", "docs-assistant"),
        (Kind.AGENT_INSTANCE, "stigmer-system", "docs-assistant-default"),
    ):
        cluster.wait_ready(kind, ns, name, timeout=60)
    platform = cluster.get(Kind.AGENT, "stigmer-system", "docs-assistant")
    assert platform is not None and platform["spec"]["scope"] == "platform"
    role = cluster.rbac.read_namespaced_role("code-reviewer-prod-agent", namespace)
    granted = {(r.resources[0], name) for r in role.rules for name in r.resource_names}
    assert granted == {
        ("secrets", "code-reviewer-prod-credentials"),
        ("configmaps", "code-reviewer-prod-settings"),
    }
    control_plane.kubectl("delete", "-f", str(EXAMPLES / "platform-agent.yaml"))
