"""Two operators with kopf peering: one works, the other stands by and takes over.

Both watch the same (private) namespace with ``--peering`` and their own
store; kopf's peering object records their keep-alives and only the
highest-priority live operator processes events. The story:

1. the low-priority operator runs alone: it is active and mirrors the
   first Agents;
2. the high-priority one starts: the low one pauses (kopf logs it), the high
   one takes over and mirrors everything; while it works, the paused one
   reconciles nothing and its store does not move -- even as Agents are
   created and deleted;
3. the active one is SIGKILLed: once its keep-alive expires the standby
   resumes, a new Agent becomes Ready, a deletion is processed, and its
   store must equal the cluster (``store verify`` exits 0 against its *own*
   store): the Agent created while it stood by is re-mirrored.

Not covered, because it fails (docs/reliability.md, known bugs): an Agent
*edited* or *deleted* while the standby is paused is not re-mirrored or
swept when it takes over (kopf resumes only objects new to the process, and
the diff-base annotation says the other peer already handled the edit); the
standby's store stays behind until its next restart.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stigmer_operator.api.kinds import Kind
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import REPO_ROOT, Cluster, read_store, wait_for
from tests.e2e.test_restart import verify

PEERING_CRDS = REPO_ROOT / "charts" / "stigmer-operator" / "crds" / "kopf-peering.yaml"
#: kopf's default peering lifetime: a SIGKILLed peer's record counts as live this long.
LIFETIME = 60


def reconciles(operator: OperatorProcess) -> float:
    """Every handler invocation the operator counted, whatever the outcome."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in operator.metrics().splitlines()
        if line.startswith("stigmer_reconcile_total{")
    )


def resumed_count(operator: OperatorProcess) -> int:
    return operator.log_path.read_text(errors="replace").count(
        "Resuming operations after the pause"
    )


def mirrored(operator: OperatorProcess, namespace: str) -> set[str]:
    with read_store(operator.store_path) as store:
        return {
            a.metadata.name for a in store.list(Kind.AGENT) if a.metadata.namespace == namespace
        }


@pytest.fixture
def peering(
    control_plane: ControlPlane, private_namespace: str, tmp_path: Path
) -> Iterator[tuple[str, OperatorProcess, OperatorProcess]]:
    crds = tmp_path / "peering-crds"
    crds.mkdir()
    shutil.copy(PEERING_CRDS, crds)
    control_plane.apply_crds(crds)
    name = f"survival-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl(
        "apply", "-n", private_namespace, "-f", "-",
        input=f"apiVersion: kopf.dev/v1\nkind: KopfPeering\nmetadata:\n  name: {name}\n",
    )  # fmt: skip

    def operator(role: str, priority: int) -> OperatorProcess:
        return OperatorProcess(
            control_plane.admin_kubeconfig, tmp_path / role / "store",
            args=[f"--namespace={private_namespace}", f"--peering={name}",
                  f"--priority={priority}"],
        )  # fmt: skip

    active, standby = operator("active", 100), operator("standby", 10)
    try:
        yield private_namespace, active, standby
    finally:
        active.stop()
        standby.stop()


def test_standby_takes_over_and_remirrors_before_acting(
    control_plane: ControlPlane, cluster: Cluster,
    peering: tuple[str, OperatorProcess, OperatorProcess],
) -> None:  # fmt: skip
    ns, active, standby = peering

    # 1. The standby alone is active.
    standby.start()
    for name in ("early", "doomed"):
        cluster.create_agent(ns, name)
    for name in ("early", "doomed"):
        cluster.wait_ready(Kind.AGENT, ns, name)
    wait_for(lambda: mirrored(standby, ns) == {"early", "doomed"}, timeout=10,
             what="the standby's mirror")  # fmt: skip

    # 2. A higher priority arrives: the standby pauses, the new one takes over.
    active.start()
    wait_for(lambda: "Pausing operations in favour of" in standby.log_tail(200), timeout=30,
             what="the standby to pause")  # fmt: skip
    wait_for(lambda: mirrored(active, ns) == {"early", "doomed"}, timeout=30,
             what="the active operator to mirror what exists")  # fmt: skip
    paused_at = reconciles(standby)
    cluster.create_agent(ns, "during")
    cluster.wait_ready(Kind.AGENT, ns, "during")
    wait_for(lambda: mirrored(active, ns) == {"early", "doomed", "during"}, timeout=30,
             what="the active operator to mirror the changes")  # fmt: skip
    time.sleep(2)  # a paused operator that still worked would show it by now
    assert reconciles(standby) == paused_at, "the paused operator reconciled"
    assert mirrored(standby, ns) == {"early", "doomed"}, "the paused operator wrote its store"
    assert verify(control_plane, standby, ns) == 4, "the standby's store is behind"

    # 3. The active operator dies; the standby resumes once its keep-alive expires.
    resumes = resumed_count(standby)
    active.kill()
    killed = time.monotonic()
    wait_for(lambda: resumed_count(standby) > resumes, timeout=LIFETIME + 30, interval=1,
             what="the standby to resume")  # fmt: skip
    resumed = time.monotonic() - killed
    cluster.create_agent(ns, "after")
    cluster.delete(Kind.AGENT, ns, "doomed")
    agent = cluster.wait_ready(Kind.AGENT, ns, "after", timeout=30)
    cluster.wait_ready(Kind.AGENT_INSTANCE, ns, agent["status"]["defaultInstanceName"])
    wait_for(lambda: verify(control_plane, standby, ns) == 0, timeout=30,
             what="the standby's own store to equal the cluster")  # fmt: skip
    assert mirrored(standby, ns) == {"early", "during", "after"}
    assert standby.returncode is None, standby.log_tail()
    print(f"standby resumed {resumed:.1f}s after the active operator was killed")
