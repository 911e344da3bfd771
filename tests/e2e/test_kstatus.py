"""What Flux makes of our objects: kstatus, the real library, on real objects.

Flux's ``wait: true`` and health checks compute an object's status with
``sigs.k8s.io/cli-utils/pkg/kstatus``. ``hack/kstatus`` is that library as
a small command (built by ``make kstatus``); it reads objects as JSON and
prints its verdict. The objects here come from the real control plane,
reconciled by the real operator: Ready is ``Current``, a refusal is
``Failed`` with the operator's message (so a Kustomization fails at once
instead of waiting for its timeout), and work in flight is ``InProgress``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stigmer_operator.api.kinds import Kind
from tests.e2e.helpers import REPO_ROOT, VALID_SPEC, Cluster, condition, wait_for

pytestmark = pytest.mark.usefixtures("operator_process")

BUILD = REPO_ROOT / "hack" / "kstatus" / "build.sh"


@pytest.fixture(scope="module")
def kstatus() -> Path:
    printed = subprocess.run([BUILD, "--print-path"], check=True, capture_output=True, text=True)
    path = Path(printed.stdout.strip())
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `make kstatus` ({BUILD})", pytrace=False)
    return path


def verdict(binary: Path, obj: dict[str, Any]) -> dict[str, str]:
    """kstatus's status and message for ``obj``."""
    done = subprocess.run(
        [binary], input=json.dumps(obj), check=True, capture_output=True, text=True, timeout=30
    )
    (line,) = done.stdout.splitlines()
    result: dict[str, str] = json.loads(line)
    return result


def settled(cluster: Cluster, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
    """The object once the operator has written status for its generation (not first sight)."""

    def probe() -> dict[str, Any] | None:
        obj = cluster.get(kind, namespace, name)
        if (
            obj is None
            or obj.get("status", {}).get("observedGeneration") != obj["metadata"]["generation"]
        ):
            return None
        return obj

    return wait_for(probe, timeout=30, what=f"{kind.value} {namespace}/{name} reconciled")


def test_ready_objects_are_current(cluster: Cluster, namespace: str, kstatus: Path) -> None:
    cluster.create_agent(namespace, "fine")
    agent = cluster.wait_ready(Kind.AGENT, namespace, "fine")
    instance = cluster.wait_ready(Kind.AGENT_INSTANCE, namespace, "fine-default")
    assert verdict(kstatus, agent)["status"] == "Current"
    assert verdict(kstatus, instance)["status"] == "Current"


def test_a_duplicate_slug_is_failed_with_the_message(
    cluster: Cluster, namespace: str, kstatus: Path
) -> None:
    # One namespace, one org (the Namespace decides it): the twins share a slug space.
    cluster.create_agent(namespace, "first", {**VALID_SPEC, "displayName": "Twin"})
    cluster.wait_ready(Kind.AGENT, namespace, "first")
    cluster.create_agent(namespace, "second", {**VALID_SPEC, "displayName": "Twin"})
    refused = cluster.wait_condition(Kind.AGENT, namespace, "second", "Stalled", "True")

    result = verdict(kstatus, refused)

    assert result["status"] == "Failed"
    assert result["message"] == condition(refused, "Ready")["message"]
    assert f"{namespace}/first" in result["message"]


def test_an_invalid_spec_is_failed_with_the_message(
    cluster: Cluster, namespace: str, kstatus: Path
) -> None:
    servers = [{"name": "gh", "stdio": {"command": "npx", "envPlaceholders": {"T": "${TOKEN}"}}}]
    cluster.create_agent(namespace, "invalid", {**VALID_SPEC, "mcpServers": servers})
    refused = cluster.wait_condition(Kind.AGENT, namespace, "invalid", "Stalled", "True")

    result = verdict(kstatus, refused)

    assert result["status"] == "Failed"
    assert condition(refused, "Stalled")["reason"] == "ValidationFailed"
    assert "TOKEN" in result["message"]


def test_an_instance_waiting_for_its_agent_is_in_progress_then_current(
    cluster: Cluster, namespace: str, kstatus: Path
) -> None:
    cluster.create(Kind.AGENT_INSTANCE, namespace, "early", {"agentRef": {"name": "late"}})
    waiting = settled(cluster, Kind.AGENT_INSTANCE, namespace, "early")
    assert condition(waiting, "Ready")["reason"] == "AgentNotFound"

    result = verdict(kstatus, waiting)

    assert result["status"] == "InProgress"
    assert "late" in result["message"]
    cluster.create_agent(namespace, "late")
    ready = cluster.wait_ready(Kind.AGENT_INSTANCE, namespace, "early")
    assert verdict(kstatus, ready)["status"] == "Current"
    assert condition(ready, "Reconciling") == {} and condition(ready, "Stalled") == {}


def test_an_object_the_operator_has_not_seen_is_in_progress(
    cluster: Cluster, private_namespace: str, kstatus: Path
) -> None:
    """No operator watches ``p-*`` namespaces here: the object never gets our status."""
    created = cluster.create_agent(private_namespace, "unseen")
    obj = cluster.get(Kind.AGENT, private_namespace, "unseen")
    assert obj is not None and obj["metadata"]["uid"] == created["metadata"]["uid"]

    assert verdict(kstatus, obj)["status"] == "InProgress"
