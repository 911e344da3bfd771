"""A watch backlog far larger than ``--backlog-limit``: parked objects converge all the same.

The operator here admits two objects per kind into kopf at a time, so a
burst of Agents parks most of them (compressed, newest event only); edits
and deletions land while they wait. Every Agent must still end up as a
user would expect: Ready at its newest generation, or gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stigmer_operator.api.kinds import Kind
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import VALID_SPEC, Cluster, condition, wait_for

AGENTS = 16
EDITED = 4
DELETED = 3


@pytest.fixture
def narrow_operator(
    control_plane: ControlPlane, private_namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        control_plane.admin_kubeconfig,
        tmp_path / "store",
        args=[f"--namespace={private_namespace}", "--backlog-limit=2"],
    )
    process.start()
    yield process
    process.stop()


def backlog_metrics(operator: OperatorProcess) -> dict[tuple[str, str], float]:
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name.startswith("stigmer_watch_backlog_"):
                values[(sample.name, sample.labels["resource"])] = sample.value
    return values


def settled(obj: dict[str, object] | None) -> bool:
    if obj is None:
        return False
    status = obj.get("status") or {}
    assert isinstance(status, dict)
    metadata = obj["metadata"]
    assert isinstance(metadata, dict)
    return condition(obj, "Ready").get("status") == "True" and status.get(
        "observedGeneration"
    ) == metadata.get("generation")


def test_a_backlog_beyond_the_limit_converges_with_edits_and_deletions_while_parked(
    cluster: Cluster, private_namespace: str, narrow_operator: OperatorProcess
) -> None:
    ns = private_namespace
    names = [f"parked-{i:02d}" for i in range(AGENTS)]
    for name in names:
        cluster.create_agent(ns, name)
    # Edited twice and deleted at once: most of these are parked by now.
    edited, deleted = names[-EDITED:], names[-EDITED - DELETED : -EDITED]
    for round_ in (1, 2):
        for name in edited:
            cluster.patch_spec(
                Kind.AGENT, ns, name, {**VALID_SPEC, "description": f"edit {round_}"}
            )
    for name in deleted:
        cluster.delete(Kind.AGENT, ns, name)

    kept = [name for name in names if name not in deleted]

    def converged() -> bool:
        agents = {a["metadata"]["name"]: a for a in cluster.list(Kind.AGENT, ns)}
        instances = {i["metadata"]["name"]: i for i in cluster.list(Kind.AGENT_INSTANCE, ns)}
        return (
            sorted(agents) == sorted(kept)
            and all(settled(agents[name]) for name in kept)
            and sorted(instances) == sorted(f"{name}-default" for name in kept)
            and all(settled(instance) for instance in instances.values())
        )

    wait_for(converged, timeout=180, interval=1, what="every kept Agent Ready, deleted ones gone")
    for name in edited:
        agent = cluster.get(Kind.AGENT, ns, name)
        assert agent is not None and agent["spec"]["description"] == "edit 2"
        assert agent["metadata"]["generation"] == 3

    metrics = backlog_metrics(narrow_operator)
    assert metrics[("stigmer_watch_backlog_parks_total", "agents")] > 0, metrics
    wait_for(
        lambda: all(
            metrics[("stigmer_watch_backlog_parked", plural)] == 0
            for plural in ("agents", "agentinstances")
            if (metrics := backlog_metrics(narrow_operator))
        ),
        timeout=60,
        what="nothing left parked",
    )
    assert all(value <= 2 for (name, _), value in metrics.items() if name.endswith("_admitted")), (
        metrics
    )
