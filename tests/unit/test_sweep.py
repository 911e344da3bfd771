"""``store verify``'s comparison: a mirror that lags its object is drift."""

from __future__ import annotations

from typing import Any

import pytest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import agent_pb2
from stigmer_operator.store.memory import MemoryStore
from stigmer_operator.sweep import compare

ACCEPTED = [
    {"type": "Accepted", "status": "True", "reason": "Accepted"},
    {"type": "Ready", "status": "True", "reason": "Ready"},
]


def _object(**metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "bot",
            "namespace": "team-a",
            "uid": "u1",
            "generation": 2,
            **metadata,
        },
        "status": {"observedGeneration": 2, "conditions": ACCEPTED},
    }


def _mirror(store: MemoryStore, labels: dict[str, str], annotations: dict[str, str]) -> None:
    agent = agent_pb2.Agent(kind="Agent")
    meta = agent.metadata
    meta.id, meta.uid, meta.name, meta.namespace, meta.org = "agt-1", "u1", "bot", "team-a", "a"
    meta.generation = 2
    meta.labels.update(labels)
    meta.annotations.update(annotations)
    store.save(agent)


@pytest.mark.parametrize(
    ("labels", "annotations", "problem"),
    [
        ({"team": "a"}, {"note": "x"}, None),
        ({"team": "b"}, {"note": "x"}, "mirrored labels differ"),
        ({"team": "a"}, {"note": "y"}, "mirrored annotations differ"),
    ],
)
def test_labels_and_annotations_are_compared(
    labels: dict[str, str], annotations: dict[str, str], problem: str | None
) -> None:
    store = MemoryStore()
    _mirror(store, {"team": "a"}, {"note": "x"})
    cluster_annotations = {
        **annotations,
        "agentic.stigmer.ai/last-handled-configuration": "{}",  # kopf's: not mirrored
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    obj = _object(labels=labels, annotations=cluster_annotations)

    drifts = [str(d) for d in compare(store, Kind.AGENT, [obj], [])]

    assert drifts == ([] if problem is None else [f"Agent team-a/bot: {problem} from the object's"])
