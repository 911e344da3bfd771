"""Crash safety: SIGKILL a writing process, then every write is whole or absent.

A real subprocess (``store_crash_writer.py``) does up to 10,000 writes and is
killed mid-way. The database must then open, hold every write the writer was
told succeeded, and pass the raw-key consistency check (indexes, history,
log and last sequence all agree), which a half-applied save would fail.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import rocksdict
from store_consistency import check_consistency
from store_factories import agent, instance

from stigmer_operator.api.kinds import Kind
from stigmer_operator.store import keys
from stigmer_operator.store.rocks import RocksStore

HERE = Path(__file__).resolve().parent
WRITES = 10_000


def write_until_killed(path: Path, acknowledged_at_least: int) -> int:
    """Run the writer, SIGKILL it once that many log entries were acknowledged."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "store_crash_writer.py"), str(path), str(WRITES)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acknowledged = 0
    try:
        for line in process.stdout:
            assert line.strip() != "done", "the writer finished before it could be killed"
            acknowledged = int(line)
            if acknowledged >= acknowledged_at_least:
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return acknowledged


@pytest.mark.parametrize("kill_after", [300, 2500])
def test_a_killed_writer_leaves_only_whole_writes(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "store"

    acknowledged = write_until_killed(path, kill_after)

    summary = check_consistency(path)
    assert summary.last_sequence >= acknowledged
    assert summary.live > 0
    with RocksStore.open(path) as store:
        stats = store.stats()
        assert (stats.last_sequence, stats.history_entries) == (
            summary.last_sequence,
            summary.history_entries,
        )
        entry = store.save(agent(9999, org="after-the-crash"))
    assert entry is not None
    assert entry.sequence == summary.last_sequence + 1
    check_consistency(path)


def _drop_first(path: Path, prefix: bytes) -> None:
    db = rocksdict.Rdict(str(path), rocksdict.Options(raw_mode=True))
    try:
        key = next(k for k in db.keys(from_key=prefix) if k.startswith(prefix))
        del db[key]
    finally:
        db.close()


@pytest.mark.parametrize(
    "piece",
    [
        keys.section_prefix(keys.Section.ORG),
        keys.section_prefix(keys.Section.SLUG),
        keys.section_prefix(keys.Section.INSTANCE),
        keys.section_prefix(keys.Section.HISTORY),
        keys.section_prefix(keys.Section.HEAD),
        keys.section_prefix(keys.Section.LOG),
        keys.resources_of(Kind.AGENT_INSTANCE),
    ],
)
def test_the_check_notices_a_write_missing_any_piece(tmp_path: Path, piece: bytes) -> None:
    path = tmp_path / "store"
    with RocksStore.open(path, create=True) as store:
        store.save(agent(1))
        store.save(instance(1, "agt-0001"))
    check_consistency(path)

    _drop_first(path, piece)

    with pytest.raises(AssertionError):
        check_consistency(path)
