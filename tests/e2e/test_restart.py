"""An operator that was down catches up with everything that changed meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys

from stigmer_operator.api.kinds import Kind
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
    with read_store(private_operator.store_path) as store:
        try:
            store.get(Kind.AGENT, deleted_id)
            raise AssertionError("the swept Agent is still mirrored")
        except NotFoundError:
            pass
        assert store.history(Kind.AGENT, deleted_id), "sweeping keeps history"
        edited = store.get_by_name(Kind.AGENT, ns, "edited")
        assert [h.generation for h in store.history(Kind.AGENT, edited.metadata.id)] == [2, 1]
