"""The RocksDB :class:`~stigmer_operator.store.protocol.Store` (via ``rocksdict``).

Why RocksDB: the operator needs an embedded, crash-safe, ordered key-value
store whose writes are cheap and whose multi-key updates are atomic. One
:class:`rocksdict.WriteBatch` carries a resource, its indexes, its history
entry, its change-log entry and the new last sequence, so after a crash every
save is either wholly there or wholly absent (the WAL replays whole batches).

Why these settings:

* ``raw_mode``: keys and values are our bytes, not pickles; the key layout
  lives in :mod:`stigmer_operator.store.keys`.
* LZ4 for fresh data, Zstandard with a trained 16 KiB dictionary for the
  bottommost level: most bytes end up at the bottom, where the ratio matters
  and the slower codec is paid once per compaction. The dictionary is what
  makes small records compress: Agents repeat the same field names, server
  names, env names and URLs, which no 4 KiB block holds enough of to learn.
* A whole-key bloom filter and a row cache: ``get``, ``get_by_slug`` and
  ``get_by_name`` are point lookups. A miss (CheckDuplicate asking for a free
  slug) should not touch a data block, and a hit on a hot key (Authorize
  reading an Agent again and again) should not search one: the row cache
  answers it from a hash table.
* WAL on, no fsync per write (``sync_writes=False`` by default): a killed
  operator loses nothing (the WAL is in the OS page cache); a power cut may
  lose the last writes, which the operator re-mirrors from the cluster (the
  source of truth) on its next start. Pass ``sync_writes=True`` to trade
  write throughput for durability across power loss.

Opening is careful because the store is usually opened by two parties: the
operator (the one read-write handle) and ``stigmer-operator store ...``
(read-only or as a secondary, while the operator runs). An open never
creates a database unless asked to, never writes to a database that lacks
our format marker, and turns every RocksDB failure into one of the
:mod:`~stigmer_operator.store.errors` classes with a one-line message that
says what to do.
"""

from __future__ import annotations

import builtins
import enum
import json
import os
import re
import shutil
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

import rocksdict
from google.protobuf.message import DecodeError, Message

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, store_pb2
from stigmer_operator.store import keys, migrate, records, scan
from stigmer_operator.store.errors import (
    ForeignDatabaseError,
    NotFoundError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreMissingError,
    StoreOpenError,
    StoreReadOnlyError,
    check_same_uid,
    held_by,
)
from stigmer_operator.store.protocol import StoreStats, refuse_older_generation, spec_hash
from stigmer_operator.store.retention import PruneReport, Retention

_BLOCK_CACHE_BYTES = 32 * 1024 * 1024
_ROW_CACHE_BYTES = 16 * 1024 * 1024
_WRITE_BUFFER_BYTES = 16 * 1024 * 1024
_MAX_WAL_BYTES = 64 * 1024 * 1024
_BLOOM_BITS_PER_KEY = 10
_ZSTD_LEVEL = 3
_ZSTD_DICTIONARY_BYTES = 16 * 1024
_ZSTD_TRAIN_FACTOR = 100  # sample 100x the dictionary size to train it
_ZLIB_WINDOW_BITS = -14  # RocksDB's default; zstd ignores it
_MULTI_GET_CHUNK = 256
_DELETE_CHUNK = 1000
_ROCKSDICT_CONFIG = "rocksdict-config.json"

#: Field numbers of ``HistoryEntry.agent`` / ``HistoryEntry.agent_instance``.


class OpenMode(enum.Enum):
    """How a handle opens the database."""

    #: The operator's handle; at most one process holds it (RocksDB's LOCK file).
    READ_WRITE = "read-write"
    #: A consistent view as of the moment of opening; works while a writer runs.
    READ_ONLY = "read-only"
    #: Follows a running writer (call :meth:`RocksStore.refresh` to catch up).
    SECONDARY = "secondary"


class _Location(enum.Enum):
    """What is at the path before RocksDB is asked to open it."""

    ABSENT = "absent"
    EMPTY_DIRECTORY = "empty directory"
    DATABASE = "database"
    DAMAGED_DATABASE = "damaged database"
    NOT_A_DIRECTORY = "not a directory"
    OTHER_FILES = "other files"


_M = TypeVar("_M", bound=Message)
_RdictKey = str | int | float | bytes | bool


