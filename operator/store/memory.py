"""An in-memory :class:`~stigmer_operator.store.protocol.Store`.

Unit tests of pipeline steps and handlers run against this store, so it must
behave exactly like :class:`~stigmer_operator.store.rocks.RocksStore`; the
shared contract suite in ``tests/unit/store`` holds both to the same
semantics. It is written as plainly as possible (dicts, a list for the log)
so that it also serves as the readable reference of those semantics: where
the RocksDB store and this one disagree, read this one first.

Values are kept serialized, as in RocksDB, so a caller mutating a message it
passed in or got back can never change what the store holds. Two small
side tables keep ``save`` from parsing what it wrote before (it runs on
every reconcile, often twice): the index keys each live resource holds, and
the head (version, generation, spec hash) of each resource's history -- the
in-memory twin of RocksDB's history head key.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, store_pb2
from stigmer_operator.store import keys, records
from stigmer_operator.store.errors import (
    NotFoundError,
    StoreError,
    check_same_uid,
    held_by,
)
from stigmer_operator.store.protocol import StoreStats, refuse_older_generation, spec_hash
from stigmer_operator.store.retention import PruneReport, Retention

_Ref = tuple[Kind, str]
_IndexKey = tuple[Kind, str, str]
_Predicate = Callable[[Resource], bool]


class _Head(NamedTuple):
    """What ``save`` needs of the newest history entry."""

    version: int
    generation: int
    spec_hash: str


@dataclass(slots=True)
class _State:
    """Everything the store holds; only touched with the store's lock held."""

    live: dict[_Ref, bytes] = field(default_factory=dict)
    slugs: dict[tuple[Kind, str, str], str] = field(default_factory=dict)
    names: dict[tuple[Kind, str, str], str] = field(default_factory=dict)
    history: dict[_Ref, list[bytes]] = field(default_factory=dict)  # oldest first
    #: Newest history entry per resource; present exactly when ``history`` has one.
    heads: dict[_Ref, _Head] = field(default_factory=dict)
    #: The (slug, name) index keys a live resource was indexed under (None: not indexed).
    indexed: dict[_Ref, tuple[_IndexKey | None, _IndexKey | None]] = field(default_factory=dict)
    #: Deleted resources whose history is kept -> when they were deleted (ns).
    gone: dict[_Ref, int] = field(default_factory=dict)
    log: dict[int, bytes] = field(default_factory=dict)
    ownership: dict[str, bytes] = field(default_factory=dict)
    last_sequence: int = 0


def _parse(kind: Kind, data: bytes) -> Resource:
    message = kind.message_type()
    message.ParseFromString(data)
    return message


