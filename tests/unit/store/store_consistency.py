"""Check, from the raw keys, that every write in a RocksStore is whole or absent.

Reads the database with plain rocksdict (not through RocksStore) and derives
every cross-record invariant one atomic save or delete leaves behind: live
value <-> index entries, log <-> history, sequence numbers without gaps. A
save cut in half (a resource without its index, a history entry without its
log entry, a log entry without the last-sequence update) breaks one of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import rocksdict

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, store_pb2
from stigmer_operator.store import keys
from stigmer_operator.store.protocol import spec_hash

_Ref = tuple[Kind, str]


@dataclass(frozen=True)
class Summary:
    """What the consistent database holds."""

    last_sequence: int
    live: int
    history_entries: int


def read_raw(path: Path) -> dict[keys.Section, dict[bytes, bytes]]:
    db = rocksdict.Rdict(
        str(path),
        rocksdict.Options(raw_mode=True),
        access_type=rocksdict.AccessType.read_only(False),
    )
    sections: dict[keys.Section, dict[bytes, bytes]] = {section: {} for section in keys.Section}
    try:
        for key, value in db.items():
            section = keys.Section(key.split(keys.SEPARATOR, 1)[0])
            sections[section][key] = value
    finally:
        db.close()
    return sections


def check_consistency(path: Path, *, migrated_log: bool = False) -> Summary:
    """Raise AssertionError unless every invariant holds.

    ``migrated_log``: the log was written under schema 1, whose spec hashes
    migration does not rewrite (they name Events already emitted); log and
    history are then matched on generations only.
    """
    sections = read_raw(path)
    assert sections[keys.Section.META][keys.FORMAT_KEY] == keys.FORMAT_MARKER
    last = keys.decode_sequence_value(sections[keys.Section.META][keys.LAST_SEQUENCE_KEY])
    log = _check_log(sections[keys.Section.LOG], last)
    history = _check_history(sections[keys.Section.HISTORY])
    live = _live(sections[keys.Section.RESOURCE])
    _check_log_matches_history(log, history, hashes=not migrated_log)
    _check_heads(sections[keys.Section.HEAD], history)
    _check_live_matches_log_and_history(live, log, history)
    _check_indexes(sections, live)
    for key, value in sections[keys.Section.OWNERSHIP].items():
        record = store_pb2.OwnershipRecord.FromString(value)
        assert key == keys.ownership(record.agent_id)
        assert (Kind.AGENT, record.agent_id) in live, f"ownership of deleted {record.agent_id}"
    return Summary(last, len(live), sum(len(v) for v in history.values()))


def _check_log(entries: dict[bytes, bytes], last: int) -> list[store_pb2.ChangeLogEntry]:
    log = [store_pb2.ChangeLogEntry.FromString(value) for value in entries.values()]
    assert [entry.sequence for entry in log] == list(range(1, last + 1)), "gap in the log"
    for key, entry in zip(entries, log, strict=True):
        assert key == keys.change(entry.sequence)
    return log


def _check_history(entries: dict[bytes, bytes]) -> dict[_Ref, list[store_pb2.HistoryEntry]]:
    history: dict[_Ref, list[store_pb2.HistoryEntry]] = defaultdict(list)
    for key, value in entries.items():
        entry = store_pb2.HistoryEntry.FromString(value)
        kind = Kind.from_proto(entry.kind)
        assert key == keys.history(kind, entry.id, entry.version)
        resource = entry.agent if kind is Kind.AGENT else entry.agent_instance
        assert entry.spec_hash == spec_hash(resource)
        assert entry.generation == resource.metadata.generation
        history[(kind, entry.id)].append(entry)
    for versions in history.values():  # keys sort newest first
        assert [e.version for e in versions] == list(range(len(versions), 0, -1))
    return history


def _check_heads(
    heads: dict[bytes, bytes], history: dict[_Ref, list[store_pb2.HistoryEntry]]
) -> None:
    """Each resource with history has a head: its newest entry without the resource."""
    expected = {}
    for (kind, resource_id), versions in history.items():
        newest = store_pb2.HistoryEntry()
        newest.CopyFrom(versions[0])
        newest.ClearField("resource")
        expected[keys.history_head(kind, resource_id)] = newest
    actual = {key: store_pb2.HistoryEntry.FromString(value) for key, value in heads.items()}
    assert actual == expected


def _live(entries: dict[bytes, bytes]) -> dict[_Ref, Resource]:
    live: dict[_Ref, Resource] = {}
    for key, value in entries.items():
        kind = Kind(key.split(keys.SEPARATOR)[1].decode())
        resource = kind.message_type.FromString(value)
        assert key == keys.resource(kind, resource.metadata.id)
        live[(kind, resource.metadata.id)] = resource
    return live


def _check_log_matches_history(
    log: list[store_pb2.ChangeLogEntry],
    history: dict[_Ref, list[store_pb2.HistoryEntry]],
    *,
    hashes: bool,
) -> None:
    """Every CREATED/UPDATED log entry was written with exactly one history entry."""
    appended: dict[_Ref, list[tuple[str, int]]] = defaultdict(list)
    for entry in log:
        if entry.change != store_pb2.CHANGE_TYPE_DELETED:
            ref = (Kind.from_proto(entry.kind), entry.id)
            appended[ref].append((entry.spec_hash if hashes else "", entry.generation))
    recorded = {
        ref: [(e.spec_hash if hashes else "", e.generation) for e in reversed(versions)]
        for ref, versions in history.items()
    }
    assert recorded == dict(appended)


def _check_live_matches_log_and_history(
    live: dict[_Ref, Resource],
    log: list[store_pb2.ChangeLogEntry],
    history: dict[_Ref, list[store_pb2.HistoryEntry]],
) -> None:
    latest: dict[_Ref, store_pb2.ChangeLogEntry] = {}
    for entry in log:
        latest[(Kind.from_proto(entry.kind), entry.id)] = entry
    for ref, entry in latest.items():
        is_deleted = entry.change == store_pb2.CHANGE_TYPE_DELETED
        assert (ref not in live) == is_deleted, f"{ref}: live state disagrees with the log"
    for ref, resource in live.items():
        newest = history[ref][0]
        assert (newest.spec_hash, newest.generation) == (
            spec_hash(resource),
            resource.metadata.generation,
        )


def _check_indexes(
    sections: dict[keys.Section, dict[bytes, bytes]], live: dict[_Ref, Resource]
) -> None:
    expected: dict[bytes, bytes] = {}
    for (kind, resource_id), resource in live.items():
        meta = resource.metadata
        own_id = resource_id.encode()
        # the org index covers the resource: its value is the live value itself
        live_value = sections[keys.Section.RESOURCE][keys.resource(kind, resource_id)]
        expected[keys.org_index(kind, meta.org, resource_id)] = live_value
        expected[keys.slug_index(kind, meta.org, meta.slug)] = own_id
        expected[keys.name_index(kind, meta.namespace, meta.name)] = own_id
        if isinstance(resource, agent_instance_pb2.AgentInstance):
            expected[keys.instance_index(resource.status.agent_id, resource_id)] = b""
    actual: dict[bytes, bytes] = {}
    for section in (keys.Section.ORG, keys.Section.SLUG, keys.Section.NAME, keys.Section.INSTANCE):
        actual.update(sections[section])
    assert actual == expected