class RocksStore:
    """A :class:`Store` in a RocksDB directory; see the module docstring."""

    def __init__(
        self,
        db: rocksdict.Rdict,
        path: Path,
        mode: OpenMode,
        *,
        sync_writes: bool = False,
        secondary_dir: Path | None = None,
        retention: Retention | None = None,
    ) -> None:
        """Wrap an opened database; use :meth:`open` rather than calling this."""
        self._db: rocksdict.Rdict | None = db
        self._path = path
        self._mode = mode
        self._secondary_dir = secondary_dir
        self._write_lock = threading.Lock()
        self._write_options = rocksdict.WriteOptions()
        self._write_options.sync = sync_writes
        self._last_sequence = 0
        #: The running counts as last written (read-write handles only).
        self._counts = dict.fromkeys(keys.Count, 0)
        self._retention = retention or Retention()
        self._guard = _ReadGuard(path)

    # -- opening -------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        mode: OpenMode = OpenMode.READ_WRITE,
        *,
        create: bool = False,
        sync_writes: bool = False,
        retention: Retention | None = None,
    ) -> RocksStore:
        """Open the store at ``path``.

        ``create`` (read-write only) makes a new store when nothing is at the
        path (or an empty directory is). A read-write open of a store written
        in an older schema migrates it first (:mod:`.migrate`). ``retention``
        is the policy ``save`` and ``prune`` apply. Raises a
        :class:`~stigmer_operator.store.errors.StoreOpenError` subclass whose
        message is one actionable line.
        """
        location = Path(path)
        state = _inspect(location)
        if state in (_Location.ABSENT, _Location.EMPTY_DIRECTORY):
            if mode is OpenMode.READ_WRITE and create:
                return cls._create(location, sync_writes=sync_writes, retention=retention)
            raise StoreMissingError(
                f"no store at {location}: check --path / STIGMER_STORE_PATH "
                "(the operator creates the store on its first start)"
            )
        _refuse_non_database(location, state)
        _refuse_foreign_rocksdict(location)
        if mode is OpenMode.READ_WRITE:
            # Check the marker through a read-only handle first: opening a
            # foreign database read-write would already rewrite its files.
            _open_rdict(location, OpenMode.READ_ONLY, create=False).close()
        secondary_dir = _secondary_dir() if mode is OpenMode.SECONDARY else None
        db = _open_rdict(location, mode, create=False, secondary_dir=secondary_dir)
        if mode is OpenMode.READ_WRITE:
            _migrated(db, location)
        store = cls(
            db,
            location,
            mode,
            sync_writes=sync_writes,
            secondary_dir=secondary_dir,
            retention=retention,
        )
        return store._started()

    @classmethod
    def _create(
        cls, location: Path, *, sync_writes: bool, retention: Retention | None
    ) -> RocksStore:
        try:
            location.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreOpenError(f"cannot create store directory {location}: {exc}") from exc
        db = _open_rdict(location, OpenMode.READ_WRITE, create=True)
        store = cls(db, location, OpenMode.READ_WRITE, sync_writes=sync_writes, retention=retention)
        batch = rocksdict.WriteBatch(raw_mode=True)
        batch.put(keys.FORMAT_KEY, keys.FORMAT_MARKER)
        batch.put(keys.LAST_SEQUENCE_KEY, keys.encode_sequence_value(0))
        for count in keys.Count:
            batch.put(keys.counter(count), keys.encode_count(0))
        store._write_options.sync = True  # the marker is what makes the directory ours
        try:
            store._write(batch)
        except StoreError as exc:
            store.close()
            raise StoreOpenError(f"cannot create a store at {location}: {exc}") from exc
        store._write_options.sync = sync_writes
        return store._started()

    def _started(self) -> Self:
        """Load the last sequence and counts; on failure release the handle, raise an open error."""
        try:
            self._last_sequence = self._read_last_sequence()
            if self._mode is OpenMode.READ_WRITE:
                self._counts = self._read_counts()
        except StoreOpenError:
            self.close()
            raise
        except StoreError as exc:
            self.close()
            raise StoreOpenError(str(exc)) from exc
        return self

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

    # -- resources ---------------------------------------------------------
    def save(self, resource: Resource) -> store_pb2.ChangeLogEntry | None:
        return self.save_many([resource])[0]

    def save_many(
        self, resources: Sequence[Resource]
    ) -> builtins.list[store_pb2.ChangeLogEntry | None]:
        """Save several resources in one atomic WriteBatch, in order.

        The result equals calling :meth:`save` for each in turn, except that
        all of them land in one write (or none do). The operator's start-up
        re-mirror and bulk imports use it; it is not part of the protocol.
        """
        prepared = [_Prepared.of(resource) for resource in resources]
        with self._write_lock:
            self._writable()
            pending = _Pending(self._last_sequence)
            entries = [self._stage_save(pending, item) for item in prepared]
            self._write_pending(pending)
            return entries

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

    def delete(
        self, kind: Kind, resource_id: str, *, uid: str | None = None
    ) -> store_pb2.ChangeLogEntry | None:
        with self._write_lock:
            self._writable()
            pending = _Pending(self._last_sequence)
            entry = self._stage_delete(pending, kind, resource_id, uid)
            self._write_pending(pending)
            return entry

    def delete_kind(self, kind: Kind) -> int:
        """Delete every live resource of a kind, one WriteBatch per chunk of resources."""
        self._writable()
        ids = [keys.last_component(key) for key in self._scan_keys(keys.resources_of(kind))]
        deleted = 0
        for first in range(0, len(ids), _DELETE_CHUNK):
            with self._write_lock:
                pending = _Pending(self._last_sequence)
                for resource_id in ids[first : first + _DELETE_CHUNK]:
                    if self._stage_delete(pending, kind, resource_id) is not None:
                        deleted += 1
                self._write_pending(pending)
        return deleted

    # -- history -----------------------------------------------------------
    def history(self, kind: Kind, resource_id: str) -> builtins.list[store_pb2.HistoryEntry]:
        prefix = keys.history_prefix(kind, resource_id)
        return builtins.list(self._messages(prefix, store_pb2.HistoryEntry))

    def purge_history(self, kind: Kind, resource_id: str) -> int:
        with self._write_lock:
            self._writable()
            pending = _Pending(self._last_sequence)
            count = self._stage_purge(pending, kind, resource_id)
            self._write_pending(pending)
            return count

    def iter_history(self) -> Iterator[store_pb2.HistoryEntry]:
        """Every history entry of every resource (live or deleted), by kind and id."""
        return self._messages(keys.section_prefix(keys.Section.HISTORY), store_pb2.HistoryEntry)

    # -- change log --------------------------------------------------------
    def changes(self, since: int = 0) -> Iterator[store_pb2.ChangeLogEntry]:
        prefix = keys.section_prefix(keys.Section.LOG)
        start = keys.change(max(since, 0) + 1)
        return self._messages(prefix, store_pb2.ChangeLogEntry, start=start)

    def mark_published(self, sequence: int) -> None:
        key = keys.change(sequence)
        with self._write_lock:
            self._writable()
            data = self._get(key)
            if data is None:
                raise NotFoundError(f"change-log entry {sequence} not found")
            entry = self._parse(store_pb2.ChangeLogEntry, data)
            if not entry.published:
                entry.published = True
                self._put(key, entry.SerializeToString())

    def probe(self) -> None:
        with self._write_lock:
            self._writable()
            self._put(keys.PROBE_KEY, struct.pack(">d", time.time()))

    # -- ownership ---------------------------------------------------------
    def put_ownership(self, record: store_pb2.OwnershipRecord) -> None:
        if not record.agent_id:
            raise ValueError("an ownership record needs agent_id")
        with self._write_lock:
            self._writable()
            self._put(keys.ownership(record.agent_id), record.SerializeToString())

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
    def prune(self, now_ns: int | None = None) -> PruneReport:
        """Apply the retention policy, then compact what it removed.

        Works in small write batches, each under the write lock, so the
        operator keeps saving while a prune runs.
        """
        self._writable()
        now = time.time_ns() if now_ns is None else now_ns
        history = self._prune_history(now) + self._prune_gone(now)
        log = self._prune_log(now)
        if history.removed:
            self._compact_section(keys.Section.HISTORY)
        if log.removed:
            self._compact_section(keys.Section.LOG)
        return history + log

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

    def _prune_history(self, now: int) -> PruneReport:
        """Drop versions past the policy, one resource (one batch) at a time."""
        dropped = 0
        need_age = bool(self._retention.max_age_ns)
        for head_key in builtins.list(self._scan_keys(keys.section_prefix(keys.Section.HEAD))):
            kind, resource_id = keys.resource_ref(head_key)
            with self._write_lock:
                pending = _Pending(self._last_sequence)
                versions = self._versions(kind, resource_id, with_time=need_age)
                for position, (key, recorded_ns) in enumerate(versions):
                    if self._retention.version_expired(position, recorded_ns, now):
                        pending.delete(key)
                        pending.count(keys.Count.HISTORY, -1)
                        dropped += 1
                self._write_pending(pending)
        return PruneReport(history_entries=dropped)

    def _versions(
        self, kind: Kind, resource_id: str, *, with_time: bool
    ) -> builtins.list[tuple[bytes, int]]:
        """(key, recorded_at in ns) of each version, newest first; time 0 unless asked."""
        prefix = keys.history_prefix(kind, resource_id)
        if not with_time:
            return [(key, 0) for key in self._scan_keys(prefix)]
        parse = store_pb2.HistoryEntry.FromString
        with self._guard:
            return [
                (key, parse(value).recorded_at.ToNanoseconds())
                for key, value in self._scan_items(prefix)
            ]

    def _prune_gone(self, now: int) -> PruneReport:
        """Drop the history of resources deleted longer ago than the policy keeps it."""
        expired = [
            keys.resource_ref(key)
            for key, value in self._scan_items(keys.section_prefix(keys.Section.GONE))
            if self._retention.deleted_expired(keys.decode_time_ns(value), now)
        ]
        resources = dropped = 0
        for kind, resource_id in expired:
            with self._write_lock:
                # Re-created since the scan? Then its history is live history again.
                if self._get(keys.gone(kind, resource_id)) is None:
                    continue
                pending = _Pending(self._last_sequence)
                dropped += self._stage_purge(pending, kind, resource_id)
                self._write_pending(pending)
                resources += 1
        return PruneReport(history_entries=dropped, deleted_resources=resources)

    def _prune_log(self, now: int) -> PruneReport:
        """Drop published log entries past the policy, oldest first.

        Unpublished entries are skipped, never dropped: they are the Publish
        step's outbox. ``published`` only ever goes from false to true, so
        an entry seen published here stays droppable.
        """
        entries = self._counts[keys.Count.LOG]
        doomed: builtins.list[bytes] = []
        for entry in self.changes(0):
            if not entry.published:
                continue
            recorded = entry.recorded_at.ToNanoseconds()
            if not self._retention.log_entry_expired(recorded, entries - len(doomed), now):
                break
            doomed.append(keys.change(entry.sequence))
        for first in range(0, len(doomed), _DELETE_CHUNK):
            with self._write_lock:
                pending = _Pending(self._last_sequence)
                for key in doomed[first : first + _DELETE_CHUNK]:
                    pending.delete(key)
                    pending.count(keys.Count.LOG, -1)
                self._write_pending(pending)
        return PruneReport(log_entries=len(doomed))

    def _compact_section(self, section: keys.Section) -> None:
        """Compact one section's key range, so what was deleted leaves the disk."""
        prefix = keys.section_prefix(section)
        self._writable().compact_range(prefix, keys.prefix_end(prefix))

    def copy_to(self, target: Path) -> int:
        """Write everything this handle sees into a new, compacted store at ``target``.

        One iterator reads the whole database, so the copy is one consistent
        point in time (every WriteBatch wholly in or out) even while the
        operator writes: a secondary handle sees the writer's state as of its
        last :meth:`refresh`. ``target`` must not exist or be empty. Returns
        the number of keys copied.
        """
        if _inspect(target) not in (_Location.ABSENT, _Location.EMPTY_DIRECTORY):
            raise StoreOpenError(f"{target} is not empty: back up into a new directory")
        target.mkdir(parents=True, exist_ok=True)
        copy = _open_rdict(target, OpenMode.READ_WRITE, create=True)
        copied = 0
        db = self._handle()
        try:
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in db.items():  # one iterator: one snapshot of every key
                batch.put(key, value)
                copied += 1
                if len(batch) >= _DELETE_CHUNK:
                    copy.write(batch)
                    batch = rocksdict.WriteBatch(raw_mode=True)
            copy.write(batch)
            copy.flush(wait=True)
            copy.compact_range(None, None)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"writing the copy at {target} failed: {_one_line(str(exc))}") from exc
        finally:
            copy.close()
        return copied

    def flush(self) -> None:
        """Write the memtable into a table file, so the WAL behind it can go."""
        self._writable().flush(wait=True)

    def compact(self) -> None:
        """Flush the memtable and rewrite everything into the bottommost level.

        Forcing the bottommost rewrite matters: a lone file would otherwise be
        moved down as it is, still in the fast codec, without the dictionary.
        """
        db = self._writable()
        db.flush(wait=True)
        options = rocksdict.CompactOptions()
        options.set_bottommost_level_compaction(rocksdict.BottommostLevelCompaction.force())
        db.compact_range(None, None, options)

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

    # -- writing -------------------------------------------------------------
    def _handle(self) -> rocksdict.Rdict:
        if self._db is None:
            raise StoreError(f"the store at {self._path} is closed")
        return self._db

    def _writable(self) -> rocksdict.Rdict:
        db = self._handle()
        if self._mode is not OpenMode.READ_WRITE:
            raise StoreReadOnlyError(
                f"the store at {self._path} is open {self._mode.value}; writes need the "
                "operator's read-write handle"
            )
        return db

    def _write(self, batch: rocksdict.WriteBatch) -> None:
        try:
            self._handle().write(batch, self._write_options)
        except Exception as exc:
            raise StoreError(f"write to the store at {self._path} failed: {exc}") from exc

    def _put(self, key: bytes, value: bytes) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        batch.put(key, value)
        self._write(batch)

    def _write_pending(self, pending: _Pending) -> None:
        """Write a staged batch (with the new last sequence and counts), then advance both.

        The sequence and counts only advance once the write succeeded, so a
        failed write leaves no gap in the log and no drift in the counts.
        """
        if pending.sequence != self._last_sequence:
            pending.put(keys.LAST_SEQUENCE_KEY, keys.encode_sequence_value(pending.sequence))
        counts = {count: self._counts[count] + delta for count, delta in pending.deltas.items()}
        for count, value in counts.items():
            pending.put(keys.counter(count), keys.encode_count(value))
        if len(pending.batch):
            self._write(pending.batch)
        self._last_sequence = pending.sequence
        self._counts.update(counts)

    def _stage_save(self, pending: _Pending, item: _Prepared) -> store_pb2.ChangeLogEntry | None:
        previous = self._read(pending, item.key)
        if previous is None:
            old_index = _NO_INDEX
        elif previous == item.value:
            old_index = item.indexes  # same bytes, same index entries: no parse needed
        else:
            old = self._parse(item.kind.message_type, previous)
            check_same_uid(
                item.kind.value, item.resource_id, old.metadata.uid, item.resource.metadata.uid
            )
            refuse_older_generation(old, item.resource)
            old_index = _Index.of(item.kind, old, previous)
        self._move_indexes(pending, item.resource_id, old_index, item.indexes)
        if previous != item.value:
            pending.put(item.key, item.value)
        if previous is None:
            pending.count(keys.Count.of_kind(item.kind), 1)
            gone_key = keys.gone(item.kind, item.resource_id)
            if self._read(pending, gone_key) is not None:
                pending.delete(gone_key)  # re-created: its history is live again
        head = self._head(pending, item.kind, item.resource_id)
        if (
            previous is not None
            and head is not None
            and (head.spec_hash, head.generation) == (item.digest, item.generation)
        ):
            return None
        change = (
            store_pb2.CHANGE_TYPE_UPDATED if previous is not None else store_pb2.CHANGE_TYPE_CREATED
        )
        version = head.version + 1 if head is not None else 1
        header = _history_header(item, change, version)
        pending.put(
            keys.history(item.kind, item.resource_id, version),
            records.history_with_resource(item.kind, header, item.value),
        )
        pending.put(keys.history_head(item.kind, item.resource_id), header)
        pending.count(keys.Count.HISTORY, 1)
        self._stage_cap(pending, item.kind, item.resource_id, version)
        return self._stage_log(pending, item.kind, item.resource, item.digest, change)

    def _stage_cap(self, pending: _Pending, kind: Kind, resource_id: str, version: int) -> None:
        """Drop the version ``max_versions`` behind ``version``, now that it is appended."""
        dropped = self._retention.version_dropped_by_save(version)
        if dropped is None:
            return
        key = keys.history(kind, resource_id, dropped)
        if self._exists(pending, key):
            pending.delete(key)
            pending.count(keys.Count.HISTORY, -1)

    def _exists(self, pending: _Pending, key: bytes) -> bool:
        """Whether a key is present once ``pending`` is written; a miss costs no read."""
        if key in pending.staged:
            return pending.staged[key] is not None
        db = self._handle()
        with self._guard:
            if not db.key_may_exist(key):  # the bloom filter says no
                return False
        return self._get(key) is not None

    def _stage_purge(self, pending: _Pending, kind: Kind, resource_id: str) -> int:
        """Drop a resource's whole history (entries, head, deletion mark)."""
        count = 0
        for key in self._scan_keys(keys.history_prefix(kind, resource_id)):
            pending.delete(key)
            count += 1
        pending.count(keys.Count.HISTORY, -count)
        for key in (keys.history_head(kind, resource_id), keys.gone(kind, resource_id)):
            if self._read(pending, key) is not None:
                pending.delete(key)
        return count

    def _stage_delete(
        self, pending: _Pending, kind: Kind, resource_id: str, uid: str | None = None
    ) -> store_pb2.ChangeLogEntry | None:
        resource_key = keys.resource(kind, resource_id)
        previous = self._read(pending, resource_key)
        if previous is None:
            return None
        old = self._parse(kind.message_type, previous)
        if not held_by(old.metadata.uid, uid):
            return None
        pending.delete(resource_key)
        pending.count(keys.Count.of_kind(kind), -1)
        self._move_indexes(pending, resource_id, _Index.of(kind, old, previous), _NO_INDEX)
        if kind is Kind.AGENT:
            pending.delete(keys.ownership(resource_id))
        if self._read(pending, keys.history_head(kind, resource_id)) is not None:
            pending.put(keys.gone(kind, resource_id), keys.encode_time_ns(time.time_ns()))
        return self._stage_log(pending, kind, old, spec_hash(old), store_pb2.CHANGE_TYPE_DELETED)

    def _stage_log(
        self,
        pending: _Pending,
        kind: Kind,
        resource: Resource,
        digest: str,
        change: store_pb2.ChangeType.ValueType,
    ) -> store_pb2.ChangeLogEntry:
        pending.sequence += 1
        entry = records.change_entry(pending.sequence, kind, resource, digest, change)
        pending.put(keys.change(pending.sequence), entry.SerializeToString())
        pending.count(keys.Count.LOG, 1)
        return entry

    def _move_indexes(self, pending: _Pending, resource_id: str, old: _Index, new: _Index) -> None:
        """Stage the operations that turn ``old``'s index entries into ``new``'s.

        Owned entries (their key ends in the id) exist with exactly the old
        values while the old resource does, so they need no read. Claimed
        entries (slug, name) may have been taken over by another resource
        with the same slug or name (see the protocol): those are read, and
        only removed, or skipped as present, when they name this resource.
        """
        for key in old.owned.keys() - new.owned.keys():
            pending.delete(key)
        for key, value in new.owned.items():
            if old.owned.get(key) != value:
                pending.put(key, value)
        own_id = resource_id.encode("utf-8")
        for key in old.claimed.keys() - new.claimed.keys():
            if self._read(pending, key) == own_id:
                pending.delete(key)
        for key, value in new.claimed.items():
            if key not in old.claimed or self._read(pending, key) != value:
                pending.put(key, value)

    def _read(self, pending: _Pending, key: bytes) -> bytes | None:
        """A value as it will be once ``pending`` is written."""
        if key in pending.staged:
            return pending.staged[key]
        return self._get(key)

    def _head(
        self, pending: _Pending, kind: Kind, resource_id: str
    ) -> store_pb2.HistoryEntry | None:
        """The newest history entry's header (no resource), or None without history."""
        data = self._read(pending, keys.history_head(kind, resource_id))
        return None if data is None else self._parse(store_pb2.HistoryEntry, data)

    # -- reading -------------------------------------------------------------
    # Every read goes through these helpers, so a failure inside RocksDB or a
    # value that does not parse surfaces as a StoreError naming the store,
    # never as a bare rocksdict exception.

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


