"""Back up a store while the operator runs, and restore it while it does not.

A backup is a plain store directory: a consistent point-in-time copy read
through a secondary handle (which follows the running operator), written
into a fresh, compacted RocksDB database. It can be inspected with any
``stigmer-operator store ... --path BACKUP`` command and restored by
copying its files back.

Restoring replaces a store, so it refuses to run while any process holds the
target store open for writing (RocksDB's ``LOCK``), and refuses a target
that holds anything unless told ``force``; even then it only deletes a
directory that holds nothing but a store's files. The restored store is
opened read-write once before returning, so a backup from an older release
is migrated there and then, and a broken one is reported before the
operator is started on it.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from stigmer_operator.store.errors import StoreOpenError
from stigmer_operator.store.opening import STORE_FILE, open_for_reading, writer_lock
from stigmer_operator.store.protocol import StoreStats
from stigmer_operator.store.rocks import OpenMode, RocksStore

#: Files of a RocksDB directory that hold no data, or belong to one process.
_NOT_COPIED = re.compile(r"^(LOCK|LOG(\.old\.\d+)?)$")


@dataclass(frozen=True, slots=True)
class Copied:
    """What a backup or restore wrote."""

    keys: int
    bytes: int


def backup(store_path: Path, target: Path) -> Copied:
    """Copy the store at ``store_path`` (running or not) into the new directory ``target``."""
    with open_for_reading(store_path) as reader:
        reader.refresh()
        keys = reader.copy_to(target)
    return Copied(keys=keys, bytes=_size(target))


def restore(source: Path, store_path: Path, *, force: bool = False) -> StoreStats:
    """Replace the store at ``store_path`` with the backup at ``source``."""
    RocksStore.open(source, OpenMode.READ_ONLY).close()  # a store of a schema we read
    store_path.mkdir(parents=True, exist_ok=True)
    with writer_lock(store_path, purpose="restoring", create=True):
        present = sorted(entry.name for entry in store_path.iterdir() if entry.name != "LOCK")
        if present and not force:
            raise StoreOpenError(
                f"{store_path} is not empty: restore into an empty directory, or pass --force "
                "to replace the store there (its current contents are lost)"
            )
        foreign = [name for name in present if not STORE_FILE.match(name)]
        if foreign:
            raise StoreOpenError(
                f"{store_path} holds files that are not a store's ({foreign[0]}); refusing to "
                "delete them: check --path"
            )
        for name in present:  # not LOCK: ours while we hold it, and RocksDB reuses it
            (store_path / name).unlink()
        for entry in sorted(source.iterdir()):
            if entry.is_file() and not _NOT_COPIED.match(entry.name):
                shutil.copy2(entry, store_path / entry.name)
    with RocksStore.open(store_path) as restored:  # migrates a backup of an older release
        return restored.stats()


def _size(directory: Path) -> int:
    return sum(entry.stat().st_size for entry in directory.iterdir() if entry.is_file())
