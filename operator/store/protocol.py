"""The ``Store`` protocol: everything the operator asks of its embedded store.

Pipeline steps depend on this protocol, never on RocksDB, so the same steps
run against :class:`~stigmer_operator.store.memory.MemoryStore` in unit tests
and :class:`~stigmer_operator.store.rocks.RocksStore` in the operator. Both
implementations pass one contract suite (``tests/unit/store``).

Semantics every implementation keeps:

* ``save`` is one atomic write of the resource, its indexes, a history entry
  and a change-log entry. It is idempotent: saving a resource whose spec hash
  and generation equal the newest history entry appends no history and no log
  entry (the live value is still rewritten if other bytes differ). That is
  what lets kopf re-run an interrupted pipeline without duplicating history.
  A save while no live entry exists (the first one, or one after ``delete``)
  always appends a CREATED entry: re-creating an object is a change. Indexes
  follow the saved value even when nothing is appended (an org label can
  change without a new generation). The spec hash is :func:`spec_hash`.
* Retention (:class:`~stigmer_operator.store.retention.Retention`, given
  when the store is made): a save that appends a version beyond
  ``max_versions`` drops the oldest versions in the same write; ``prune``
  applies the rest of the policy (age, deleted resources, change log) and
  never drops a resource's newest version nor an unpublished log entry.
* Two live resources claiming one slug (or one ``namespace/name``) is the
  pipeline's bug to prevent (CheckDuplicate); the index then names the one
  saved last, and removing the other never removes it.
* An entry belongs to the Kubernetes object whose uid it holds: a ``save``
  of another uid under the same id raises
  :class:`~stigmer_operator.store.errors.UidMismatchError` and writes
  nothing, and ``delete(..., uid=...)`` removes only the entry of that uid.
  (Ids are derived from uids, so a mismatch means someone forged an id.)
* A save never rolls an object back: saving a generation older than the
  stored one of the same uid raises
  :class:`~stigmer_operator.store.errors.OlderGenerationError` and writes
  nothing (:func:`refuse_older_generation`).
* Missing things raise :class:`~stigmer_operator.store.errors.NotFoundError`.
* ``delete`` removes the live entry and every index (and the ownership record
  of an Agent) but keeps history, and appends a DELETED log entry; deleting
  an absent resource returns ``None`` and writes nothing. ``history`` of a
  resource that never existed (or was purged) is an empty list.
* Implementations are safe to call from several threads.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from google.protobuf import json_format

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, store_pb2
from stigmer_operator.store.errors import OlderGenerationError
from stigmer_operator.store.retention import PruneReport


def spec_hash(resource: Resource) -> str:
    """sha256 (hex) of the canonical JSON of ``resource.spec``.

    Canonical: proto field names, keys sorted, no whitespace, UTF-8, default
    values left out. Protobuf's "deterministic" serialization is only
    deterministic within one build of the library; a different protobuf
    version may order or encode fields differently, and every object would
    then seem changed (a new history version and an ``Updated`` Event each).
    JSON of the field values depends on the values only. Map entries are
    keyed, so their insertion order does not matter either.
    """
    document = json_format.MessageToDict(resource.spec, preserving_proto_field_name=True)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def refuse_older_generation(stored: Resource, incoming: Resource) -> None:
    """Raise :class:`OlderGenerationError` if ``incoming`` is an older version of ``stored``."""
    old, new = stored.metadata, incoming.metadata
    if old.uid == new.uid and new.generation < old.generation:
        raise OlderGenerationError(
            f"{Kind.of(incoming).value} {new.namespace}/{new.name} (uid {new.uid}): "
            f"generation {new.generation} is older than the stored {old.generation}"
        )


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts and size, for ``store stats`` and the store-size metric."""

    agents: int
    agent_instances: int
    history_entries: int
    change_log_entries: int
    last_sequence: int
    bytes_on_disk: int


@runtime_checkable
class Store(Protocol):
    """Persistence of mirrored resources, their history and the change log."""

    # -- resources ---------------------------------------------------------
    def save(self, resource: Resource) -> store_pb2.ChangeLogEntry | None:
        """Write the resource with indexes, history and log entry atomically.

        Returns the new change-log entry, or ``None`` when the spec hash and
        generation match the newest history entry (no history/log appended).
        ``resource.metadata.id`` must be set.
        """
        ...

    def get(self, kind: Kind, resource_id: str) -> Resource:
        """The live resource with this id."""
        ...

    def get_by_slug(self, kind: Kind, org: str, slug: str) -> Resource:
        """The live resource of this kind whose slug is unique in ``org``."""
        ...

    def get_by_name(self, kind: Kind, namespace: str, name: str) -> Resource:
        """The live resource mirroring Kubernetes object ``namespace/name``."""
        ...

    def list(self, kind: Kind) -> Iterator[Resource]:
        """All live resources of a kind, ordered by id."""
        ...

    def list_by_org(self, kind: Kind, org: str) -> Iterator[Resource]:
        """Live resources of a kind in one org; cost proportional to the result."""
        ...

    def list_instances_of_agent(self, agent_id: str) -> Iterator[agent_instance_pb2.AgentInstance]:
        """Live AgentInstances whose ``status.agent_id`` is ``agent_id``."""
        ...

    def delete(
        self, kind: Kind, resource_id: str, *, uid: str | None = None
    ) -> store_pb2.ChangeLogEntry | None:
        """Remove the live entry and its indexes, keep history, log DELETED.

        With ``uid``, only an entry mirroring that object is removed; an
        entry of another uid is left alone (``None``, nothing written).
        """
        ...

    def delete_kind(self, kind: Kind) -> int:
        """Remove every live entry of a kind (history kept); returns the count."""
        ...

    # -- history -----------------------------------------------------------
    def history(self, kind: Kind, resource_id: str) -> builtins.list[store_pb2.HistoryEntry]:
        """Versions of a resource, newest first; survives ``delete``."""
        ...

    def purge_history(self, kind: Kind, resource_id: str) -> int:
        """Drop the history of a resource; returns how many entries went."""
        ...

    # -- change log --------------------------------------------------------
    def changes(self, since: int = 0) -> Iterator[store_pb2.ChangeLogEntry]:
        """Log entries with ``sequence > since``, in sequence order."""
        ...

    def mark_published(self, sequence: int) -> None:
        """Record that a Kubernetes Event was emitted for this log entry."""
        ...

    # -- ownership (read by Authorize) --------------------------------------
    def put_ownership(self, record: store_pb2.OwnershipRecord) -> None:
        """Write (or replace) the ownership/sharing record of an Agent."""
        ...

    def get_ownership(self, agent_id: str) -> store_pb2.OwnershipRecord:
        """The ownership/sharing record of an Agent."""
        ...

    # -- housekeeping --------------------------------------------------------
    @property
    def writable(self) -> bool:
        """False once a write failed for lack of space or a read-only filesystem.

        Reads still work then; writes raise
        :class:`~stigmer_operator.store.errors.StoreUnwritableError`.
        """
        ...

    def probe(self) -> None:
        """Write a small record; raises :class:`StoreError` when the store takes no writes."""
        ...

    def prune(self, now_ns: int | None = None) -> PruneReport:
        """Apply the retention policy as of ``now_ns`` (default: now)."""
        ...

    def stats(self) -> StoreStats:
        """Counts kept current on write (no scan) and the size on disk."""
        ...

    def close(self) -> None:
        """Flush and release the database; further calls are errors."""
        ...