class _Index(NamedTuple):
    """The index entries (key -> value) one live resource has."""

    #: Keys that end in the resource's id: the org entry (holding a copy of
    #: the resource, a covering index) and the instance-of-agent entry.
    owned: dict[bytes, bytes]
    #: Slug and name entries, holding the id; another resource may claim them.
    claimed: dict[bytes, bytes]

    @classmethod
    def of(cls, kind: Kind, resource: Resource, serialized: bytes) -> _Index:
        meta = resource.metadata
        owned = {keys.org_index(kind, meta.org, meta.id): serialized}
        if isinstance(resource, agent_instance_pb2.AgentInstance) and resource.status.agent_id:
            owned[keys.instance_index(resource.status.agent_id, meta.id)] = b""
        claimed = {}
        own_id = meta.id.encode("utf-8")
        if meta.slug:
            claimed[keys.slug_index(kind, meta.org, meta.slug)] = own_id
        if meta.name:
            claimed[keys.name_index(kind, meta.namespace, meta.name)] = own_id
        return cls(owned, claimed)


_NO_INDEX = _Index({}, {})


class _Prepared(NamedTuple):
    """A resource ready to stage: validated, serialized and hashed outside the lock."""

    kind: Kind
    resource_id: str
    resource: Resource
    key: bytes
    value: bytes
    digest: str
    generation: int
    indexes: _Index

    @classmethod
    def of(cls, resource: Resource) -> _Prepared:
        kind = Kind.of(resource)
        resource_id = resource.metadata.id
        if not resource_id:
            raise ValueError(f"cannot save a {kind.value} without metadata.id")
        value = resource.SerializeToString()
        return cls(
            kind=kind,
            resource_id=resource_id,
            resource=resource,
            key=keys.resource(kind, resource_id),
            value=value,
            digest=spec_hash(resource),
            generation=resource.metadata.generation,
            indexes=_Index.of(kind, resource, value),
        )


