"""The read side of the RocksDB store: one handle, guarded reads, the protocol's queries.

Every handle (the operator's read-write one, and the read-only or secondary
ones of ``stigmer-operator store ...``) reads the same way, so reading lives
here, below :class:`~stigmer_operator.store.rocks.RocksStore`, which adds
opening and writing. Every read goes through the helpers at the end of
:class:`RocksReader`, so a failure inside RocksDB or a value that does not
parse surfaces as a :class:`~stigmer_operator.store.errors.StoreError`
naming the store, never as a bare rocksdict exception.
"""

from __future__ import annotations

import builtins
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import rocksdict
from google.protobuf.message import DecodeError, Message

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, store_pb2
from stigmer_operator.store import keys, migrate, scan
from stigmer_operator.store.errors import NotFoundError, StoreCorruptError, StoreError
from stigmer_operator.store.protocol import StoreStats
from stigmer_operator.store.rocks_open import OpenMode, one_line

_MULTI_GET_CHUNK = 256

_M = TypeVar("_M", bound=Message)
_RdictKey = str | int | float | bytes | bool


class RocksReader:
    """An open RocksDB handle and everything that only reads through it."""

    def __init__(
        self,
        db: rocksdict.Rdict,
        path: Path,
        mode: OpenMode,
        *,
        secondary_dir: Path | None = None,
    ) -> None:
        self._db: rocksdict.Rdict | None = db
        self._path = path
        self._mode = mode
        self._secondary_dir = secondary_dir
        self._guard = _ReadGuard(path)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def mode(self) -> OpenMode:
        return self._mode

    @property
    def schema_version(self) -> int:
        """The schema the store is in (older than this build's only on a read-only handle)."""
        version = migrate.stored_version(self._handle())
        if version is None:
            raise StoreCorruptError(f"the store at {self._path} lost its format marker")
        return version

    def refresh(self) -> None:
        """Catch a secondary handle up with the writer (no-op for other modes)."""
        if self._mode is OpenMode.SECONDARY:
            try:
                self._handle().try_catch_up_with_primary()
            except Exception as exc:
                raise StoreError(f"cannot catch up with the store at {self._path}: {exc}") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush (read-write) and release the database; closing twice is harmless."""
        db, self._db = self._db, None
        if db is None:
            return
        try:
            if self._mode is OpenMode.READ_WRITE:
                db.flush(wait=True)
        finally:
            db.close()
            if self._secondary_dir is not None:
                shutil.rmtree(self._secondary_dir, ignore_errors=True)

    def _handle(self) -> rocksdict.Rdict:
        if self._db is None:
            raise StoreError(f"the store at {self._path} is closed")
        return self._db

    # -- resources ---------------------------------------------------------
    def get(self, kind: Kind, resource_id: str) -> Resource:
        key = keys.resource(kind, resource_id)
        db = self._handle()
        with self._guard:  # the hottest read: one guard around the get and the parse
            data = db.get(key)
            if data is not None:
                return kind.message_type.FromString(data)
        raise NotFoundError(f"{kind.value} {resource_id} not found")

    def get_by_slug(self, kind: Kind, org: str, slug: str) -> Resource:
        resource_id = self._get(keys.slug_index(kind, org, slug))
        if resource_id is None:
            raise NotFoundError(f"no {kind.value} with slug {slug!r} in org {org!r}")
        return self.get(kind, resource_id.decode("utf-8"))

    def get_by_name(self, kind: Kind, namespace: str, name: str) -> Resource:
        resource_id = self._get(keys.name_index(kind, namespace, name))
        if resource_id is None:
            raise NotFoundError(f"{kind.value} {namespace}/{name} not found")
        return self.get(kind, resource_id.decode("utf-8"))

    def list(self, kind: Kind) -> Iterator[Resource]:
        return self._messages(keys.resources_of(kind), kind.message_type)

    def list_by_org(self, kind: Kind, org: str) -> Iterator[Resource]:
        # The org index is covering (its values are the resources): one range scan.
        return self._messages(keys.org_prefix(kind, org), kind.message_type)

    def list_instances_of_agent(self, agent_id: str) -> Iterator[agent_instance_pb2.AgentInstance]:
        for resource in self._indexed(Kind.AGENT_INSTANCE, keys.instances_prefix(agent_id)):
            if isinstance(resource, agent_instance_pb2.AgentInstance):
                yield resource

    # -- history -----------------------------------------------------------
    def history(self, kind: Kind, resource_id: str) -> builtins.list[store_pb2.HistoryEntry]:
        prefix = keys.history_prefix(kind, resource_id)
        return builtins.list(self._messages(prefix, store_pb2.HistoryEntry))

    def iter_history(self) -> Iterator[store_pb2.HistoryEntry]:
        """Every history entry of every resource (live or deleted), by kind and id."""
        return self._messages(keys.section_prefix(keys.Section.HISTORY), store_pb2.HistoryEntry)

    # -- change log --------------------------------------------------------
    def changes(self, since: int = 0) -> Iterator[store_pb2.ChangeLogEntry]:
        prefix = keys.section_prefix(keys.Section.LOG)
        start = keys.change(max(since, 0) + 1)
        return self._messages(prefix, store_pb2.ChangeLogEntry, start=start)

    # -- ownership ---------------------------------------------------------
    def get_ownership(self, agent_id: str) -> store_pb2.OwnershipRecord:
        data = self._get(keys.ownership(agent_id))
        if data is None:
            raise NotFoundError(f"no ownership record for Agent {agent_id}")
        return self._parse(store_pb2.OwnershipRecord, data)

    def iter_ownership(self) -> Iterator[store_pb2.OwnershipRecord]:
        """Every ownership record, ordered by agent id."""
        prefix = keys.section_prefix(keys.Section.OWNERSHIP)
        return self._messages(prefix, store_pb2.OwnershipRecord)

    # -- housekeeping ------------------------------------------------------
    def stats(self) -> StoreStats:
        """Counts from the running counters: a few point gets, no scan.

        A read-only handle on a store of schema 1 (before the counters
        existed; the operator migrates it when it starts) counts by scanning.
        """
        counts = self._read_counts() if self._has_counts() else self._scanned_counts()
        return StoreStats(
            agents=counts[keys.Count.AGENTS],
            agent_instances=counts[keys.Count.AGENT_INSTANCES],
            history_entries=counts[keys.Count.HISTORY],
            change_log_entries=counts[keys.Count.LOG],
            last_sequence=self._read_last_sequence(),
            bytes_on_disk=_directory_size(self._path),
        )

    # -- guarded reads (see the module docstring) ------------------------------
    def _get(self, key: bytes) -> bytes | None:
        db = self._handle()
        with self._guard:
            value = db.get(key)
        return None if value is None else _as_bytes(value)

    def _parse(self, message_type: type[_M], data: bytes) -> _M:
        with self._guard:
            return message_type.FromString(data)

    def _scan_keys(self, prefix: bytes) -> Iterator[bytes]:
        db = self._handle()
        read = scan.bounded(prefix)  # must outlive the iterator, see scan.bounded
        with self._guard:
            for key in db.keys(from_key=prefix, read_opt=read):
                yield _as_bytes(key)

    def _messages(
        self, prefix: bytes, message_type: type[_M], *, start: bytes | None = None
    ) -> Iterator[_M]:
        """Parse every value under ``prefix`` (from ``start``), in key order."""
        db = self._handle()
        parse = message_type.FromString
        read = scan.bounded(prefix)  # must outlive the iterator, see scan.bounded
        with self._guard:
            for value in db.values(from_key=start or prefix, read_opt=read):
                yield parse(value)

    def _indexed(self, kind: Kind, index_prefix: bytes) -> Iterator[Resource]:
        """The live resources named by the index entries under ``index_prefix``, in id order.

        A key-only scan of the index (as long as the result), then one
        multi-get per chunk of resource keys.
        """
        index_keys = builtins.list(self._scan_keys(index_prefix))
        resource_keys = keys.indexed_resources(kind, index_prefix, index_keys)
        for first in range(0, len(resource_keys), _MULTI_GET_CHUNK):
            yield from self._get_many(kind, resource_keys[first : first + _MULTI_GET_CHUNK])

    def _get_many(self, kind: Kind, resource_keys: builtins.list[bytes]) -> builtins.list[Resource]:
        db = self._handle()
        parse = kind.message_type.FromString
        with self._guard:
            values: Any = db.get(builtins.list[_RdictKey](resource_keys))  # one multi-get
            return [parse(value) for value in values if value is not None]

    def _count(self, prefix: bytes) -> int:
        return sum(1 for _key in self._scan_keys(prefix))

    def _scan_items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        db = self._handle()
        with self._guard:
            yield from scan.items(db, prefix)

    def _has_counts(self) -> bool:
        return self._get(keys.counter(keys.Count.LOG)) is not None

    def _read_counts(self) -> dict[keys.Count, int]:
        counts = {}
        for count in keys.Count:
            stored = self._get(keys.counter(count))
            if stored is None:
                raise StoreCorruptError(
                    f"the store at {self._path} lost its {count.value.decode()} count: restore "
                    "a backup, or run `stigmer-operator store migrate` after moving the count away"
                )
            counts[count] = keys.decode_count(stored)
        return counts

    def _scanned_counts(self) -> dict[keys.Count, int]:
        return {
            keys.Count.AGENTS: self._count(keys.resources_of(Kind.AGENT)),
            keys.Count.AGENT_INSTANCES: self._count(keys.resources_of(Kind.AGENT_INSTANCE)),
            keys.Count.HISTORY: self._count(keys.section_prefix(keys.Section.HISTORY)),
            keys.Count.LOG: self._count(keys.section_prefix(keys.Section.LOG)),
        }

    def _last_key(self, prefix: bytes) -> bytes | None:
        """The greatest key under ``prefix`` (one seek), None if there is none."""
        db = self._handle()
        read = scan.bounded(prefix)  # must outlive the iterator, see scan.bounded
        with self._guard:
            iterator = db.iter(read)
            iterator.seek_to_last()
            last = _as_bytes(iterator.key()) if iterator.valid() else b""
        return last if last.startswith(prefix) else None

    def _read_last_sequence(self) -> int:
        stored = self._get(keys.LAST_SEQUENCE_KEY)
        from_meta = keys.decode_sequence_value(stored) if stored is not None else 0
        last = self._last_key(keys.section_prefix(keys.Section.LOG))
        from_log = 0 if last is None else keys.change_sequence(last)
        return max(from_meta, from_log)


class _ReadGuard:
    """Turns any failure of a read into a StoreError naming the store.

    A failure inside RocksDB, or a value that does not parse, must reach the
    caller (and the CLI) as a store error, never as a bare rocksdict
    exception. A class rather than ``contextlib.contextmanager``: it wraps
    every point get, and a generator-based context manager costs more than
    the get itself.
    """

    __slots__ = ("_location",)

    def __init__(self, location: Path) -> None:
        self._location = location

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, StoreError):
            raise _read_error(self._location, exc) from exc


def _read_error(location: Path, exc: Exception) -> StoreError:
    detail = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, DecodeError) or "corrupt" in detail.lower():
        return StoreCorruptError(
            f"the store at {location} is corrupt ({detail}): restore a backup, or move it "
            "aside and let the operator rebuild it from the cluster"
        )
    return StoreError(f"reading the store at {location} failed: {detail}")


def _as_bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise StoreCorruptError(f"expected bytes from the store, got {type(value).__name__}")
    return value


def _directory_size(location: Path) -> int:
    """Bytes of the files in the database directory (RocksDB keeps it flat)."""
    total = 0
    for entry in os.scandir(location):
        if entry.is_file(follow_symlinks=False):
            total += entry.stat(follow_symlinks=False).st_size
    return total
