"""Kill at every step: an operator SIGKILLed after any step of agent-create converges.

For each step of the agent-create pipeline (read from the pipeline
declaration, so a new step is covered without touching this file) a private
operator runs with ``STIGMER_CRASH_AFTER_STEP=<step>``: it SIGKILLs itself
right after that step, with no ``finally`` and no flush, like an OOM kill.
It is then restarted on the same store without the variable, and the result
must be indistinguishable from a run that never crashed: one default
instance, ``store verify`` clean, one history entry per spec version, no
duplicate-slug false positive, ``Ready=True`` on both objects, one
``Created`` Event each.

The scenarios are independent (own namespace, own store, own
operator), so a module fixture crashes and restarts all of them at once --
the waiting overlaps -- and each parametrized test then judges its own.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import kubernetes
import pytest

from stigmer_operator.api.kinds import DEFAULT_INSTANCE_LABEL, Kind
from stigmer_operator.pipeline.pipelines import AGENT_CREATE
from stigmer_operator.pipeline.runner import CRASH_AFTER_STEP_ENV
from stigmer_operator.store import NotFoundError
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import Cluster, condition, read_store, wait_for
from tests.e2e.test_restart import verify

STEPS = AGENT_CREATE.step_names
AGENT = "survivor"
#: Crash points the default instance's pipeline, run inside the Agent's, meets first.
NESTED_FIRST = ("Publish", "TransformResponse", "SendResponse")


@dataclass
class Scenario:
    step: str
    namespace: str
    operator: OperatorProcess
    #: What went wrong between the crash and the restart, judged by the test.
    problem: str = ""


def _reached(step: str, landmark: str) -> bool:
    return STEPS.index(step) >= STEPS.index(landmark)


def _crash_marks(cluster: Cluster, scenario: Scenario) -> str:
    """The process really died at its step: what exists matches the steps that ran."""
    step, ns, operator = scenario.step, scenario.namespace, scenario.operator
    returncode = operator.returncode
    if returncode != -signal.SIGKILL:
        return f"exit {returncode}, expected SIGKILL:\n{operator.log_tail()}"
    if f"{CRASH_AFTER_STEP_ENV}={step}: killing the process" not in operator.log_tail(400):
        return f"no crash at {step} in the log:\n{operator.log_tail()}"
    with read_store(operator.store_path) as store:
        try:
            mirrored = store.get_by_name(Kind.AGENT, ns, AGENT)
        except NotFoundError:
            mirrored = None
        if _reached(step, "Persist"):
            if mirrored is None or len(store.history(Kind.AGENT, mirrored.metadata.id)) != 1:
                return f"crash after {step}: Persist had run but the Agent is not mirrored once"
        elif mirrored is not None:
            return f"crash after {step}: mirrored before Persist ran"
    instance = cluster.get(Kind.AGENT_INSTANCE, ns, f"{AGENT}-default")
    if (instance is not None) != _reached(step, "CreateDefaultInstance"):
        return f"crash after {step}: default instance exists={instance is not None}"
    agent = cluster.get(Kind.AGENT, ns, AGENT) or {}
    # SendResponse is the status patch that writes the id. The default
    # instance's own pipeline runs inside ReconcileDefaultInstance, so a crash
    # point named like one of its later steps is met there first, and the
    # Agent's own status is never written before the crash.
    responded = [bool(o.get("status", {}).get("id")) for o in (agent, instance or {})]
    if step in NESTED_FIRST:
        instance_responded = step == "SendResponse"
    else:
        instance_responded = _reached(step, "ReconcileDefaultInstance")
    if responded != [False, instance_responded]:
        return f"crash after {step}: status ids written (Agent, instance) {responded}"
    return ""


@pytest.fixture(scope="module")
def scenarios(
    control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Scenario]]:  # fmt: skip
    cluster = Cluster(kube_api)
    root = tmp_path_factory.mktemp("crash")
    run = uuid.uuid4().hex[:6]
    found: dict[str, Scenario] = {}
    for index, step in enumerate(STEPS):
        ns = f"p-crash-{index}-{run}"  # p-*: the shared operator does not watch it
        cluster.core.create_namespace({"metadata": {"name": ns}})
        operator = OperatorProcess(
            control_plane.admin_kubeconfig, root / step / "store",
            args=[f"--namespace={ns}"], env={CRASH_AFTER_STEP_ENV: step},
        )  # fmt: skip
        found[step] = Scenario(step, ns, operator)
    try:
        for scenario in found.values():
            scenario.operator.start(wait=False)
        for scenario in found.values():
            scenario.operator.wait_healthy()  # nothing to reconcile yet, nothing to crash on
        for scenario in found.values():
            cluster.create_agent(scenario.namespace, AGENT)
        for scenario in found.values():
            scenario.operator.wait_exit(timeout=60)
            scenario.problem = _crash_marks(cluster, scenario)
            del scenario.operator.env[CRASH_AFTER_STEP_ENV]
            scenario.operator.start(wait=False)  # same store, no crash point
        for scenario in found.values():
            scenario.operator.wait_healthy()
        yield found
    finally:
        with ThreadPoolExecutor(len(found) or 1) as pool:  # SIGTERM them all at once
            list(pool.map(lambda s: s.operator.stop(), found.values()))
        for scenario in found.values():
            cluster.core.delete_namespace(scenario.namespace)


def test_the_pipeline_has_the_twelve_cloud_steps_and_the_default_instances_reconcile() -> None:
    """The parametrization really covers every step: the Cloud's twelve, and one more."""
    assert len(STEPS) == 13
    assert STEPS[0] == "ValidateFieldConstraints" and STEPS[-1] == "SendResponse"
    assert "ReconcileDefaultInstance" in STEPS