class _Pending:
    """A WriteBatch being built that can read its own writes.

    ``save_many`` stages several resources into one batch, and a later one
    must see what an earlier one staged (the same id twice, a slug handed
    over), so reads look at the staged values first.
    """

    def __init__(self, last_sequence: int) -> None:
        self.batch = rocksdict.WriteBatch(raw_mode=True)
        self.staged: dict[bytes, bytes | None] = {}
        self.sequence = last_sequence
        #: How the batch changes each running count.
        self.deltas: dict[keys.Count, int] = {}

    def count(self, count: keys.Count, delta: int) -> None:
        self.deltas[count] = self.deltas.get(count, 0) + delta

    def put(self, key: bytes, value: bytes) -> None:
        self.batch.put(key, value)
        self.staged[key] = value

    def delete(self, key: bytes) -> None:
        self.batch.delete(key)
        self.staged[key] = None


# -- records ------------------------------------------------------------------


def _history_header(item: _Prepared, change: store_pb2.ChangeType.ValueType, version: int) -> bytes:
    """A serialized HistoryEntry without its resource: the ``head`` value."""
    return store_pb2.HistoryEntry(
        kind=item.kind.proto_kind,
        id=item.resource_id,
        version=version,
        generation=item.generation,
        spec_hash=item.digest,
        recorded_at=records.now(),
        change=change,
    ).SerializeToString()