class MemoryStore:
    """A :class:`Store` held in process memory; lost when the process ends."""

    def __init__(self, retention: Retention | None = None) -> None:
        self._lock = threading.RLock()
        self._state = _State()
        self._closed = False
        self._retention = retention or Retention()

    # -- resources ---------------------------------------------------------
    def save(self, resource: Resource) -> store_pb2.ChangeLogEntry | None:
        kind = Kind.of(resource)
        resource_id = _require_id(resource)
        digest = spec_hash(resource)
        data = resource.SerializeToString()
        with self._lock:
            state = self._open_state()
            ref = (kind, resource_id)
            existed = ref in state.live
            _guard_replacement(kind, resource_id, state.live.get(ref), data, resource)
            self._unindex(ref)
            state.live[ref] = data
            self._index(kind, resource)
            newest = state.heads.get(ref)
            unchanged = (
                existed
                and newest is not None
                and newest.spec_hash == digest
                and newest.generation == resource.metadata.generation
            )
            if unchanged:
                return None
            change = store_pb2.CHANGE_TYPE_UPDATED if existed else store_pb2.CHANGE_TYPE_CREATED
            version = newest.version + 1 if newest is not None else 1
            return self._record(kind, resource, data, digest, change, version)

    def get(self, kind: Kind, resource_id: str) -> Resource:
        with self._lock:
            data = self._open_state().live.get((kind, resource_id))
        if data is None:
            raise NotFoundError(f"{kind.value} {resource_id} not found")
        return _parse(kind, data)

    def get_by_slug(self, kind: Kind, org: str, slug: str) -> Resource:
        with self._lock:
            resource_id = self._open_state().slugs.get((kind, org, slug))
        if resource_id is None:
            raise NotFoundError(f"no {kind.value} with slug {slug!r} in org {org!r}")
        return self.get(kind, resource_id)

    def get_by_name(self, kind: Kind, namespace: str, name: str) -> Resource:
        with self._lock:
            resource_id = self._open_state().names.get((kind, namespace, name))
        if resource_id is None:
            raise NotFoundError(f"{kind.value} {namespace}/{name} not found")
        return self.get(kind, resource_id)

    def list(self, kind: Kind) -> Iterator[Resource]:
        return iter(self._select(kind, lambda _resource: True))

    def list_by_org(self, kind: Kind, org: str) -> Iterator[Resource]:
        return iter(self._select(kind, lambda resource: resource.metadata.org == org))

    def list_instances_of_agent(self, agent_id: str) -> Iterator[agent_instance_pb2.AgentInstance]:
        instances = [
            resource
            for resource in self._select(Kind.AGENT_INSTANCE, lambda _resource: True)
            if isinstance(resource, agent_instance_pb2.AgentInstance)
            and resource.status.agent_id == agent_id
        ]
        return iter(instances)

    def delete(
        self, kind: Kind, resource_id: str, *, uid: str | None = None
    ) -> store_pb2.ChangeLogEntry | None:
        with self._lock:
            state = self._open_state()
            data = state.live.get((kind, resource_id))
            if data is None or not held_by(_parse(kind, data).metadata.uid, uid):
                return None
            del state.live[(kind, resource_id)]
            old = _parse(kind, data)
            self._unindex((kind, resource_id))
            if kind is Kind.AGENT:
                state.ownership.pop(resource_id, None)
            if (kind, resource_id) in state.history:
                state.gone[(kind, resource_id)] = time.time_ns()
            return self._log(kind, old, spec_hash(old), store_pb2.CHANGE_TYPE_DELETED)

    def delete_kind(self, kind: Kind) -> int:
        with self._lock:
            ids = sorted(rid for k, rid in self._open_state().live if k is kind)
            for resource_id in ids:
                self.delete(kind, resource_id)
            return len(ids)

    # -- history -----------------------------------------------------------
    def history(self, kind: Kind, resource_id: str) -> builtins.list[store_pb2.HistoryEntry]:
        with self._lock:
            entries = list(self._open_state().history.get((kind, resource_id), []))
        return [store_pb2.HistoryEntry.FromString(data) for data in reversed(entries)]

    def purge_history(self, kind: Kind, resource_id: str) -> int:
        with self._lock:
            state = self._open_state()
            state.heads.pop((kind, resource_id), None)
            state.gone.pop((kind, resource_id), None)
            return len(state.history.pop((kind, resource_id), []))

    # -- change log --------------------------------------------------------
    def changes(self, since: int = 0) -> Iterator[store_pb2.ChangeLogEntry]:
        with self._lock:
            log = self._open_state().log
            entries = [log[sequence] for sequence in sorted(log) if sequence > since]
        return iter([store_pb2.ChangeLogEntry.FromString(data) for data in entries])

    def mark_published(self, sequence: int) -> None:
        with self._lock:
            log = self._open_state().log
            data = log.get(sequence)
            if data is None:
                raise NotFoundError(f"change-log entry {sequence} not found")
            entry = store_pb2.ChangeLogEntry.FromString(data)
            entry.published = True
            log[sequence] = entry.SerializeToString()

    @property
    def writable(self) -> bool:
        return True  # memory never fills up

    def probe(self) -> None:
        with self._lock:
            self._open_state()  # a closed store fails; memory never fills up

    # -- ownership ---------------------------------------------------------
    def put_ownership(self, record: store_pb2.OwnershipRecord) -> None:
        if not record.agent_id:
            raise ValueError("an ownership record needs agent_id")
        with self._lock:
            self._open_state().ownership[record.agent_id] = record.SerializeToString()

    def get_ownership(self, agent_id: str) -> store_pb2.OwnershipRecord:
        with self._lock:
            data = self._open_state().ownership.get(agent_id)
        if data is None:
            raise NotFoundError(f"no ownership record for Agent {agent_id}")
        return store_pb2.OwnershipRecord.FromString(data)

    # -- housekeeping ------------------------------------------------------
    def prune(self, now_ns: int | None = None) -> PruneReport:
        now = time.time_ns() if now_ns is None else now_ns
        with self._lock:
            self._open_state()
            return self._prune_history(now) + self._prune_gone(now) + self._prune_log(now)

    def _prune_history(self, now: int) -> PruneReport:
        dropped = 0
        for versions in self._state.history.values():
            newest_first = list(reversed(versions))
            kept = [
                data
                for position, data in enumerate(newest_first)
                if not self._retention.version_expired(position, _recorded_ns(data), now)
            ]
            dropped += len(versions) - len(kept)
            versions[:] = reversed(kept)
        return PruneReport(history_entries=dropped)

    def _prune_gone(self, now: int) -> PruneReport:
        expired = [
            ref
            for ref, deleted_at in self._state.gone.items()
            if self._retention.deleted_expired(deleted_at, now)
        ]
        dropped = sum(self.purge_history(*ref) for ref in expired)
        return PruneReport(history_entries=dropped, deleted_resources=len(expired))

    def _prune_log(self, now: int) -> PruneReport:
        log = self._state.log
        dropped = 0
        for sequence in sorted(log):
            entry = store_pb2.ChangeLogEntry.FromString(log[sequence])
            if not entry.published:
                continue
            if not self._retention.log_entry_expired(
                entry.recorded_at.ToNanoseconds(), len(log), now
            ):
                break
            del log[sequence]
            dropped += 1
        return PruneReport(log_entries=dropped)

    def stats(self) -> StoreStats:
        with self._lock:
            state = self._open_state()
            kinds = [kind for kind, _ in state.live]
            return StoreStats(
                agents=kinds.count(Kind.AGENT),
                agent_instances=kinds.count(Kind.AGENT_INSTANCE),
                history_entries=sum(len(entries) for entries in state.history.values()),
                change_log_entries=len(state.log),
                last_sequence=state.last_sequence,
                bytes_on_disk=0,
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -- internals ---------------------------------------------------------
    def _open_state(self) -> _State:
        if self._closed:
            raise StoreError("the memory store is closed")
        return self._state

    def _select(self, kind: Kind, keep: _Predicate) -> builtins.list[Resource]:
        with self._lock:
            live = self._open_state().live
            refs = sorted(ref for ref in live if ref[0] is kind)
            resources = [_parse(kind, live[ref]) for ref in refs]
        return [resource for resource in resources if keep(resource)]

    def _index(self, kind: Kind, resource: Resource) -> None:
        meta = resource.metadata
        slug_key = name_key = None
        if meta.slug:
            slug_key = (kind, meta.org, meta.slug)
            self._state.slugs[slug_key] = meta.id
        if meta.name:
            name_key = (kind, meta.namespace, meta.name)
            self._state.names[name_key] = meta.id
        self._state.indexed[(kind, meta.id)] = (slug_key, name_key)

    def _unindex(self, ref: _Ref) -> None:
        """Drop the slug/name index entries that still name this resource."""
        slug_key, name_key = self._state.indexed.pop(ref, (None, None))
        resource_id = ref[1]
        if slug_key is not None and self._state.slugs.get(slug_key) == resource_id:
            del self._state.slugs[slug_key]
        if name_key is not None and self._state.names.get(name_key) == resource_id:
            del self._state.names[name_key]

    def _record(
        self,
        kind: Kind,
        resource: Resource,
        data: bytes,
        digest: str,
        change: store_pb2.ChangeType.ValueType,
        version: int,
    ) -> store_pb2.ChangeLogEntry:
        header = store_pb2.HistoryEntry(
            kind=kind.proto_kind,
            id=resource.metadata.id,
            version=version,
            generation=resource.metadata.generation,
            spec_hash=digest,
            recorded_at=records.now(),
            change=change,
        ).SerializeToString()
        ref = (kind, resource.metadata.id)
        versions = self._state.history.setdefault(ref, [])
        versions.append(records.history_with_resource(kind, header, data))
        dropped = self._retention.version_dropped_by_save(version)
        if dropped is not None:
            versions[:] = [entry for entry in versions if _version(entry) != dropped]
        self._state.gone.pop(ref, None)
        self._state.heads[ref] = _Head(version, resource.metadata.generation, digest)
        return self._log(kind, resource, digest, change)

    def _log(
        self,
        kind: Kind,
        resource: Resource,
        digest: str,
        change: store_pb2.ChangeType.ValueType,
    ) -> store_pb2.ChangeLogEntry:
        self._state.last_sequence += 1
        entry = records.change_entry(self._state.last_sequence, kind, resource, digest, change)
        self._state.log[entry.sequence] = entry.SerializeToString()
        return entry


def _version(history_entry: bytes) -> int:
    return store_pb2.HistoryEntry.FromString(history_entry).version


def _recorded_ns(history_entry: bytes) -> int:
    return store_pb2.HistoryEntry.FromString(history_entry).recorded_at.ToNanoseconds()


# -- the guards: an entry is only replaced by its own object, never by an older version --
def _guard_replacement(
    kind: Kind, resource_id: str, stored: bytes | None, data: bytes, resource: Resource
) -> None:
    """Raise when ``stored`` mirrors another object, or a newer generation of this one."""
    if stored is not None and stored != data:
        old = _parse(kind, stored)
        check_same_uid(kind.value, resource_id, old.metadata.uid, resource.metadata.uid)
        refuse_older_generation(old, resource)


def _require_id(resource: Resource) -> str:
    """The resource's id, after checking every indexed field is storable.

    The RocksDB store cannot put a NUL byte in a key; refusing it here too
    keeps the two stores' behaviour identical.
    """
    meta = resource.metadata
    if not meta.id:
        raise ValueError(f"cannot save a {Kind.of(resource).value} without metadata.id")
    fields = [meta.id, meta.org, meta.slug, meta.namespace, meta.name]
    if isinstance(resource, agent_instance_pb2.AgentInstance):
        fields.append(resource.status.agent_id)
    for text in fields:
        keys.component(text)
    return meta.id
