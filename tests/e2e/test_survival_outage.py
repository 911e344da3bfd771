"""API server and etcd outages: the operator rides them out in the same process.

A private control plane (the session one is shared and must not flicker)
and an operator against it. While a burst of Agent creates is under way,
the kube-apiserver (one test) or etcd (the other) is stopped and started
again. Afterwards:

* the operator is the same process (same PID, still running): an outage is
  not a reason to exit, and a watch cut off by the restart is reopened;
* every Agent of the burst -- created before, during (the client retries as
  ``kubectl`` users and GitOps tools do) and after the outage -- is Ready
  with its default instance, and the mirror equals the cluster;
* no update is lost: an edit made right after the control plane is back is
  reconciled (``observedGeneration == generation``) and mirrored at the new
  generation.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import urllib3

from stigmer_operator.api.kinds import Kind
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import REPO_ROOT, Cluster, condition, read_store, wait_for
from tests.e2e.test_restart import verify

BURST = 30
#: Creates done before the outage starts; the rest race with it.
BEFORE_OUTAGE = 8
#: From the end of the burst (the control plane is back) until every Agent is
#: Ready. Above the operator's kopf ``consistency_timeout`` (30 s): a watch
#: cut by the outage is re-listed at a newer resourceVersion than the one of
#: kopf's last patch, and kopf then holds that object's create/update
#: handlers until the timeout. Below kopf's 60 s default back-off, which a
#: transient error must never fall into (see ``retry_soon``).
SETTLE_SECONDS = 45.0
EDITED = "Edited the moment the control plane came back; ten characters or more."


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own: restarting it disturbs no other test."""
    with ControlPlane(crds=REPO_ROOT / "crds") as control_plane:
        yield control_plane


@pytest.fixture(scope="module")
def cluster(plane: ControlPlane) -> Iterator[Cluster]:
    with plane.client() as client:
        yield Cluster(client)


@pytest.fixture
def outage_namespace(cluster: Cluster) -> str:
    name = f"outage-{uuid.uuid4().hex[:8]}"
    _retrying(lambda: cluster.core.create_namespace({"metadata": {"name": name}}))
    return name


@pytest.fixture
def operator(
    plane: ControlPlane, outage_namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(plane.admin_kubeconfig, tmp_path / "store",
                              args=[f"--namespace={outage_namespace}"])  # fmt: skip
    with process:
        yield process


def _retrying(call: Callable[[], Any], *, timeout: float = 90.0) -> Any:
    """What a user's client does while the API is unreachable: try again, shortly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except kubernetes.client.ApiException as error:
            if error.status == 409:  # a retried create that had gone through
                return None
            if error.status not in (0, 429, 500, 502, 503, 504) or time.monotonic() > deadline:
                raise
        except (urllib3.exceptions.HTTPError, OSError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


class Burst(threading.Thread):
    """Creates ``BURST`` Agents one after the other, retrying through an outage."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        super().__init__(daemon=True)
        self.cluster, self.namespace = cluster, namespace
        self.names = [f"burst-{i:02d}" for i in range(BURST)]
        self.created = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for name in self.names:
                _retrying(lambda n=name: self.cluster.create_agent(self.namespace, n))
                self.created += 1
        except BaseException as error:  # reported by the test
            self.error = error


def _unsettled(cluster: Cluster, namespace: str, names: list[str]) -> list[str]:
    """Each Agent or default instance not yet Ready at its generation, and what it shows."""
    agents = {a["metadata"]["name"]: a for a in cluster.list(Kind.AGENT, namespace)}
    instances = {i["metadata"]["name"]: i for i in cluster.list(Kind.AGENT_INSTANCE, namespace)}
    pending = []
    for name in names:
        for what, obj in (
            (name, agents.get(name)),
            (f"{name}-default", instances.get(f"{name}-default")),
        ):
            if obj is None:
                pending.append(f"{what}: missing")
                continue
            ready = condition(obj, "Ready")
            observed = obj.get("status", {}).get("observedGeneration")
            generation = obj["metadata"]["generation"]
            if ready.get("status") != "True" or observed != generation:
                shows = f"Ready={ready.get('status')} {ready.get('reason')}"
                pending.append(f"{what}: {shows}, observed {observed} of {generation}")
    return pending


def _ride_out(
    plane: ControlPlane, cluster: Cluster, namespace: str, operator: OperatorProcess,
    outage: Callable[[], None],
) -> None:  # fmt: skip
    pid = operator.pid
    burst = Burst(cluster, namespace)
    burst.start()
    wait_for(lambda: burst.created >= BEFORE_OUTAGE or burst.error, timeout=60,
             what=f"{BEFORE_OUTAGE} creates before the outage")  # fmt: skip
    outage()  # returns once the API answers again
    back = time.monotonic()
    # Right after the outage: edit an Agent that was reconciled before it.
    _retrying(lambda: cluster.patch_spec(Kind.AGENT, namespace, burst.names[0],
                                         {"instructions": EDITED}))  # fmt: skip
    burst.join(timeout=120)
    assert not burst.is_alive() and burst.error is None, burst.error
    assert burst.created == BURST

    pending: list[str] = []

    def settled() -> bool:
        pending[:] = _retrying(lambda: _unsettled(cluster, namespace, burst.names))
        return not pending

    # Bounded: a handler cut off by the outage is retried within seconds, not
    # after kopf's 60 s default back-off for unexpected errors.
    try:
        wait_for(settled, timeout=SETTLE_SECONDS, what=f"{BURST} Agents Ready with instances")
    except AssertionError as error:
        raise AssertionError(f"{error}; not settled: {pending}\n{operator.log_tail(120)}") from None
    print(f"settled {time.monotonic() - back:.1f}s after the control plane was back")
    assert operator.pid == pid and operator.returncode is None, operator.log_tail()

    # The edit is not lost: reconciled at its generation and mirrored at it.
    edited = cluster.get(Kind.AGENT, namespace, burst.names[0])
    assert edited is not None and edited["metadata"]["generation"] == 2
    assert edited["status"]["observedGeneration"] == 2
    wait_for(lambda: verify(plane, operator, namespace) == 0, timeout=30,
             what="store verify to report no drift")  # fmt: skip
    with read_store(operator.store_path) as store:
        mirrored = store.get(Kind.AGENT, edited["status"]["id"])
        assert mirrored.metadata.generation == 2
        assert mirrored.spec.instructions == EDITED
        history = store.history(Kind.AGENT, mirrored.metadata.id)
        assert [h.generation for h in history] == [2, 1]
        for name in burst.names[1:]:
            agent_id = store.get_by_name(Kind.AGENT, namespace, name).metadata.id
            assert len(store.history(Kind.AGENT, agent_id)) == 1, name
    assert operator.pid == pid and operator.returncode is None, operator.log_tail()


def test_apiserver_restart_mid_burst(
    plane: ControlPlane, cluster: Cluster, outage_namespace: str, operator: OperatorProcess
) -> None:
    _ride_out(plane, cluster, outage_namespace, operator,
              lambda: plane.restart_apiserver(downtime=3))  # fmt: skip


def test_etcd_restart_mid_burst(
    plane: ControlPlane, cluster: Cluster, outage_namespace: str, operator: OperatorProcess
) -> None:
    _ride_out(plane, cluster, outage_namespace, operator,
              lambda: plane.restart_etcd(downtime=3))  # fmt: skip
