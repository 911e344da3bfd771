"""Upgrading a RocksDB store written by an older release to this build's schema.

The format marker names the schema version a store was written in
(:data:`~stigmer_operator.store.keys.SCHEMA_VERSION` is this build's). The
operator's read-write open runs every step from the store's version up to
this build's before it touches anything else, so an upgrade of the operator
needs no manual step; ``stigmer-operator store migrate`` runs the same
steps by hand (with the operator stopped). Read-only handles never migrate:
they read older schemas as they are.

Each step is safe to interrupt: it only rewrites values into what they would
have been under the new schema, computes what it adds from scratch, and moves
the marker forward in its last (synced) write. A crash before that leaves
the old marker, and the next open runs the step again from the start.

A store of a *newer* schema than this build's is refused on every open: an
older release would write it in the old way (for example spec hashes an
older way, adding a spurious history version to every object).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rocksdict

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.store import keys, records, scan
from stigmer_operator.store.errors import StoreCorruptError, StoreError
from stigmer_operator.store.protocol import spec_hash

logger = logging.getLogger(__name__)

_BATCH_ENTRIES = 500


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: from ``version`` to ``version + 1``."""

    version: int
    summary: str
    run: Callable[[rocksdict.Rdict], None]


def stored_version(db: rocksdict.Rdict) -> int | None:
    """The schema version of an open database, None if it is not a store of ours."""
    marker = db.get(keys.FORMAT_KEY)
    return keys.schema_version(marker) if isinstance(marker, bytes) else None


def pending(version: int) -> list[Migration]:
    """The steps that take a store of ``version`` to this build's schema, in order."""
    return [step for step in MIGRATIONS if step.version >= version]


def upgrade(db: rocksdict.Rdict, location: Path) -> list[Migration]:
    """Run the pending steps on a read-write database; returns the steps run."""
    version = stored_version(db)
    if version is None:
        raise StoreCorruptError(f"the store at {location} lost its format marker")
    steps = pending(version)
    for step in steps:
        logger.info(
            "migrating the store at %s from schema %d to %d: %s",
            location,
            step.version,
            step.version + 1,
            step.summary,
        )
        started = time.monotonic()
        try:
            step.run(db)
            _write(db, {keys.FORMAT_KEY: keys.format_marker(step.version + 1)}, sync=True)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"migrating the store at {location} to schema {step.version + 1} failed: {exc}"
            ) from exc
        logger.info("schema %d reached in %.1f s", step.version + 1, time.monotonic() - started)
    return steps


# -- schema 1 -> 2 ------------------------------------------------------------------


def _to_v2(db: rocksdict.Rdict) -> None:
    _rehash_history(db)
    _mark_deleted(db)
    _count(db)


def _rehash_history(db: rocksdict.Rdict) -> None:
    """Recompute every history entry's and head's spec hash the canonical way.

    Without this, the first save of each object after the upgrade would see
    a "changed" hash and append a version (and an ``Updated`` Event) though
    nothing changed. The change log keeps its hashes: they name Events that
    were already emitted.
    """
    updates: dict[bytes, bytes] = {}
    newest_seen: set[bytes] = set()
    for key, value in scan.items(db, keys.section_prefix(keys.Section.HISTORY)):
        entry = store_pb2.HistoryEntry.FromString(value)
        digest = spec_hash(records.history_resource(entry))
        if entry.spec_hash != digest:
            entry.spec_hash = digest
            updates[key] = entry.SerializeToString()
        kind, resource_id = keys.resource_ref(key)
        head_key = keys.history_head(kind, resource_id)
        if head_key not in newest_seen:  # keys sort newest first: this is the head's version
            newest_seen.add(head_key)
            header = store_pb2.HistoryEntry()
            header.CopyFrom(entry)
            header.ClearField("resource")
            updates[head_key] = header.SerializeToString()
        if len(updates) >= _BATCH_ENTRIES:
            _write(db, updates)
            updates = {}
    _write(db, updates)


def _mark_deleted(db: rocksdict.Rdict) -> None:
    """Give each deleted resource with history a deletion time: now, the time is unknown."""
    now = keys.encode_time_ns(time.time_ns())
    updates: dict[bytes, bytes] = {}
    for head_key in scan.keys_of(db, keys.section_prefix(keys.Section.HEAD)):
        kind, resource_id = keys.resource_ref(head_key)
        gone_key = keys.gone(kind, resource_id)
        if db.get(keys.resource(kind, resource_id)) is None and db.get(gone_key) is None:
            updates[gone_key] = now
    _write(db, updates)


def _count(db: rocksdict.Rdict) -> None:
    """Write the running counts from a scan of what they count."""
    prefixes = {
        keys.Count.AGENTS: keys.resources_of(Kind.AGENT),
        keys.Count.AGENT_INSTANCES: keys.resources_of(Kind.AGENT_INSTANCE),
        keys.Count.HISTORY: keys.section_prefix(keys.Section.HISTORY),
        keys.Count.LOG: keys.section_prefix(keys.Section.LOG),
    }
    _write(
        db,
        {
            keys.counter(count): keys.encode_count(sum(1 for _ in scan.keys_of(db, prefix)))
            for count, prefix in prefixes.items()
        },
    )


MIGRATIONS = [
    Migration(1, "canonical spec hashes, running counts, deletion times", _to_v2),
]


# -- raw access ---------------------------------------------------------------------


def _write(db: rocksdict.Rdict, updates: dict[bytes, bytes], *, sync: bool = False) -> None:
    if not updates:
        return
    batch = rocksdict.WriteBatch(raw_mode=True)
    for key, value in updates.items():
        batch.put(key, value)
    options = rocksdict.WriteOptions()
    options.sync = sync
    db.write(batch, options)
