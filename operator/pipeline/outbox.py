"""Which change-log entries still need a Kubernetes Event.

Persist appends a change-log entry and Publish emits an Event for it, then
marks it published. A crash between the two leaves an unpublished entry
that the re-run's Persist will not re-create (nothing changed any more), so
Publish must find it some other way. Scanning the whole change log on every
request would make a resume of N objects cost O(N^2); instead this outbox
scans the log once per process (lazily, on first use) and afterwards learns
about new entries from Persist. Only the operator writes the store, so the
in-memory view stays exact.

Thread-safe: kopf runs sync handlers for different objects concurrently.
"""

from __future__ import annotations

import threading

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.store.protocol import Store


class Outbox:
    """Unpublished change-log entries, by resource."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._pending: dict[tuple[int, str], dict[int, store_pb2.ChangeLogEntry]] = {}

    def _load(self, store: Store) -> None:
        if self._loaded:
            return
        for entry in store.changes(0):
            if not entry.published:
                self._add(entry)
        self._loaded = True

    def _add(self, entry: store_pb2.ChangeLogEntry) -> None:
        self._pending.setdefault((entry.kind, entry.id), {})[entry.sequence] = entry

    def track(self, store: Store, entry: store_pb2.ChangeLogEntry) -> None:
        """Remember an entry Persist just appended."""
        with self._lock:
            self._load(store)
            self._add(entry)

    def pending(self, store: Store, kind: Kind, resource_id: str) -> list[store_pb2.ChangeLogEntry]:
        """Unpublished entries of one resource, oldest first."""
        with self._lock:
            self._load(store)
            entries = self._pending.get((kind.proto_kind, resource_id), {})
            return [entries[seq] for seq in sorted(entries)]

    def done(self, entry: store_pb2.ChangeLogEntry) -> None:
        """Forget an entry once ``store.mark_published`` succeeded."""
        with self._lock:
            key = (entry.kind, entry.id)
            entries = self._pending.get(key)
            if entries is None:
                return
            entries.pop(entry.sequence, None)
            if not entries:
                del self._pending[key]
