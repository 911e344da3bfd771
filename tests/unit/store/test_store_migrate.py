"""A store written by the previous release opens, migrates and keeps everything.

``fixtures/store-v1`` was written by the release before schema versions
(``fixtures/make_fixture.py`` says how). Opening it read-write must upgrade
it in place without losing an entry and without the spurious history
version a changed spec hash would otherwise add to every object.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import rocksdict
from store_consistency import check_consistency
from store_factories import agent, instance

from stigmer_operator.api.kinds import Kind
from stigmer_operator.store import keys
from stigmer_operator.store.errors import ForeignDatabaseError
from stigmer_operator.store.retention import Retention, days_ns
from stigmer_operator.store.rocks import OpenMode, RocksStore

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "store-v1"


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(FIXTURE, path)
    return path


def _marker(path: Path) -> bytes:
    db = rocksdict.Rdict(
        str(path), rocksdict.Options(raw_mode=True), access_type=rocksdict.AccessType.read_only()
    )
    try:
        marker = db[keys.FORMAT_KEY]
    finally:
        db.close()
    assert isinstance(marker, bytes)
    return marker


def test_the_fixture_is_a_schema_1_store() -> None:
    assert _marker(FIXTURE) == b"stigmer-operator/v1"


def test_a_read_only_open_reads_an_old_store_without_changing_it(old_store: Path) -> None:
    with RocksStore.open(old_store, OpenMode.READ_ONLY) as view:
        assert view.schema_version == 1
        stats = view.stats()  # no counts stored yet: counted by scanning
        generations = [h.generation for h in view.history(Kind.AGENT, "agt-0002")]

    assert (stats.agents, stats.agent_instances) == (2, 1)
    assert (stats.history_entries, stats.change_log_entries, stats.last_sequence) == (6, 7, 7)
    assert generations == [3, 2, 1]
    assert _marker(old_store) == b"stigmer-operator/v1"


def test_a_read_write_open_migrates_and_keeps_every_entry(old_store: Path) -> None:
    with RocksStore.open(old_store) as store:
        assert store.schema_version == keys.SCHEMA_VERSION
        stats = store.stats()
        generations = [h.generation for h in store.history(Kind.AGENT, "agt-0002")]
        deleted = [h.generation for h in store.history(Kind.AGENT, "agt-0003")]
        published = [entry.published for entry in store.changes()]
        owner = store.get_ownership("agt-0001")

    assert _marker(old_store) == keys.FORMAT_MARKER
    assert (stats.agents, stats.agent_instances) == (2, 1)
    assert (stats.history_entries, stats.change_log_entries, stats.last_sequence) == (6, 7, 7)
    assert generations == [3, 2, 1]
    assert deleted == [1]
    assert published == [True] * 5 + [False] * 2
    assert owner.name == "kept"
    summary = check_consistency(old_store, migrated_log=True)  # history, heads: new hashes
    assert (summary.live, summary.history_entries) == (3, 6)


def test_after_migrating_an_unchanged_object_gets_no_new_version(old_store: Path) -> None:
    """The point of rehashing: the operator's re-mirror after an upgrade changes nothing."""
    with RocksStore.open(old_store) as store:
        entries = [
            store.save(agent(1, name="kept")),
            store.save(agent(2, name="edited", generation=3, instructions="Third version.")),
            store.save(instance(1, "agt-0001")),
        ]
        assert entries == [None, None, None]
        assert store.stats().last_sequence == 7
        edited = store.save(agent(2, name="edited", generation=4, instructions="Fourth."))

    assert edited is not None and edited.sequence == 8


def test_the_history_of_a_resource_deleted_before_the_upgrade_expires_from_the_upgrade(
    old_store: Path,
) -> None:
    retention = Retention(deleted_ttl_ns=days_ns(1))
    with RocksStore.open(old_store, retention=retention) as store:
        upgraded = store.history(Kind.AGENT, "agt-0003")[0].recorded_at.ToNanoseconds()
        assert store.prune(now_ns=upgraded + days_ns(0.5)).deleted_resources == 0
        report = store.prune(now_ns=upgraded + 10 * days_ns(365))
        assert store.history(Kind.AGENT, "agt-0003") == []

    assert (report.deleted_resources, report.history_entries) == (1, 1)


def test_migrating_twice_is_harmless(old_store: Path) -> None:
    RocksStore.open(old_store).close()
    before = check_consistency(old_store, migrated_log=True)
    RocksStore.open(old_store).close()

    assert check_consistency(old_store, migrated_log=True) == before


def test_a_store_of_a_newer_schema_is_refused(old_store: Path) -> None:
    db = rocksdict.Rdict(str(old_store), rocksdict.Options(raw_mode=True))
    db[keys.FORMAT_KEY] = keys.format_marker(keys.SCHEMA_VERSION + 1)
    db.close()

    for mode in OpenMode:
        with pytest.raises(ForeignDatabaseError, match="use a matching stigmer-operator version"):
            RocksStore.open(old_store, mode)
