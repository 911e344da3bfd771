"""Fixtures of the store tests: every contract test runs against both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_factories import open_store

from stigmer_operator.store.protocol import Store
from stigmer_operator.store.rocks import RocksStore


@pytest.fixture(params=["memory", "rocks"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(request.param, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def rocks_path(tmp_path: Path) -> Path:
    """A directory holding a freshly created (and closed) RocksStore."""
    path = tmp_path / "store"
    RocksStore.open(path, create=True).close()
    return path
