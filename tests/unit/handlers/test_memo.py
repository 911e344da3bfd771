"""kopf copies the memo for every object it watches; ours must stay one."""

from __future__ import annotations

import copy

import kubernetes

from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.pipeline.deps import Deps
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.settings import OperatorSettings
from stigmer_operator.store.memory import MemoryStore


def test_every_object_sees_the_same_locks_and_references() -> None:
    memo = OperatorMemo(
        Deps(MemoryStore(), RecordingKubeEffects()),
        OperatorSettings(),
        kubernetes.client.ApiClient(),
    )
    per_object = copy.copy(memo)  # what kopf hands each object's handlers
    assert per_object.coordination is memo.coordination
    assert per_object.references is memo.references
    assert per_object.deps is memo.deps
