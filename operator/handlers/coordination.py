"""What the handlers of one process share so that they do not trip over each other.

kopf runs the sync handlers in a thread pool, and a pipeline is triggered
not only by its object's own handler but also by other objects (a default
instance turning Ready re-runs its Agent; an Agent appearing re-runs the
instances waiting for it). :class:`Coordination` keeps, per object:

* a lock, so two pipelines of one object never interleave and overwrite
  fresher status with staler;
* the newest generation a run started for, and the uids of deleted
  objects, so a run on a body read before a newer one was handled (or
  before the object was deleted) is skipped (:meth:`Coordination.outdated`);
* what this process last reconciled (uid -> generation, labels and mirrored
  annotations), so a create or update kopf repeats on a stale body costs
  nothing;
* the readiness of each default instance its Agent's status reflects (or,
  until an Agent run says, the last one the watch showed), so only a
  change from that re-runs the Agent.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.meta import mirrored_annotations

ObjectKey = tuple[Kind, str, str]
#: Deleted uids remembered (oldest forgotten first): a late run for a deleted
#: object comes within seconds, not after this many deletions.
GONE_REMEMBERED = 10_000
#: What a reconcile of an object depends on besides its uid: the generation
#: (spec changes), the labels (mirrored; the org label places the object)
#: and the mirrored annotations.
Fingerprint = tuple[int, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


@dataclass
class Coordination:
    """Per-object state shared by every handler of this process (see the module docstring)."""

    _locks: dict[ObjectKey, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    #: Default instance uid -> (ready, whether its Agent's run recorded it).
    _readiness: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    _reconciled: dict[str, Fingerprint] = field(default_factory=dict)
    _newest: dict[str, int] = field(default_factory=dict)
    _gone: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def lock(self, key: ObjectKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, key: ObjectKey, uid: str = "") -> None:
        """Drop what is kept for a deleted object (a lock still held stays)."""
        with self._guard:
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]
            self._readiness.pop(uid, None)
            self._reconciled.pop(uid, None)
            self._newest.pop(uid, None)
            if uid:
                self._gone[uid] = None
                while len(self._gone) > GONE_REMEMBERED:
                    self._gone.popitem(last=False)

    def retain(self, live: set[str]) -> None:
        """Forget the per-uid state of objects not in ``live`` (a fresh listing of all kinds).

        Objects deleted while a watch re-listed never send a DELETED event.
        What is dropped costs at most one repeated run (an object created
        after the listing), so the guard is all it needs.
        """
        with self._guard:
            for table in (self._readiness, self._reconciled, self._newest):
                for uid in [uid for uid in table if uid not in live]:
                    del table[uid]

    def outdated(self, uid: str, generation: int) -> bool:
        """True when a run on this body would undo a newer one; else note ``generation``.

        A pipeline triggered by another object, or a retry, may hold a body
        read before the object was edited (a newer generation already ran)
        or deleted (a re-created object of the same name may be there now).
        Running it would re-grant what the edit revoked and roll status back.
        Call under the object's lock.
        """
        with self._guard:
            if uid in self._gone or generation < self._newest.get(uid, 0):
                return True
            self._newest[uid] = generation
            return False

    def remember_reconciled(self, uid: str, fingerprint: Fingerprint) -> None:
        with self._guard:
            self._reconciled[uid] = fingerprint

    def already_reconciled(self, uid: str, fingerprint: Fingerprint) -> bool:
        """True when this process already reconciled ``uid`` as it is now.

        After a handler succeeds kopf patches its bookkeeping annotations and
        waits (up to ``consistency_timeout``) for the watch to deliver that
        version. Under a backlog it does not arrive in time, and kopf calls
        the create (or update) handler again with the body it has, which
        lacks that annotation and can predate our status as well. Re-running
        the pipeline on such a body would repeat its reads and rewrite its
        status from the stale conditions (new transition times). The same
        skip covers a create kopf calls for a default instance its Agent's
        run already reconciled (:mod:`.children`).
        """
        with self._guard:
            return bool(uid) and self._reconciled.get(uid) == fingerprint

    def readiness_changed(self, uid: str, ready: bool) -> bool:
        """The watch shows default instance ``uid`` with ``ready``: must its Agent re-run?

        Yes when that differs from what was last recorded -- by the Agent's
        run (:meth:`owner_saw`) or an earlier event. The first sight of an
        instance is not a change: at start-up the Agent's own resume reads
        the current readiness anyway, and a new instance is reconciled in
        its Agent's run.
        """
        with self._guard:
            previous = self._readiness.get(uid)
            self._readiness[uid] = (ready, False)
            return previous is not None and previous[0] != ready

    def owner_saw(self, uid: str, ready: bool) -> bool:
        """The Agent's status now reflects default instance ``uid`` as ``ready``.

        True when the watch has meanwhile shown the other readiness (the run
        read the instance before it changed): the Agent must run again.
        """
        with self._guard:
            previous = self._readiness.get(uid)
            self._readiness[uid] = (ready, True)
            return previous is not None and not previous[1] and previous[0] != ready


def fingerprint_of(body: Mapping[str, Any]) -> Fingerprint:
    metadata = body.get("metadata", {})
    labels = metadata.get("labels") or {}
    annotations = mirrored_annotations(metadata.get("annotations") or {})
    generation = int(metadata.get("generation", 0) or 0)
    return (
        generation,
        tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        tuple(sorted(annotations.items())),
    )


def key_of(kind: Kind, body: Mapping[str, Any]) -> ObjectKey:
    metadata = body.get("metadata", {})
    return (kind, str(metadata.get("namespace", "")), str(metadata.get("name", "")))