# -- rocksdict glue -----------------------------------------------------------


def _as_bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise StoreCorruptError(f"expected bytes from the store, got {type(value).__name__}")
    return value


def _options(mode: OpenMode, *, create: bool) -> rocksdict.Options:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(create)
    options.set_compression_type(rocksdict.DBCompressionType.lz4())
    options.set_bottommost_compression_type(rocksdict.DBCompressionType.zstd())
    options.set_bottommost_compression_options(
        _ZLIB_WINDOW_BITS, _ZSTD_LEVEL, 0, _ZSTD_DICTIONARY_BYTES, True
    )
    options.set_bottommost_zstd_max_train_bytes(_ZSTD_DICTIONARY_BYTES * _ZSTD_TRAIN_FACTOR, True)
    options.set_level_compaction_dynamic_level_bytes(True)
    options.set_write_buffer_size(_WRITE_BUFFER_BYTES)
    options.set_max_total_wal_size(_MAX_WAL_BYTES)
    options.set_max_background_jobs(2)
    options.set_keep_log_file_num(3)
    table = rocksdict.BlockBasedOptions()
    table.set_bloom_filter(_BLOOM_BITS_PER_KEY, False)
    table.set_block_cache(rocksdict.Cache(_BLOCK_CACHE_BYTES))
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    options.set_block_based_table_factory(table)
    options.set_row_cache(rocksdict.Cache(_ROW_CACHE_BYTES))
    if mode is OpenMode.SECONDARY:
        # A secondary keeps every table file open: the writer may delete
        # compacted files the secondary still reads from.
        options.set_max_open_files(-1)
    return options


