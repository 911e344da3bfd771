"""RocksStore beyond the contract: opening modes, refusals and on-disk format.

The operator holds the read-write handle while people inspect the store, so
the interesting cases involve a second process (``store_holder.py``) and
databases in states the operator did not leave them in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import rocksdict
from store_factories import agent
from store_process import holding

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.store import keys
from stigmer_operator.store.errors import (
    ForeignDatabaseError,
    StoreCorruptError,
    StoreLockedError,
    StoreMissingError,
    StoreOpenError,
    StoreReadOnlyError,
)
from stigmer_operator.store.rocks import OpenMode, RocksStore

READERS = [OpenMode.READ_ONLY, OpenMode.SECONDARY]


def raw(path: Path) -> dict[bytes, bytes]:
    """Every key and value, read with plain rocksdict (no RocksStore involved)."""
    db = rocksdict.Rdict(
        str(path),
        rocksdict.Options(raw_mode=True),
        access_type=rocksdict.AccessType.read_only(False),
    )
    try:
        return dict(db.items())
    finally:
        db.close()


def assert_one_line_naming(error: Exception, path: Path) -> None:
    text = str(error)
    assert "\n" not in text
    assert str(path) in text


# -- creating and reopening ---------------------------------------------------------


@pytest.mark.parametrize("mode", list(OpenMode))
def test_a_missing_store_is_not_created_unless_asked(tmp_path: Path, mode: OpenMode) -> None:
    path = tmp_path / "nothing-here"

    with pytest.raises(StoreMissingError) as caught:
        RocksStore.open(path, mode)

    assert not path.exists()
    assert_one_line_naming(caught.value, path)
    assert "STIGMER_STORE_PATH" in str(caught.value)


def test_create_applies_only_to_read_write(tmp_path: Path) -> None:
    with pytest.raises(StoreMissingError):
        RocksStore.open(tmp_path / "ro", OpenMode.READ_ONLY, create=True)
    assert not (tmp_path / "ro").exists()


def test_an_empty_directory_is_missing_until_created(tmp_path: Path) -> None:
    with pytest.raises(StoreMissingError):
        RocksStore.open(tmp_path)

    RocksStore.open(tmp_path, create=True).close()

    assert raw(tmp_path)[keys.FORMAT_KEY] == keys.FORMAT_MARKER


def test_reopening_continues_the_sequence(rocks_path: Path) -> None:
    with RocksStore.open(rocks_path) as store:
        store.save(agent(1))
        store.save(agent(2))
    with RocksStore.open(rocks_path) as store:
        entry = store.save(agent(3))

    assert entry is not None
    assert entry.sequence == 3


def test_close_flushes_the_memtable_to_a_table_file(rocks_path: Path) -> None:
    store = RocksStore.open(rocks_path)
    store.save(agent(1))
    tables_before = list(rocks_path.glob("*.sst"))

    store.close()

    assert len(list(rocks_path.glob("*.sst"))) > len(tables_before)


def test_stats_report_bytes_on_disk(rocks_path: Path) -> None:
    with RocksStore.open(rocks_path, sync_writes=True) as store:
        empty = store.stats().bytes_on_disk
        for number in range(50):
            store.save(agent(number))
        store.compact()
        assert store.stats().bytes_on_disk > empty > 0


def test_history_values_are_canonical_protobuf(rocks_path: Path) -> None:
    with RocksStore.open(rocks_path) as store:
        store.save(agent(1))
        (entry,) = store.history(Kind.AGENT, "agt-0001")

    stored = raw(rocks_path)[keys.history(Kind.AGENT, "agt-0001", 1)]

    assert stored == entry.SerializeToString()
    assert store_pb2.HistoryEntry.FromString(stored).agent == agent(1)


# -- a writer in another process ----------------------------------------------------


def test_a_second_writer_is_told_the_store_is_locked(rocks_path: Path) -> None:
    with holding(rocks_path, 3), pytest.raises(StoreLockedError) as caught:
        RocksStore.open(rocks_path)

    assert_one_line_naming(caught.value, rocks_path)
    assert "--read-only" in str(caught.value)
    assert "operator is probably running" in str(caught.value)


def test_a_second_writer_in_the_same_process_is_locked(rocks_path: Path) -> None:
    with RocksStore.open(rocks_path), pytest.raises(StoreLockedError):
        RocksStore.open(rocks_path)


@pytest.mark.parametrize("mode", READERS)
def test_readers_see_the_running_writers_data(rocks_path: Path, mode: OpenMode) -> None:
    with holding(rocks_path, 30), RocksStore.open(rocks_path, mode) as reader:
        assert len(list(reader.list(Kind.AGENT))) == 30
        assert len(list(reader.list_by_org(Kind.AGENT, "org-1"))) == 10
        assert reader.stats().last_sequence == 30
        assert reader.get(Kind.AGENT, "agt-0029") == agent(29, org="org-2")


def test_a_secondary_follows_the_writer_after_refresh(rocks_path: Path) -> None:
    with (
        holding(rocks_path, 2) as holder,
        RocksStore.open(rocks_path, OpenMode.SECONDARY) as secondary,
    ):
        holder.save(77)
        secondary.refresh()

        assert secondary.get(Kind.AGENT, "agt-0077").metadata.org == "org-2"
        assert [entry.sequence for entry in secondary.changes(2)] == [3]


@pytest.mark.parametrize("mode", READERS)
def test_reader_handles_refuse_every_write(rocks_path: Path, mode: OpenMode) -> None:
    with RocksStore.open(rocks_path) as writer:
        writer.save(agent(1))
    before = raw(rocks_path)
    record = store_pb2.OwnershipRecord(agent_id="agt-0001")

    with RocksStore.open(rocks_path, mode) as reader:
        writes = [
            lambda: reader.save(agent(2)),
            lambda: reader.delete(Kind.AGENT, "agt-0001"),
            lambda: reader.delete_kind(Kind.AGENT),
            lambda: reader.purge_history(Kind.AGENT, "agt-0001"),
            lambda: reader.mark_published(1),
            lambda: reader.put_ownership(record),
            reader.compact,
            reader.probe,
        ]
        for write in writes:
            with pytest.raises(StoreReadOnlyError, match=mode.value):
                write()

    assert raw(rocks_path) == before


def test_secondary_handles_clean_up_their_directory(rocks_path: Path) -> None:
    store = RocksStore.open(rocks_path, OpenMode.SECONDARY)
    own_directory = store._secondary_dir
    assert own_directory is not None and own_directory.exists()

    store.close()

    assert not own_directory.exists()


# -- databases the operator did not write --------------------------------------------


@pytest.mark.parametrize("mode", list(OpenMode))
def test_a_rocksdb_without_our_marker_is_foreign_and_left_alone(
    tmp_path: Path, mode: OpenMode
) -> None:
    db = rocksdict.Rdict(str(tmp_path), rocksdict.Options(raw_mode=True))
    db[b"somebody-else"] = b"data"
    db.close()

    with pytest.raises(ForeignDatabaseError) as caught:
        RocksStore.open(tmp_path, mode, create=True)

    assert_one_line_naming(caught.value, tmp_path)
    assert raw(tmp_path) == {b"somebody-else": b"data"}


def test_a_pickle_mode_rocksdict_database_is_foreign_and_still_usable(tmp_path: Path) -> None:
    db = rocksdict.Rdict(str(tmp_path))
    db["greeting"] = {"hello": "world"}
    db.close()
    config = (tmp_path / "rocksdict-config.json").read_text()

    for mode in OpenMode:
        with pytest.raises(ForeignDatabaseError):
            RocksStore.open(tmp_path, mode, create=True)

    assert (tmp_path / "rocksdict-config.json").read_text() == config
    assert json.loads(config)["raw_mode"] is False
    db = rocksdict.Rdict(str(tmp_path))
    assert db["greeting"] == {"hello": "world"}
    db.close()


def test_a_store_of_another_format_version_is_refused(rocks_path: Path) -> None:
    db = rocksdict.Rdict(str(rocks_path), rocksdict.Options(raw_mode=True))
    db[keys.FORMAT_KEY] = b"stigmer-operator/v9"
    db.close()

    with pytest.raises(ForeignDatabaseError, match="v9"):
        RocksStore.open(rocks_path)


def test_a_directory_of_other_files_is_never_turned_into_a_store(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")

    with pytest.raises(ForeignDatabaseError):
        RocksStore.open(tmp_path, create=True)

    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_file_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("")

    with pytest.raises(StoreOpenError, match="not a store directory"):
        RocksStore.open(path, create=True)


@pytest.mark.parametrize("mode", list(OpenMode))
def test_a_damaged_manifest_is_corrupt(rocks_path: Path, mode: OpenMode) -> None:
    for manifest in rocks_path.glob("MANIFEST-*"):
        manifest.write_bytes(b"\x00garbage" * 64)

    with pytest.raises(StoreCorruptError) as caught:
        RocksStore.open(rocks_path, mode)

    assert_one_line_naming(caught.value, rocks_path)
    assert "rebuild" in str(caught.value)


def test_a_missing_current_file_is_corrupt_not_missing(rocks_path: Path) -> None:
    (rocks_path / "CURRENT").unlink()

    with pytest.raises(StoreCorruptError):
        RocksStore.open(rocks_path, create=True)

    assert not (rocks_path / "CURRENT").exists()


def test_a_damaged_table_file_is_reported_when_read(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with RocksStore.open(path, create=True) as store:
        for number in range(20):
            store.save(agent(number))
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    for table in copy.glob("*.sst"):
        data = bytearray(table.read_bytes())
        for index in range(64, len(data) - 64, 5):
            data[index] ^= 0xFF
        table.write_bytes(bytes(data))

    with pytest.raises(StoreCorruptError):
        RocksStore.open(copy, OpenMode.READ_ONLY)