def _default_instances(cluster: Cluster, namespace: str, agent_uid: str) -> list[dict[str, Any]]:
    return [
        instance
        for instance in cluster.list(Kind.AGENT_INSTANCE, namespace)
        if instance["metadata"].get("labels", {}).get(DEFAULT_INSTANCE_LABEL) == "true"
        and any(ref.get("uid") == agent_uid and ref.get("controller")
                for ref in instance["metadata"].get("ownerReferences", []))
    ]  # fmt: skip


def _events(cluster: Cluster, namespace: str, name: str) -> list[tuple[str, str, int]]:
    return [(e.type, e.reason, e.count or 1) for e in cluster.events(namespace, name)]


@pytest.mark.parametrize("step", STEPS)
def test_killed_after_step_converges_on_restart(
    control_plane: ControlPlane, cluster: Cluster, scenarios: dict[str, Scenario], step: str
) -> None:
    scenario = scenarios[step]
    ns, operator = scenario.namespace, scenario.operator
    assert not scenario.problem, scenario.problem
    try:
        agent = cluster.wait_ready(Kind.AGENT, ns, AGENT, timeout=60)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{operator.log_tail()}") from None
    uid, agent_id = agent["metadata"]["uid"], agent["status"]["id"]
    assert operator.returncode is None, operator.log_tail()

    # No duplicate-slug false positive: the re-run is not its own duplicate.
    accepted = condition(agent, "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("True", "Accepted"), accepted

    # Exactly one default instance, owned by the Agent, Ready, named in the status.
    instances = wait_for(
        lambda: _default_instances(cluster, ns, uid), timeout=15, what="the default instance"
    )
    assert [i["metadata"]["name"] for i in instances] == [f"{AGENT}-default"]
    assert len(cluster.list(Kind.AGENT_INSTANCE, ns)) == 1
    instance = cluster.wait_ready(Kind.AGENT_INSTANCE, ns, f"{AGENT}-default")
    assert agent["status"]["defaultInstanceName"] == f"{AGENT}-default"
    assert agent["status"]["defaultInstanceId"] == instance["status"]["id"]

    # The mirror equals the cluster, with one history entry per spec version.
    wait_for(
        lambda: verify(control_plane, operator, ns) == 0,
        timeout=20,
        what="store verify to report no drift",
    )
    with read_store(operator.store_path) as store:
        assert [h.generation for h in store.history(Kind.AGENT, agent_id)] == [1]
        instance_id = instance["status"]["id"]
        assert [h.generation for h in store.history(Kind.AGENT_INSTANCE, instance_id)] == [1]
        assert store.get(Kind.AGENT, agent_id).metadata.uid == uid

    # One Created Event per object, never a second one after the re-run, no warnings.
    for name in (AGENT, f"{AGENT}-default"):
        events = _events(cluster, ns, name)
        created = [e for e in events if e[:2] == ("Normal", "Created")]
        assert created == [("Normal", "Created", 1)], (name, events)
        assert not [e for e in events if e[0] == "Warning" or e[1] == "Updated"], (name, events)
