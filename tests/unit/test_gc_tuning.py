"""The operator's garbage-collector settings (runtime.tune_gc)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stigmer_operator import runtime


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_the_young_generation_is_larger_and_what_exists_at_start_is_frozen() -> None:
    gc.unfreeze()

    runtime.tune_gc()

    assert gc.get_threshold() == runtime.GC_THRESHOLDS
    assert runtime.GC_THRESHOLDS[0] > 700  # Python's default
    assert gc.get_freeze_count() > 0
