"""``store backup / restore / migrate / prune / compact`` as an administrator runs them.

Real processes throughout: the CLI is the installed console script, and the
"operator" is ``store_holder.py`` holding the store read-write in another
process, writing while the backup is taken.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from store_consistency import check_consistency
from store_factories import agent
from store_process import holding
from test_store_cli import assert_one_line_error, cli

from stigmer_operator.api.kinds import Kind
from stigmer_operator.cli import ExitCode
from stigmer_operator.store.retention import KEEP_ALL
from stigmer_operator.store.rocks import RocksStore

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "store-v1"


def _edited_store(path: Path, versions: int) -> None:
    """A store whose Agent ``team/edited`` has ``versions`` versions of ~20 KB each."""
    with RocksStore.open(path, create=True, retention=KEEP_ALL) as store:
        for generation in range(1, versions + 1):
            prompt = f"Version {generation}. {os.urandom(10_000).hex()}"  # incompressible
            store.save(
                agent(100, namespace="team", name="edited", generation=generation,
                      instructions=prompt)
            )  # fmt: skip


def _generations(path: Path) -> list[int]:
    result = cli("store", "history", "agent", "team/edited", "-o", "json", "--path", str(path))
    assert result.code == ExitCode.OK, result
    return [int(entry["agent"]["metadata"]["generation"]) for entry in result.json()]


def test_backup_while_the_operator_writes_then_wipe_and_restore(tmp_path: Path) -> None:
    store, backup = tmp_path / "store", tmp_path / "backup"
    _edited_store(store, 3)
    with holding(store, 6) as holder:
        holder.save(50)  # only in the writer's WAL and memtable: no table file yet
        result = cli("store", "backup", str(backup), "--path", str(store))
        assert result.code == ExitCode.OK, result
        assert result.json()["keys"] > 0
        holder.save(51)  # after the backup: must not be in it

        refused = cli("store", "restore", str(backup), "--path", str(store), "--force")
        assert_one_line_error(refused, ExitCode.CANNOT_OPEN)
        assert "locked by another writer" in refused.stderr

    refused = cli("store", "restore", str(backup), "--path", str(store))
    assert_one_line_error(refused, ExitCode.CANNOT_OPEN)
    assert "not empty" in refused.stderr

    shutil.rmtree(store)  # the disk is lost
    restored = cli("store", "restore", str(backup), "--path", str(store))

    assert restored.code == ExitCode.OK, restored
    summary = check_consistency(store)
    assert summary.live == 8  # team/edited, agents 0-5 and agent 50
    assert _generations(store) == [3, 2, 1]
    found = cli("store", "get", "agent", "org-2/agent-50", "--path", str(store))
    assert found.code == ExitCode.OK
    missing = cli("store", "get", "agent", "org-0/agent-51", "--path", str(store))
    assert missing.code == ExitCode.NOT_FOUND


def test_restore_with_force_replaces_a_store(tmp_path: Path) -> None:
    _edited_store(tmp_path / "old", 2)
    _edited_store(tmp_path / "current", 5)

    backup = cli("store", "backup", str(tmp_path / "backup"), "--path", str(tmp_path / "old"))
    assert backup.code == ExitCode.OK, backup
    result = cli(
        "store", "restore", str(tmp_path / "backup"), "--path", str(tmp_path / "current"),
        "--force",
    )  # fmt: skip

    assert result.code == ExitCode.OK, result
    assert _generations(tmp_path / "current") == [2, 1]


def test_restore_never_deletes_files_that_are_not_a_store(tmp_path: Path) -> None:
    _edited_store(tmp_path / "store", 1)
    assert cli("store", "backup", str(tmp_path / "b"), "--path", str(tmp_path / "store")).code == 0
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("keep me")

    result = cli("store", "restore", str(tmp_path / "b"), "--path", str(home), "--force")

    assert_one_line_error(result, ExitCode.CANNOT_OPEN)
    assert (home / "notes.txt").read_text() == "keep me"


def test_backup_into_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    _edited_store(tmp_path / "store", 1)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")

    result = cli("store", "backup", str(tmp_path / "busy"), "--path", str(tmp_path / "store"))

    assert_one_line_error(result, ExitCode.CANNOT_OPEN)


def test_migrate_upgrades_an_old_store_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(FIXTURE, store)

    first = cli("store", "migrate", "--path", str(store))
    again = cli("store", "migrate", "--path", str(store))

    assert first.json() == {"store": str(store), "fromSchema": 1, "toSchema": 2}
    assert again.json() == {"store": str(store), "fromSchema": 2, "toSchema": 2}


def test_prune_and_compact_reclaim_space_and_keep_the_newest_versions(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _edited_store(store, 60)

    pruned = cli("store", "prune", "--history-max-versions", "5", "--path", str(store))
    compacted = cli("store", "compact", "--path", str(store))

    assert pruned.code == ExitCode.OK, pruned
    assert pruned.json()["historyEntriesDropped"] == 55
    assert pruned.json()["stats"]["bytesOnDisk"] < pruned.json()["bytesBefore"]
    assert compacted.code == ExitCode.OK, compacted
    assert _generations(store) == [60, 59, 58, 57, 56]
    with RocksStore.open(store) as reopened:
        assert reopened.get(Kind.AGENT, "agt-0100").metadata.generation == 60


def test_writing_commands_refuse_a_store_in_use(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with holding(store, 2):
        for command in ("migrate", "prune", "compact"):
            result = cli("store", command, "--path", str(store))
            assert_one_line_error(result, ExitCode.CANNOT_OPEN)
            assert "locked by another writer" in result.stderr
