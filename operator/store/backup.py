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

import contextlib
import errno
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stigmer_operator.store.errors import StoreLockedError, StoreOpenError
from stigmer_operator.store.protocol import StoreStats
from stigmer_operator.store.rocks import OpenMode, RocksStore

#: Files of a RocksDB directory that hold no data, or belong to one process.
_NOT_COPIED = re.compile(r"^(LOCK|LOG(\.old\.\d+)?)$")
#: What RocksDB (and rocksdict) keep in a database directory.
_STORE_FILE = re.compile(
    r"^(CURRENT|IDENTITY|LOCK|LOG(\.old\.\d+)?|(MANIFEST|OPTIONS)-\d+(\.dbtmp)?"
    r"|\d+\.(log|sst|blob|dbtmp)|rocksdict-config\.json)$"
)


@dataclass(frozen=True, slots=True)
class Copied:
    """What a backup or restore wrote."""

    keys: int
    bytes: int


def backup(store_path: Path, target: Path) -> Copied:
    """Copy the store at ``store_path`` (running or not) into the new directory ``target``."""
    try:
        reader = RocksStore.open(store_path, OpenMode.SECONDARY)
    except StoreLockedError:
        raise
    except StoreOpenError:
        reader = RocksStore.open(store_path, OpenMode.READ_ONLY)
    with reader:
        reader.refresh()
        keys = reader.copy_to(target)
    return Copied(keys=keys, bytes=_size(target))


def restore(source: Path, store_path: Path, *, force: bool = False) -> StoreStats:
    """Replace the store at ``store_path`` with the backup at ``source``."""
    RocksStore.open(source, OpenMode.READ_ONLY).close()  # a store of a schema we read
    store_path.mkdir(parents=True, exist_ok=True)
    with _unused(store_path):
        present = sorted(entry.name for entry in store_path.iterdir() if entry.name != "LOCK")
        if present and not force:
            raise StoreOpenError(
                f"{store_path} is not empty: restore into an empty directory, or pass --force "
                "to replace the store there (its current contents are lost)"
            )
        foreign = [name for name in present if not _STORE_FILE.match(name)]
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


@contextlib.contextmanager
def _unused(store_path: Path) -> Iterator[None]:
    """Hold the store's write lock, as RocksDB would: refuses a store in use."""
    lock_file = store_path / "LOCK"
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise StoreLockedError(
                f"the store at {store_path} is in use (the operator is probably running): "
                "stop it before restoring"
            ) from exc
        yield
    finally:
        os.close(fd)


def _size(directory: Path) -> int:
    return sum(entry.stat().st_size for entry in directory.iterdir() if entry.is_file())
