"""kopf copies the memo for every object it watches and keeps the copy; ours stays one object."""

from __future__ import annotations

import copy

import kubernetes

from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.pipeline.deps import Deps
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.settings import OperatorSettings
from stigmer_operator.store.memory import MemoryStore


def test_kopf_s_per_object_copy_is_the_memo_itself() -> None:
    memo = OperatorMemo(
        Deps(MemoryStore(), RecordingKubeEffects()),
        OperatorSettings(),
        kubernetes.client.ApiClient(),
    )
    # What kopf hands each object's handlers, and keeps for as long as it sees
    # the object: the same object, not one more per watched object.
    assert copy.copy(memo) is memo