def _access(mode: OpenMode, secondary_dir: Path | None) -> rocksdict.AccessType:
    if mode is OpenMode.READ_ONLY:
        # A running writer always has a WAL; reading it is the point.
        return rocksdict.AccessType.read_only(False)
    if mode is OpenMode.SECONDARY:
        if secondary_dir is None:
            raise ValueError("a secondary handle needs a directory of its own")
        return rocksdict.AccessType.secondary(str(secondary_dir))
    return rocksdict.AccessType.read_write()


def _secondary_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="stigmer-store-secondary-"))


def _open_rdict(
    location: Path,
    mode: OpenMode,
    *,
    create: bool,
    secondary_dir: Path | None = None,
) -> rocksdict.Rdict:
    """Open the database and check its format marker (writing it only on create)."""
    try:
        db = rocksdict.Rdict(
            str(location),
            _options(mode, create=create),
            access_type=_access(mode, secondary_dir),
        )
    except Exception as exc:
        _discard(None, secondary_dir)
        raise _open_error(location, mode, exc) from exc
    try:
        if mode is OpenMode.SECONDARY:
            db.try_catch_up_with_primary()
        if not create:
            _check_marker(db, location)
    except StoreOpenError:
        _discard(db, secondary_dir)
        raise
    except Exception as exc:
        _discard(db, secondary_dir)
        raise _open_error(location, mode, exc) from exc
    return db


