"""Store records built the same way by every ``Store`` implementation.

``MemoryStore`` and ``RocksStore`` must produce byte-identical history and
change-log entries (the contract suite compares them), so the record
builders live here once instead of in each store.
"""

from __future__ import annotations

import time

from google.protobuf import timestamp_pb2

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.store.errors import StoreCorruptError

#: HistoryEntry's field holding the resource, per kind: its highest-numbered fields.
_HISTORY_RESOURCE_FIELD = {
    Kind.AGENT: store_pb2.HistoryEntry.DESCRIPTOR.fields_by_name["agent"].number,
    Kind.AGENT_INSTANCE: store_pb2.HistoryEntry.DESCRIPTOR.fields_by_name["agent_instance"].number,
}
_WIRE_TYPE_LENGTH_DELIMITED = 2


def now() -> timestamp_pb2.Timestamp:
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def history_with_resource(kind: Kind, header: bytes, data: bytes) -> bytes:
    """A serialized HistoryEntry: its other fields' bytes, then the resource's.

    Protobuf writes fields in field-number order and the resource is the
    highest-numbered field, so this is exactly what serializing the whole
    entry would give, without copying and re-serializing the resource.
    """
    tag = (_HISTORY_RESOURCE_FIELD[kind] << 3) | _WIRE_TYPE_LENGTH_DELIMITED
    return b"".join((header, _varint(tag), _varint(len(data)), data))


def history_resource(entry: store_pb2.HistoryEntry) -> Resource:
    """The resource version a history entry holds."""
    field = entry.WhichOneof("resource")
    if field == "agent":
        return entry.agent
    if field == "agent_instance":
        return entry.agent_instance
    raise StoreCorruptError(f"history entry {entry.id} v{entry.version} holds no resource")


def change_entry(
    sequence: int,
    kind: Kind,
    resource: Resource,
    digest: str,
    change: store_pb2.ChangeType.ValueType,
) -> store_pb2.ChangeLogEntry:
    """The change-log entry for ``change`` of ``resource``."""
    meta = resource.metadata
    return store_pb2.ChangeLogEntry(
        sequence=sequence,
        recorded_at=now(),
        kind=kind.proto_kind,
        id=meta.id,
        org=meta.org,
        namespace=meta.namespace,
        name=meta.name,
        change=change,
        generation=meta.generation,
        spec_hash=digest,
    )


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)
