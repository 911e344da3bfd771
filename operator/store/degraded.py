"""The operator's store when the disk is full: reads go on, writes wait for room.

A full volume (or one remounted read-only) must not stop the operator: the
cluster -- default instances, IAM objects, status -- does not need the
store to be reconciled, only the mirror and its history do. So the operator
never holds the RocksDB store directly but a :class:`DegradableStore`:

* a write that fails for lack of space raises
  :class:`~stigmer_operator.store.errors.StoreUnwritableError` and the store
  reports ``writable`` False; the pipeline records that the object's mirror
  is behind and carries on (:mod:`stigmer_operator.pipeline.mirror`);
* RocksDB refuses every later write through that handle, even once there is
  room again, so the next write attempted when the volume has room again
  (at most every :data:`REOPEN_INTERVAL_SECONDS`) closes the handle and opens
  the store read-write again. The liveness probe writes, and kopf retries
  every object whose mirror is behind, so room is noticed within seconds;
* a store that cannot even be opened read-write at start-up (RocksDB writes
  when it opens) is read through a read-only handle until then -- or, when
  there is no database to read (a fresh store on a full disk), through an
  empty stand-in that refuses writes.

The handle is never closed under a running call: a reopen waits (briefly)
until no call is using the old handle, and holds new calls until the new
one is there.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, store_pb2
from stigmer_operator.store.errors import StoreOpenError, StoreUnwritableError
from stigmer_operator.store.memory import MemoryStore
from stigmer_operator.store.protocol import Store, StoreStats
from stigmer_operator.store.retention import PruneReport

logger = logging.getLogger(__name__)

#: The least time between two attempts to reopen the store read-write.
REOPEN_INTERVAL_SECONDS = 10.0
#: Free bytes the volume needs before a reopen is tried (RocksDB writes a
#: manifest, an options file and a new write-ahead log when it opens).
REOPEN_MIN_FREE_BYTES = 1024 * 1024

#: The cause reported when the store cannot write for a reason not known yet.
UNKNOWN_CAUSE = "its volume is full or read-only"

#: How long a reopen waits for running calls on the old handle to finish.
SWAP_WAIT_SECONDS = 5.0

_T = TypeVar("_T")
_R = TypeVar("_R")


class DegradableStore:
    """A :class:`Store` that survives its disk filling up; see the module docstring."""

    def __init__(
        self, store: Store, path: Path, reopen: Callable[[], Store], *, cause: str | None = None
    ) -> None:
        """Wrap ``store`` (the store at ``path``).

        ``reopen`` opens it again: read-write if it can, else for reading
        (see :func:`~stigmer_operator.store.opening.open_for_operator`).
        ``cause`` is why ``store`` cannot write, if it cannot.
        """
        self._store = store
        self._cause = cause or UNKNOWN_CAUSE
        self._path = path
        self._reopen = reopen
        #: Serializes reopening; the gate keeps calls off a handle being swapped.
        self._lock = threading.Lock()
        self._gate = _Gate()
        self._last_attempt = time.monotonic()
        #: The handle whose refusal was last logged (each is logged once).
        self._reported: Store | None = None
        if not store.writable:
            logger.warning(
                "the store at %s cannot be written; the operator reconciles the cluster and "
                "mirrors again once the volume has room",
                path,
            )

    @property
    def writable(self) -> bool:
        return self._store.writable

    # -- writes: through :meth:`_write`, which reopens once there is room ----
    def save(self, resource: Resource) -> store_pb2.ChangeLogEntry | None:
        return self._write(lambda store: store.save(resource))

    def delete(
        self, kind: Kind, resource_id: str, *, uid: str | None = None
    ) -> store_pb2.ChangeLogEntry | None:
        return self._write(lambda store: store.delete(kind, resource_id, uid=uid))

    def delete_kind(self, kind: Kind) -> int:
        return self._write(lambda store: store.delete_kind(kind))

    def purge_history(self, kind: Kind, resource_id: str) -> int:
        return self._write(lambda store: store.purge_history(kind, resource_id))

    def mark_published(self, sequence: int) -> None:
        self._write(lambda store: store.mark_published(sequence))

    def put_ownership(self, record: store_pb2.OwnershipRecord) -> None:
        self._write(lambda store: store.put_ownership(record))

    def probe(self) -> None:
        self._write(lambda store: store.probe())

    def prune(self, now_ns: int | None = None) -> PruneReport:
        return self._write(lambda store: store.prune(now_ns))

    # -- reads: through :meth:`_read`, never on a handle being swapped ----------
    def get(self, kind: Kind, resource_id: str) -> Resource:
        return self._read(lambda store: store.get(kind, resource_id))

    def get_by_slug(self, kind: Kind, org: str, slug: str) -> Resource:
        return self._read(lambda store: store.get_by_slug(kind, org, slug))

    def get_by_name(self, kind: Kind, namespace: str, name: str) -> Resource:
        return self._read(lambda store: store.get_by_name(kind, namespace, name))

    def list(self, kind: Kind) -> Iterator[Resource]:
        return self._iterate(lambda store: store.list(kind))

    def list_by_org(self, kind: Kind, org: str) -> Iterator[Resource]:
        return self._iterate(lambda store: store.list_by_org(kind, org))

    def list_instances_of_agent(self, agent_id: str) -> Iterator[agent_instance_pb2.AgentInstance]:
        return self._iterate(lambda store: store.list_instances_of_agent(agent_id))

    def history(self, kind: Kind, resource_id: str) -> builtins.list[store_pb2.HistoryEntry]:
        return self._read(lambda store: store.history(kind, resource_id))

    def changes(self, since: int = 0) -> Iterator[store_pb2.ChangeLogEntry]:
        return self._iterate(lambda store: store.changes(since))

    def get_ownership(self, agent_id: str) -> store_pb2.OwnershipRecord:
        return self._read(lambda store: store.get_ownership(agent_id))

    def stats(self) -> StoreStats:
        return self._read(lambda store: store.stats())

    def close(self) -> None:
        """Close the store; one that cannot write cannot flush either, which loses nothing.

        Every write RocksDB accepted is in its write-ahead log, which the
        next open replays.
        """
        if self._store.writable:
            self._store.close()
            return
        try:
            self._store.close()
        except Exception as error:
            logger.warning("closing the unwritable store at %s: %s", self._path, error)

    # -- degrading and recovering -------------------------------------------------
    def _read(self, call: Callable[[Store], _T]) -> _T:
        with self._gate.use():
            return call(self._store)

    def _iterate(self, call: Callable[[Store], Iterator[_R]]) -> Iterator[_R]:
        with self._gate.use():  # held until the caller is done with the iterator
            yield from call(self._store)

    def _write(self, call: Callable[[Store], _T]) -> _T:
        self._reopen_if_room()
        with self._gate.use():
            store = self._store
            if not store.writable:  # a read-only stand-in: refuse as a full disk does
                raise StoreUnwritableError(
                    f"the store at {self._path} takes no writes ({self._cause})", self._cause
                )
            try:
                return call(store)
            except StoreUnwritableError as error:
                self._refused(store, error)
                raise

    def _refused(self, store: Store, error: StoreUnwritableError) -> None:
        """Log the first refusal of a handle; wait a while before reopening it."""
        with self._lock:
            if store is not self._store or self._reported is store:
                return
            self._reported = store
            self._cause = error.cause
            self._last_attempt = time.monotonic()
        logger.warning(
            "the store cannot write (%s): %s; the operator keeps reconciling the cluster, "
            "and mirrors again once the volume has room",
            error.cause,
            error,
        )

    def _reopen_if_room(self) -> None:
        """Reopen the store if it refused writes and the volume has room now."""
        with self._lock:
            if self._store.writable or not self._may_retry():
                return
            self._last_attempt = time.monotonic()
            with self._gate.exclusive(SWAP_WAIT_SECONDS) as alone:
                if not alone:  # a long read is running: try again at a later write
                    return
                self._swap()

    def _swap(self) -> None:
        _close_quietly(self._store)
        try:
            self._store = self._reopen()
        except StoreOpenError as error:
            logger.warning("reopening the store at %s failed: %s", self._path, error)
            self._store = UnwritableStandIn(self._path)
        if self._store.writable:
            logger.info(
                "the store at %s takes writes again; objects whose mirror is behind "
                "are mirrored as kopf retries them",
                self._path,
            )

    def _may_retry(self) -> bool:
        if time.monotonic() - self._last_attempt < REOPEN_INTERVAL_SECONDS:
            return False
        return _free_bytes(self._path) >= REOPEN_MIN_FREE_BYTES


class UnwritableStandIn(MemoryStore):
    """An empty store that refuses every write, for a store that cannot be opened at all."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._message = f"the store at {path} could not be opened: its volume is full or read-only"

    @property
    def writable(self) -> bool:
        return False

    def _refuse(self) -> StoreUnwritableError:
        return StoreUnwritableError(self._message, "no store could be opened")

    def save(self, resource: Resource) -> store_pb2.ChangeLogEntry | None:
        raise self._refuse()

    def delete(
        self, kind: Kind, resource_id: str, *, uid: str | None = None
    ) -> store_pb2.ChangeLogEntry | None:
        raise self._refuse()

    def delete_kind(self, kind: Kind) -> int:
        raise self._refuse()

    def purge_history(self, kind: Kind, resource_id: str) -> int:
        raise self._refuse()

    def mark_published(self, sequence: int) -> None:
        raise self._refuse()

    def put_ownership(self, record: store_pb2.OwnershipRecord) -> None:
        raise self._refuse()

    def probe(self) -> None:
        raise self._refuse()

    def prune(self, now_ns: int | None = None) -> PruneReport:
        raise self._refuse()


class _Gate:
    """Any number of calls at a time, or one swap of the handle with no call running."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._calls = 0
        self._swapping = False

    @contextlib.contextmanager
    def use(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._swapping)
            self._calls += 1
        try:
            yield
        finally:
            with self._changed:
                self._calls -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def exclusive(self, timeout: float) -> Iterator[bool]:
        """Hold off new calls and wait for running ones; yields False if they did not end."""
        with self._changed:
            self._swapping = True
            alone = self._changed.wait_for(lambda: self._calls == 0, timeout)
        try:
            yield alone
        finally:
            with self._changed:
                self._swapping = False
                self._changed.notify_all()


def _close_quietly(store: Store) -> None:
    try:
        store.close()
    except Exception as error:  # a full disk fails the final flush; the WAL has every write
        logger.info("closing the store handle that refused writes: %s", error)


def _free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the store's volume (0 if read-only)."""
    probe = path if path.exists() else path.parent
    try:
        stat = os.statvfs(probe)
    except OSError:
        return 0
    if stat.f_flag & os.ST_RDONLY:
        return 0
    return stat.f_bavail * stat.f_frsize