def _discard(db: rocksdict.Rdict | None, secondary_dir: Path | None) -> None:
    """Release what a failed open acquired."""
    if db is not None:
        db.close()
    if secondary_dir is not None:
        shutil.rmtree(secondary_dir, ignore_errors=True)


def _check_marker(db: rocksdict.Rdict, location: Path) -> None:
    """Accept a store of this build's schema or an older one (which can be migrated)."""
    marker = db.get(keys.FORMAT_KEY)
    if marker is None:
        raise ForeignDatabaseError(
            f"{location} holds a RocksDB database that is not a stigmer-operator store "
            "(no format marker); refusing to touch it: point --path elsewhere"
        )
    version = keys.schema_version(marker) if isinstance(marker, bytes) else None
    if version is None or not 1 <= version <= keys.SCHEMA_VERSION:
        raise ForeignDatabaseError(
            f"{location} is a store of format {marker!r}, this build reads up to "
            f"{keys.FORMAT_MARKER!r}: use a matching stigmer-operator version"
        )


def _migrated(db: rocksdict.Rdict, location: Path) -> None:
    """Bring a read-write database to this build's schema; on failure, close it."""
    try:
        migrate.upgrade(db, location)
    except StoreError as exc:
        db.close()
        raise StoreOpenError(f"{exc}: the store is unchanged from its last schema step") from exc


