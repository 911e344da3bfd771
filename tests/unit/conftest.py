"""Pipeline and handler test fixtures: MemoryStore, RecordingKubeEffects, a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pipeline_world import Clock, World

from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.store.memory import MemoryStore


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    memory = MemoryStore()
    yield memory
    memory.close()


@pytest.fixture
def kube() -> RecordingKubeEffects:
    return RecordingKubeEffects()


@pytest.fixture
def world(store: MemoryStore, kube: RecordingKubeEffects, clock: Clock) -> World:
    return World(store, kube, clock)
