"""Operator down while the world changes: on restart it catches up with all of it.

A private operator mirrors a namespace of Agents and is stopped. While it is
down, Agents are created, edited and deleted, and default instances are
deleted by hand; the garbage collector removes the instances of deleted
Agents. After the restart, the mirror must equal the cluster (``store
verify`` exits 0), nothing may be orphaned (no mirror entry without its
object, no AgentInstance whose owner is gone), every surviving Agent and
every default instance must be back and Ready, and history must say exactly
what happened (edited Agents: two versions; deleted ones: swept from the
mirror, history kept).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stigmer_operator.api.kinds import DEFAULT_INSTANCE_LABEL, Kind
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import Cluster, condition, read_store, wait_for
from tests.e2e.test_restart import verify

BATCH = 50
EDITED = "Edited while the operator was down; still at least ten characters."


def _names(prefix: str, count: int = BATCH) -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(count)]


def _parallel(fn: Any, items: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(fn, items))


def _all_ready(cluster: Cluster, namespace: str, expected: set[str]) -> bool:
    """Every expected Agent and its default instance Ready at their generation."""
    agents = {a["metadata"]["name"]: a for a in cluster.list(Kind.AGENT, namespace)}
    instances = {i["metadata"]["name"]: i for i in cluster.list(Kind.AGENT_INSTANCE, namespace)}
    if set(agents) != expected:
        return False
    for name in expected:
        for obj in (agents[name], instances.get(f"{name}-default")):
            if obj is None or condition(obj, "Ready").get("status") != "True":
                return False
            if obj.get("status", {}).get("observedGeneration") != obj["metadata"]["generation"]:
                return False
    return True


def test_operator_catches_up_with_creates_edits_and_deletes(
    control_plane: ControlPlane, cluster: Cluster, private_namespace: str,
    private_operator: OperatorProcess,
) -> None:  # fmt: skip
    ns, operator = private_namespace, private_operator
    edited, deleted, born = _names("edited"), _names("deleted"), _names("born")
    operator.start()
    _parallel(lambda name: cluster.create_agent(ns, name), edited + deleted)
    wait_for(
        lambda: _all_ready(cluster, ns, set(edited + deleted)),
        timeout=120,
        what=f"{2 * BATCH} Agents Ready",
    )
    before = {a["metadata"]["name"]: a for a in cluster.list(Kind.AGENT, ns)}
    operator.stop()
    assert operator.returncode == 0, operator.log_tail()

    # While nobody watches: 50 created, 50 edited, 50 deleted, 10 default instances deleted.
    _parallel(lambda name: cluster.create_agent(ns, name), born)
    _parallel(
        lambda name: cluster.patch_spec(Kind.AGENT, ns, name, {"instructions": EDITED}), edited
    )
    _parallel(lambda name: cluster.delete(Kind.AGENT, ns, name), deleted)
    lost = edited[:10]
    lost_uids = {
        cluster.get(Kind.AGENT_INSTANCE, ns, f"{name}-default")["metadata"]["uid"]  # type: ignore[index]
        for name in lost
    }
    _parallel(lambda name: cluster.delete(Kind.AGENT_INSTANCE, ns, f"{name}-default"), lost)
    wait_for(
        lambda: (
            not [
                i
                for i in cluster.list(Kind.AGENT_INSTANCE, ns)
                if i["metadata"]["name"].startswith("deleted-")
            ]
        ),
        timeout=60,
        what="the garbage collector to delete the deleted Agents' instances",
    )
    assert verify(control_plane, operator, ns) == 4, "the drift must be visible before restart"

    started = time.monotonic()
    operator.start()
    survivors = set(edited + born)
    wait_for(
        lambda: _all_ready(cluster, ns, survivors),
        timeout=120,
        what=f"{len(survivors)} Agents and their default instances Ready after restart",
    )
    wait_for(
        lambda: verify(control_plane, operator, ns) == 0,
        timeout=30,
        what="store verify to report no drift",
    )
    caught_up = time.monotonic() - started
    assert operator.returncode is None, operator.log_tail()

    # No orphans: every AgentInstance has its owner, one default instance per Agent.
    agents = {a["metadata"]["name"]: a for a in cluster.list(Kind.AGENT, ns)}
    uids = {a["metadata"]["uid"] for a in agents.values()}
    instances = cluster.list(Kind.AGENT_INSTANCE, ns)
    for instance in instances:
        owners = [ref["uid"] for ref in instance["metadata"].get("ownerReferences", [])]
        assert owners and set(owners) <= uids, f"orphan {instance['metadata']['name']}"
        assert instance["metadata"]["labels"].get(DEFAULT_INSTANCE_LABEL) == "true"
    assert sorted(i["metadata"]["name"] for i in instances) == sorted(
        f"{name}-default" for name in survivors
    )
    recreated = {i["metadata"]["name"]: i["metadata"]["uid"] for i in instances}
    for name in lost:
        assert recreated[f"{name}-default"] not in lost_uids, f"{name}-default was not recreated"
        assert agents[name]["status"]["defaultInstanceName"] == f"{name}-default"

    with read_store(operator.store_path) as store:
        mirrored = {
            r.metadata.name: r for r in store.list(Kind.AGENT) if r.metadata.namespace == ns
        }
        assert set(mirrored) == survivors, "no mirror entry without its object, none missing"
        mirrored_instances = {
            r.metadata.name for r in store.list(Kind.AGENT_INSTANCE) if r.metadata.namespace == ns
        }
        assert mirrored_instances == {f"{name}-default" for name in survivors}
        for name in edited:
            history = store.history(Kind.AGENT, mirrored[name].metadata.id)
            assert [h.generation for h in history] == [2, 1], name
            assert history[0].agent.spec.instructions == EDITED
        for name in born:
            assert len(store.history(Kind.AGENT, mirrored[name].metadata.id)) == 1, name
        for name in deleted:
            agent_id = before[name]["status"]["id"]
            assert [h.generation for h in store.history(Kind.AGENT, agent_id)] == [1], (
                "sweeping keeps history"
            )
    print(f"caught up with {3 * BATCH + len(lost)} changes in {caught_up:.1f}s")