def _inspect(location: Path) -> _Location:
    if not location.exists():
        return _Location.ABSENT
    if not location.is_dir():
        return _Location.NOT_A_DIRECTORY
    names = {entry.name for entry in location.iterdir()}
    if not names:
        return _Location.EMPTY_DIRECTORY
    if "CURRENT" in names:
        return _Location.DATABASE
    if any(name.startswith("MANIFEST-") or name.endswith(".sst") for name in names):
        return _Location.DAMAGED_DATABASE
    return _Location.OTHER_FILES


def _refuse_non_database(location: Path, state: _Location) -> None:
    if state is _Location.NOT_A_DIRECTORY:
        raise StoreOpenError(f"{location} is a file, not a store directory: check --path")
    if state is _Location.DAMAGED_DATABASE:
        raise StoreCorruptError(
            f"the store at {location} is corrupt (RocksDB files but no CURRENT file): restore "
            "a backup, or move it aside and let the operator rebuild it from the cluster"
        )
    if state is _Location.OTHER_FILES:
        raise ForeignDatabaseError(
            f"{location} is not empty and holds no RocksDB database; refusing to create a "
            "store over it: point --path at an empty or missing directory"
        )


def _refuse_foreign_rocksdict(location: Path) -> None:
    """Refuse a database another rocksdict program wrote in pickle mode.

    rocksdict rewrites its config file on every open, even a read-only one,
    so opening such a database with ``raw_mode`` would break it for its
    owner. Read the config ourselves and stop before RocksDB is involved.
    """
    config_path = location / _ROCKSDICT_CONFIG
    if not config_path.exists():
        return
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreCorruptError(
            f"the store at {location} has an unreadable {_ROCKSDICT_CONFIG} ({exc}): "
            "restore a backup, or move it aside and let the operator rebuild it"
        ) from exc
    if not isinstance(config, dict) or config.get("raw_mode") is not True:
        raise ForeignDatabaseError(
            f"{location} holds a rocksdict database not written by stigmer-operator "
            "(not in raw mode); refusing to touch it: point --path elsewhere"
        )


def _read_error(location: Path, exc: Exception) -> StoreError:
    detail = _one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, DecodeError) or "corrupt" in detail.lower():
        return StoreCorruptError(
            f"the store at {location} is corrupt ({detail}): restore a backup, or move it "
            "aside and let the operator rebuild it from the cluster"
        )
    return StoreError(f"reading the store at {location} failed: {detail}")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _open_error(location: Path, mode: OpenMode, exc: Exception) -> StoreOpenError:
    """Translate a RocksDB open failure into an error class with an actionable line."""
    detail = _one_line(str(exc))
    lowered = detail.lower()
    if "lock" in lowered and (
        "temporarily unavailable" in lowered or "lock hold" in lowered or "lock file" in lowered
    ):
        return StoreLockedError(
            f"the store at {location} is locked by another writer (the operator is probably "
            "running): inspect it with --read-only, or stop the other process"
        )
    if "comparator" in lowered:
        return ForeignDatabaseError(
            f"{location} holds a RocksDB database with another key order ({detail}); it is "
            "not a stigmer-operator store: point --path elsewhere"
        )
    if lowered.startswith("corruption") or "corrupt" in lowered:
        return StoreCorruptError(
            f"the store at {location} is corrupt ({detail}): restore a backup, or move it "
            "aside and let the operator rebuild it from the cluster"
        )
    if "no such file" in lowered:
        # The directory and its CURRENT file were there a moment ago, so a
        # missing file now means the database is damaged, not absent.
        return StoreCorruptError(
            f"the store at {location} is missing files ({detail}): restore a backup, or "
            "move it aside and let the operator rebuild it from the cluster"
        )
    if "permission denied" in lowered:
        return StoreOpenError(
            f"cannot open the store at {location} {mode.value}: permission denied ({detail})"
        )
    return StoreOpenError(f"cannot open the store at {location} {mode.value}: {detail}")


def _directory_size(location: Path) -> int:
    """Bytes of the files in the database directory (RocksDB keeps it flat)."""
    total = 0
    for entry in os.scandir(location):
        if entry.is_file(follow_symlinks=False):
            total += entry.stat(follow_symlinks=False).st_size
    return total
