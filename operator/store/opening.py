"""Opening the store: read-write for the operator, as a reader for ``stigmer-operator store``.

RocksDB allows one writer per directory. The operator opens the store
read-write (creating it on first start, or emptying it first for
``--rebuild-store``); the inspection commands open it as a *secondary*
(which follows the writer's latest state) and fall back to *read-only* (a
snapshot as of opening) when a secondary cannot be set up. Every failure is
a :class:`~.errors.StoreOpenError` (or a subclass) with one line naming the
path, which the callers print as they are.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from stigmer_operator.store.degraded import DegradableStore, UnwritableStandIn
from stigmer_operator.store.errors import (
    ForeignDatabaseError,
    StoreCorruptError,
    StoreLockedError,
    StoreMissingError,
    StoreOpenError,
    StoreUnwritableOpenError,
    open_error,
)
from stigmer_operator.store.protocol import Store
from stigmer_operator.store.retention import Retention
from stigmer_operator.store.rocks import OpenMode, RocksStore

__all__ = [
    "STORE_FILE",
    "open_for_operator",
    "open_for_reading",
    "open_for_writing",
    "writer_lock",
]

logger = logging.getLogger(__name__)


def open_for_writing(
    path: Path, *, rebuild: bool = False, retention: Retention | None = None
) -> Store:
    """Open (or create) the store read-write; ``rebuild`` (``--rebuild-store``) starts it empty.

    Every failure is a :class:`StoreOpenError` with one line naming the path.
    """
    if rebuild and path.is_dir():
        logger.warning(
            "--rebuild-store: removing the contents of %s; the mirror is rebuilt from "
            "the cluster and version history is lost",
            path,
        )
        _empty_for_rebuild(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        detail = exc.strerror or exc
        raise open_error(
            f"cannot create the store's parent directory {path.parent}: {detail}", exc
        ) from exc
    return RocksStore.open(path, OpenMode.READ_WRITE, create=True, retention=retention)


def open_for_operator(
    path: Path, *, rebuild: bool = False, retention: Retention | None = None
) -> DegradableStore:
    """The operator's store: read-write, or -- on a full or read-only volume -- for reading.

    A store that cannot be opened read-write for lack of space (or a
    read-only filesystem) is read as it is until there is room
    (:mod:`.degraded`); every other failure is a :class:`StoreOpenError`.
    """

    def reopen() -> Store:
        try:
            return open_for_writing(path, retention=retention)
        except StoreUnwritableOpenError as error:
            logger.warning("%s; reading the store as it is until the volume has room", error)
            return read_only_stand_in(path)

    try:
        store = open_for_writing(path, rebuild=rebuild, retention=retention)
    except StoreUnwritableOpenError as error:
        logger.warning("%s; reading the store as it is until the volume has room", error)
        return DegradableStore(read_only_stand_in(path), path, reopen, cause=error.cause)
    return DegradableStore(store, path, reopen)


def read_only_stand_in(path: Path) -> Store:
    """The store at ``path`` for reading only, or an empty one refusing writes if none opens."""
    try:
        return RocksStore.open(path, OpenMode.READ_ONLY)
    except (StoreCorruptError, ForeignDatabaseError):
        raise  # not ours to paper over: the operator must not start on it
    except StoreOpenError as error:
        logger.warning("the store at %s cannot be read either, mirroring nothing: %s", path, error)
        return UnwritableStandIn(path)


def open_for_reading(path: Path) -> RocksStore:
    """Open as a secondary (follows the writer), else read-only (a snapshot)."""
    try:
        return RocksStore.open(path, OpenMode.SECONDARY)
    except (StoreMissingError, ForeignDatabaseError, StoreCorruptError):
        raise  # read-only would fail the same way
    except StoreOpenError:
        return RocksStore.open(path, OpenMode.READ_ONLY)


#: What RocksDB (and rocksdict) keep in a database directory.
STORE_FILE = re.compile(
    r"^(CURRENT|IDENTITY|LOCK|LOG(\.old\.\d+)?|(MANIFEST|OPTIONS)-\d+(\.dbtmp)?"
    r"|\d+\.(log|sst|blob|dbtmp)|rocksdict-config\.json)$"
)


def _empty_for_rebuild(path: Path) -> None:
    """Delete what is in the store directory -- never while another process writes to it.

    RocksDB holds a POSIX (fcntl) lock on ``<store>/LOCK`` while a process has
    the store open for writing. Deleting the files under such a process would
    leave it writing into unlinked files while this one creates a second store
    at the same path, so the same lock is taken first, and held while deleting.
    The directory itself stays (it may be a volume's mount point), and a
    directory holding anything but RocksDB's files is refused: a mistyped
    ``--store-path`` must not delete someone's home directory.
    """
    try:
        foreign = sorted(p.name for p in path.iterdir() if not STORE_FILE.match(p.name))
        if foreign:
            raise StoreOpenError(
                f"--rebuild-store: {path} holds files that are not a store's ({foreign[0]}"
                f"{', ...' if len(foreign) > 1 else ''}); refusing to delete them: check "
                "--store-path"
            )
        with writer_lock(path, purpose="using --rebuild-store"):
            for entry in sorted(path.iterdir()):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    except OSError as exc:
        raise StoreOpenError(
            f"--rebuild-store: cannot empty the store directory {path}: {exc.strerror or exc}"
        ) from exc


@contextlib.contextmanager
def writer_lock(path: Path, *, purpose: str, create: bool = False) -> Iterator[None]:
    """Hold ``<store>/LOCK`` as RocksDB's writer would: refuses a store another process writes.

    RocksDB holds a POSIX (fcntl) lock on that file while a process has the
    store open for writing. Without ``create`` a store that has no ``LOCK``
    yet (nothing ever opened it) needs no lock.
    """
    lock_file = path / "LOCK"
    if not create and not lock_file.exists():
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise StoreLockedError(
                f"the store at {path} is locked by another writer (the operator is probably "
                f"running): stop it before {purpose}"
            ) from exc
        yield
    finally:
        os.close(fd)
