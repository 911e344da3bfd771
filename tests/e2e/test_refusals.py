"""Invalid input is refused at the earliest point, clearly, and exactly once.

CRD schema and CEL rules refuse at ``kubectl apply`` time (server dry-run
here, so nothing is created); what CEL cannot express reaches the pipeline,
which answers ``Ready=False`` + ``Accepted=False`` with a CamelCase reason,
one Warning Event, no child, no store entry, and no retry loop.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from stigmer_operator.api.kinds import API_VERSION, ORG_LABEL, Kind
from stigmer_operator.store import NotFoundError
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import VALID_SPEC, Cluster, condition, read_store

pytestmark = pytest.mark.usefixtures("operator_process")

HTTP = {"url": "https://mcp.example.com/mcp"}
STDIO = {"command": "npx", "args": ["-y", "server"]}


def agent(spec: dict[str, Any], name: str = "refused") -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": spec}


def with_spec(**changes: Any) -> dict[str, Any]:
    return {**VALID_SPEC, **changes}


CEL_CASES = {
    "no-transport": (with_spec(mcpServers=[{"name": "a"}]), "exactly one of stdio, http or docker"),
    "two-transports": (
        with_spec(mcpServers=[{"name": "a", "http": HTTP, "stdio": STDIO}]),
        "exactly one of stdio, http or docker",
    ),
    "duplicate-mcp-names": (
        with_spec(mcpServers=[{"name": "a", "http": HTTP}, {"name": "a", "stdio": STDIO}]),
        "spec.mcpServers",
    ),
    "short-instructions": (with_spec(instructions="short"), "spec.instructions"),
    "bad-scope": (with_spec(scope="galaxy"), "spec.scope"),
    "bad-url": (with_spec(mcpServers=[{"name": "a", "http": {"url": "ftp://x"}}]), "http.url"),
    "unknown-sub-agent-server": (
        with_spec(
            subAgents=[
                {"name": "s", "instructions": "Helps the parent agent.", "mcpServers": ["nope"]}
            ]
        ),
        "spec.subAgents[].mcpServers",
    ),
    "duplicate-env": (
        with_spec(env=[{"name": "A"}, {"name": "A"}]),
        "spec.env",
    ),
    "unknown-field": (with_spec(colour="blue"), "colour"),
}


@pytest.mark.parametrize("case", sorted(CEL_CASES))
def test_schema_and_cel_refuse_at_apply_time(
    control_plane: ControlPlane, namespace: str, case: str
) -> None:
    spec, field = CEL_CASES[case]
    result = control_plane.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(agent(spec)),
        check=False,
    )
    assert result.returncode != 0, f"{case} was accepted:\n{result.stdout}"
    assert field in result.stderr, result.stderr


def test_agent_ref_is_immutable(
    control_plane: ControlPlane, cluster: Cluster, namespace: str
) -> None:
    cluster.create(Kind.AGENT_INSTANCE, namespace, "pinned", {"agentRef": {"name": "a"}})
    result = control_plane.kubectl(
        "patch",
        "agi",
        "pinned",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"agentRef":{"name":"b"}}}',
        check=False,
    )
    assert result.returncode != 0
    assert "spec.agentRef is immutable" in result.stderr


def reconcile_attempts(process: OperatorProcess, reason: str) -> float:
    total = 0.0
    for line in process.metrics().splitlines():
        if line.startswith("stigmer_reconcile_total{") and f'result="{reason}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def assert_refused(
    cluster: Cluster,
    process: OperatorProcess,
    namespace: str,
    name: str,
    reason: str,
    before: float,
) -> dict[str, Any]:
    refused = cluster.wait_condition(Kind.AGENT, namespace, name, "Ready", "False")
    ready, accepted = condition(refused, "Ready"), condition(refused, "Accepted")
    assert (ready["reason"], accepted["status"], accepted["reason"]) == (reason, "False", reason)
    assert ready["observedGeneration"] == refused["metadata"]["generation"]
    warnings = [e for e in cluster.events(namespace, name) if e.type == "Warning"]
    assert [e.reason for e in warnings] == [reason], warnings
    assert cluster.get(Kind.AGENT_INSTANCE, namespace, f"{name}-default") is None
    with read_store(process.store_path) as store, pytest.raises(NotFoundError):
        store.get_by_name(Kind.AGENT, namespace, name)
    time.sleep(3)  # long enough for a retry loop to show itself
    assert reconcile_attempts(process, reason) - before == 1
    return refused


def test_undeclared_placeholder_is_refused_by_the_pipeline(
    cluster: Cluster, namespace: str, operator_process: OperatorProcess
) -> None:
    before = reconcile_attempts(operator_process, "ValidationFailed")
    spec = with_spec(
        mcpServers=[
            {
                "name": "gh",
                "stdio": {"command": "npx", "envPlaceholders": {"TOKEN": "${GITHUB_TOKEN}"}},
            }
        ]
    )
    cluster.create_agent(namespace, "undeclared", spec)
    refused = assert_refused(
        cluster, operator_process, namespace, "undeclared", "ValidationFailed", before
    )
    assert "GITHUB_TOKEN" in condition(refused, "Ready")["message"]


def test_platform_scope_outside_platform_namespace_is_forbidden(
    cluster: Cluster, namespace: str, operator_process: OperatorProcess
) -> None:
    before = reconcile_attempts(operator_process, "Forbidden")
    cluster.create_agent(namespace, "usurper", with_spec(scope="platform"))
    assert_refused(cluster, operator_process, namespace, "usurper", "Forbidden", before)


def test_duplicate_slug_across_namespaces_of_one_org(
    cluster: Cluster,
    operator_process: OperatorProcess,
    namespace: str,
    request: pytest.FixtureRequest,
) -> None:
    other = request.getfixturevalue("namespace_factory")()
    org = {"metadata": {"labels": {ORG_LABEL: f"org-{namespace[-6:]}"}}}
    for where in (namespace, other):  # as a cluster admin does: tenants cannot label Namespaces
        cluster.core.patch_namespace(where, org)
    cluster.create_agent(namespace, "first", with_spec(displayName="Same Name"))
    cluster.wait_ready(Kind.AGENT, namespace, "first")
    before = reconcile_attempts(operator_process, "DuplicateSlug")
    cluster.create_agent(other, "second", with_spec(displayName="Same Name"))
    refused = assert_refused(cluster, operator_process, other, "second", "DuplicateSlug", before)
    assert f"{namespace}/first" in condition(refused, "Ready")["message"]


def test_squatted_default_instance_blocks_then_heals(cluster: Cluster, namespace: str) -> None:
    """Another object holding ``<agent>-default`` blocks the Agent until it is deleted."""
    cluster.create(Kind.AGENT_INSTANCE, namespace, "squat-default", {"agentRef": {"name": "x"}})
    cluster.create_agent(namespace, "squat")
    blocked = cluster.wait_condition(Kind.AGENT, namespace, "squat", "Ready", "False")
    assert condition(blocked, "Ready")["reason"] == "DefaultInstanceConflict"
    assert condition(blocked, "Accepted")["status"] == "True"  # the spec itself is fine

    cluster.delete(Kind.AGENT_INSTANCE, namespace, "squat-default")
    agent = cluster.wait_ready(Kind.AGENT, namespace, "squat", timeout=20)
    instance = cluster.get(Kind.AGENT_INSTANCE, namespace, "squat-default")
    assert instance is not None
    assert instance["metadata"]["ownerReferences"][0]["uid"] == agent["metadata"]["uid"]
