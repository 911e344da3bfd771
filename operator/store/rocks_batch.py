"""What one write to the RocksDB store stages: prepared resources, index entries, the batch.

A save is prepared (validated, serialized, hashed, its index entries
computed) outside the store's write lock, then staged into a
:class:`Pending` batch under it. The batch reads its own writes, so several
saves staged into one atomic WriteBatch see each other. The keys come from
:mod:`~stigmer_operator.store.keys`; what goes where is decided by
:class:`~stigmer_operator.store.rocks.RocksStore`.
"""

from __future__ import annotations

from typing import NamedTuple

import rocksdict

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, store_pb2
from stigmer_operator.store import keys, records
from stigmer_operator.store.protocol import spec_hash


class Index(NamedTuple):
    """The index entries (key -> value) one live resource has."""

    #: Keys that end in the resource's id: the org entry (holding a copy of
    #: the resource, a covering index) and the instance-of-agent entry.
    owned: dict[bytes, bytes]
    #: Slug and name entries, holding the id; another resource may claim them.
    claimed: dict[bytes, bytes]

    @classmethod
    def of(cls, kind: Kind, resource: Resource, serialized: bytes) -> Index:
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


NO_INDEX = Index({}, {})


class Prepared(NamedTuple):
    """A resource ready to stage: validated, serialized and hashed outside the lock."""

    kind: Kind
    resource_id: str
    resource: Resource
    key: bytes
    value: bytes
    digest: str
    generation: int
    indexes: Index

    @classmethod
    def of(cls, resource: Resource) -> Prepared:
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
            indexes=Index.of(kind, resource, value),
        )


class Pending:
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


def history_header(item: Prepared, change: store_pb2.ChangeType.ValueType, version: int) -> bytes:
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
