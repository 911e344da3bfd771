"""The counts behind ``stats()`` and ``/metrics`` stay exact and cost no scan.

A scrape every 15 s must not read every history and log key of a store
that holds hundreds of thousands: the RocksDB store keeps running counts in
the same write batches as the entries they count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from store_factories import agent, instance

from stigmer_operator.api.kinds import Kind
from stigmer_operator.metrics import StoreCollector
from stigmer_operator.store.protocol import Store, StoreStats
from stigmer_operator.store.retention import Retention
from stigmer_operator.store.rocks import OpenMode, RocksStore


def _counted(store: Store) -> tuple[int, int, int, int]:
    """The counts the slow way: by listing everything."""
    history = sum(
        len(store.history(kind, resource_id))
        for kind, resource_id in [(Kind.AGENT, f"agt-{n:04d}") for n in range(10)]
        + [(Kind.AGENT_INSTANCE, f"ain-{n:04d}") for n in range(10)]
    )
    return (
        sum(1 for _ in store.list(Kind.AGENT)),
        sum(1 for _ in store.list(Kind.AGENT_INSTANCE)),
        history,
        sum(1 for _ in store.changes()),
    )


def _reported(stats: StoreStats) -> tuple[int, int, int, int]:
    return (stats.agents, stats.agent_instances, stats.history_entries, stats.change_log_entries)


def _churn(store: Store) -> None:
    """Creates, edits beyond the cap, deletes, re-creates, purges and prunes."""
    for number in range(10):
        store.save(agent(number))
        store.save(instance(number, f"agt-{number:04d}"))
    for generation in range(2, 9):
        store.save(agent(3, generation=generation, instructions=f"v{generation}"))
    store.save(agent(3, generation=8, instructions="v8"))  # unchanged: nothing counted
    for number in (1, 2, 5):
        store.delete(Kind.AGENT, f"agt-{number:04d}")
    store.delete(Kind.AGENT, "agt-0001")  # absent: nothing counted
    store.save(agent(2, generation=2))
    store.purge_history(Kind.AGENT, "agt-0005")
    store.delete_kind(Kind.AGENT_INSTANCE)
    for entry in list(store.changes())[:20]:
        store.mark_published(entry.sequence)
    store.prune()


@pytest.mark.parametrize("kind", ["memory", "rocks"])
def test_counts_match_the_contents_after_every_kind_of_write(kind: str, tmp_path: Path) -> None:
    from store_factories import open_store

    store = open_store(kind, tmp_path, Retention(max_versions=4, log_max_entries=30))
    try:
        _churn(store)
        assert _reported(store.stats()) == _counted(store)
    finally:
        store.close()


def test_counts_survive_a_restart_and_are_seen_by_readers(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with RocksStore.open(path, create=True, retention=Retention(max_versions=4)) as store:
        _churn(store)
        expected = _counted(store)
        with RocksStore.open(path, OpenMode.SECONDARY) as reader:
            assert _reported(reader.stats()) == expected
    with RocksStore.open(path) as store:
        assert _reported(store.stats()) == expected


def test_a_scrape_reads_no_range_of_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RocksStore.open(tmp_path / "store", create=True)
    try:
        _churn(store)

        def no_scans(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("a scrape scanned the store")

        for method in ("_scan_keys", "_scan_items", "_messages", "_count"):
            monkeypatch.setattr(RocksStore, method, no_scans)
        registry = CollectorRegistry()
        registry.register(StoreCollector(store))
        text = generate_latest(registry).decode()
    finally:
        monkeypatch.undo()
        store.close()

    assert 'stigmer_store_resources{kind="Agent"} 8.0' in text
    assert "stigmer_store_history_entries" in text
    assert "stigmer_store_change_log_entries" in text
