"""The RocksDB :class:`~stigmer_operator.store.protocol.Store` (via ``rocksdict``).

Why RocksDB: the operator needs an embedded, crash-safe, ordered key-value
store whose writes are cheap and whose multi-key updates are atomic. One
:class:`rocksdict.WriteBatch` carries a resource, its indexes, its history
entry, its change-log entry and the new last sequence, so after a crash every
save is either wholly there or wholly absent (the WAL replays whole batches).

WAL on, no fsync per write (``sync_writes=False`` by default): a killed
operator loses nothing (the WAL is in the OS page cache); a power cut may
lose the last writes, which the operator re-mirrors from the cluster (the
source of truth) on its next start. Pass ``sync_writes=True`` to trade
write throughput for durability across power loss.

The store is three layers, one module each: :mod:`.rocks_open` opens a
directory carefully (tuning, inspection, format marker, one-line errors),
:mod:`.rocks_read` reads through an open handle, and this module writes:
every change is staged (:mod:`.rocks_batch`) into one WriteBatch under the
write lock. Retention's policy is in :mod:`.retention`, the key layout in
:mod:`.keys`.
"""

from __future__ import annotations

import builtins
import os
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import rocksdict

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.store import keys, records
from stigmer_operator.store.errors import (
    NotFoundError,
    StoreError,
    StoreMissingError,
    StoreOpenError,
    StoreReadOnlyError,
    StoreUnwritableError,
    StoreUnwritableOpenError,
    check_same_uid,
    held_by,
    open_error,
    unwritable_cause,
)
from stigmer_operator.store.protocol import refuse_older_generation, spec_hash
from stigmer_operator.store.retention import PruneReport, Retention
from stigmer_operator.store.rocks_batch import NO_INDEX as _NO_INDEX
from stigmer_operator.store.rocks_batch import Index as _Index
from stigmer_operator.store.rocks_batch import Pending as _Pending
from stigmer_operator.store.rocks_batch import Prepared as _Prepared
from stigmer_operator.store.rocks_batch import history_header as _history_header
from stigmer_operator.store.rocks_open import (
    Location,
    OpenMode,
    inspect,
    migrated,
    new_secondary_dir,
    one_line,
    open_rdict,
    refuse_foreign_rocksdict,
    refuse_non_database,
)
from stigmer_operator.store.rocks_read import RocksReader

__all__ = ["OpenMode", "RocksStore"]

_DELETE_CHUNK = 1000


class RocksStore(RocksReader):
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
        super().__init__(db, path, mode, secondary_dir=secondary_dir)
        self._write_lock = threading.Lock()
        self._write_options = rocksdict.WriteOptions()
        self._write_options.sync = sync_writes
        self._last_sequence = 0
        #: The running counts as last written (read-write handles only).
        self._counts = dict.fromkeys(keys.Count, 0)
        self._retention = retention or Retention()
        #: Why RocksDB refused a write (it refuses all later ones too), None until it does.
        self._refused: str | None = None

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
        state = inspect(location)
        if state in (Location.ABSENT, Location.EMPTY_DIRECTORY):
            if mode is OpenMode.READ_WRITE and create:
                return cls._create(location, sync_writes=sync_writes, retention=retention)
            raise StoreMissingError(
                f"no store at {location}: check --path / STIGMER_STORE_PATH "
                "(the operator creates the store on its first start)"
            )
        refuse_non_database(location, state)
        refuse_foreign_rocksdict(location)
        if mode is OpenMode.READ_WRITE:
            # Check the marker through a read-only handle first: opening a
            # foreign database read-write would already rewrite its files.
            open_rdict(location, OpenMode.READ_ONLY, create=False).close()
        secondary_dir = new_secondary_dir() if mode is OpenMode.SECONDARY else None
        db = open_rdict(location, mode, create=False, secondary_dir=secondary_dir)
        if mode is OpenMode.READ_WRITE:
            migrated(db, location)
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
            raise open_error(f"cannot create store directory {location}: {exc}", exc) from exc
        db = open_rdict(location, OpenMode.READ_WRITE, create=True)
        store = cls(db, location, OpenMode.READ_WRITE, sync_writes=sync_writes, retention=retention)
        batch = rocksdict.WriteBatch(raw_mode=True)
        batch.put(keys.FORMAT_KEY, keys.FORMAT_MARKER)
        batch.put(keys.LAST_SEQUENCE_KEY, keys.encode_sequence_value(0))
        for count in keys.Count:
            batch.put(keys.counter(count), keys.encode_count(0))
        store._write_options.sync = True  # the marker is what makes the directory ours
        try:
            store._write(batch)
        except StoreUnwritableError as exc:
            _close_quietly(store)
            message = f"cannot create a store at {location}: {exc}"
            raise StoreUnwritableOpenError(message, exc.cause) from exc
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
    def writable(self) -> bool:
        """Whether writes can succeed: a read-write handle RocksDB has not refused a write."""
        return self._mode is OpenMode.READ_WRITE and self._refused is None

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

    def purge_history(self, kind: Kind, resource_id: str) -> int:
        with self._write_lock:
            self._writable()
            pending = _Pending(self._last_sequence)
            count = self._stage_purge(pending, kind, resource_id)
            self._write_pending(pending)
            return count

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
        if inspect(target) not in (Location.ABSENT, Location.EMPTY_DIRECTORY):
            raise StoreOpenError(f"{target} is not empty: back up into a new directory")
        target.mkdir(parents=True, exist_ok=True)
        copy = open_rdict(target, OpenMode.READ_WRITE, create=True)
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
            raise StoreError(f"writing the copy at {target} failed: {one_line(str(exc))}") from exc
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

    # -- writing -------------------------------------------------------------
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
            message = f"write to the store at {self._path} failed: {one_line(str(exc))}"
            cause = unwritable_cause(str(exc))
            if cause is None:
                raise StoreError(message) from exc
            # RocksDB refuses every later write through this handle, even
            # once there is room again: only a reopen clears the error.
            self._refused = cause
            raise StoreUnwritableError(message, cause) from exc

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


def _close_quietly(store: RocksStore) -> None:
    """Release a handle whose final flush cannot succeed (the disk refused a write)."""
    try:
        store.close()
    except Exception:  # the handle is released before close raises
        return
