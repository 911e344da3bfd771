"""The operator's own objects as listed once at start-up: a hint that saves a read per object.

A restarted operator resumes every object it watches, and each resume
checks the objects the operator made for it: an Agent's default
AgentInstance, an instance's ServiceAccount, Role and RoleBinding. Read
one by one, that is about two GETs per object -- at 20,000 objects the
restart was bound by those GETs. Listed once per kind (and watched
namespace, or cluster-wide) before kopf starts watching, the same answers
cost a few paginated LISTs (:mod:`stigmer_operator.handlers.startup_listing`).

The listing is a hint, never the truth a write is built on:

* it answers only a **resume** (:meth:`.RequestContext.listed`; a create
  or update reads, as before), and each object's entry **once**: a second
  run of the same object (a retry, a re-run triggered by another object)
  reads the API;
* a listed object can only prove that **nothing needs doing** (the steps
  compare it with what they want); one that needs any change is read
  again before the write, so a write never rests on a stale listing;
* a name missing from a kind and namespace that was listed completely is
  **absent**: the step creates first, and reads only if the API refuses
  the create because the name is taken (409) -- right even if someone
  created the object after the listing;
* anything not listed (another kind, a namespace whose listing failed) is
  **unknown**: read as before;
* an entry of a kind kopf watches (AgentInstances) is served as the watch
  last showed it; one served before the watch showed it is checked
  afterwards: if the watch shows another version, reports it deleted, or
  never shows it (deleted between the two listings), the run that used it
  is repeated -- its controller, the Agent, is re-run and reads the API;
* it **expires** once the resumes at start are over -- every entry used,
  or neither a resume nor the watch used it for ``idle`` seconds (counted
  from the first use: kopf may take a while to start) -- and ``ttl``
  seconds after it was taken at the latest; from then on every read goes
  to the API.

Memory stays bounded: an entry keeps only what the comparisons read
(identity, labels, owners, deletion mark, and the fields below ``metadata``
such as ``rules`` or ``status``), as compact JSON, and all of it is dropped
at expiry. What the listing misses by design: an object the operator made
that someone changes *after* the listing and before its owner's resume is
not repaired by that resume -- the same as a change right after a resume's
GET, since the operator does not watch those (ServiceAccounts, Roles,
RoleBindings).
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from stigmer_operator.pipeline.kube import ObjectKind, controller_ref

#: Seconds a listing taken at start-up answers resumes, at most.
LISTING_TTL = 180.0
#: Seconds without a resume or the watch using the listing that end the start-up phase.
LISTING_IDLE = 15.0

#: ``metadata`` fields an entry keeps; the rest (``managedFields``, annotations) is dropped.
_KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "labels",
    "ownerReferences",
    "deletionTimestamp",
)
#: Top-level fields that are not the object's content.
_DROPPED_TOP = frozenset({"metadata", "apiVersion", "kind"})

#: Kinds kopf watches. kopf lists them after the start-up listing, so an
#: entry may be older than kopf's view, or its object deleted in between
#: (of which no event ever comes). A served entry the watch later shows at
#: another version, or never shows, has its controller run again
#: (:meth:`StartupListing.observed`, :meth:`StartupListing.unseen`).
WATCHED_KINDS = frozenset({ObjectKind.AGENT, ObjectKind.AGENT_INSTANCE})

#: A cluster-wide listing covers every namespace.
ALL_NAMESPACES = None


class Seen(enum.Enum):
    """What the listing knows about one name."""

    #: Not listed (kind or namespace not covered, expired, or already used): read the API.
    UNKNOWN = "unknown"
    #: The kind and namespace were listed completely and the name was not there.
    ABSENT = "absent"
    #: Listed: :attr:`Listed.body` is the object as it was then (trimmed).
    LISTED = "listed"


@dataclass(frozen=True, slots=True)
class Listed:
    """The listing's answer for one name."""

    seen: Seen
    body: Mapping[str, Any] | None = None


UNKNOWN = Listed(Seen.UNKNOWN)
ABSENT = Listed(Seen.ABSENT)


class Controller(NamedTuple):
    """The controller of a served object: whom to re-run when that object was stale."""

    namespace: str
    kind: str
    name: str
    uid: str


_Key = tuple[ObjectKind, str, str]


def trimmed(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What an entry keeps of ``obj`` (see the module docstring)."""
    metadata = obj.get("metadata") or {}
    kept: dict[str, Any] = {k: v for k, v in obj.items() if k not in _DROPPED_TOP}
    kept["metadata"] = {k: metadata[k] for k in _KEPT_METADATA if k in metadata}
    return kept


class StartupListing:
    """Objects listed at start-up, each served once, until the start-up phase ends; thread-safe."""

    def __init__(
        self,
        ttl: float = LISTING_TTL,
        idle: float = LISTING_IDLE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._idle = idle
        self._clock = clock
        #: When a resume last asked or the watch last showed a listed kind.
        self._last_used: float | None = None
        self._guard = threading.Lock()
        self._entries: dict[_Key, _Entry] = {}
        #: Per kind: namespaces listed completely; ``None`` among them = every namespace.
        self._covered: dict[ObjectKind, set[str | None]] = {}
        #: Names already answered (an answer is given once).
        self._answered: set[_Key] = set()
        #: Entries of a watched kind served before the watch showed them: the version served
        #: and the object's controller. Kept past the end of the listing, until the watch
        #: shows them or :meth:`unseen` hands them out.
        self._served_unseen: dict[_Key, tuple[str, Controller | None]] = {}
        self._expires: float | None = None

    def add(
        self, kind: ObjectKind, namespace: str | None, objects: Iterable[Mapping[str, Any]]
    ) -> int:
        """Record the complete listing of ``kind`` in ``namespace`` (``None``: all namespaces).

        Call only with a listing that got every page: the names missing
        from it are answered :attr:`Seen.ABSENT`. ``objects`` may be a
        generator of pages as they arrive: each object is trimmed as it
        comes, and if the generator raises, nothing of it is recorded.
        Starts the ``ttl`` clock at the first call. Returns how many objects
        were recorded.
        """
        seen = kind not in WATCHED_KINDS
        entries = {_key(kind, obj): _entry(obj, seen=seen) for obj in objects}
        with self._guard:
            if self._expires is None:
                self._expires = self._clock() + self._ttl
            self._entries.update(entries)
            self._covered.setdefault(kind, set()).add(namespace)
        return len(entries)

    def observed(self, kind: ObjectKind, body: Mapping[str, Any]) -> Controller | None:
        """The watch delivered ``body``: a listed entry of it becomes that version.

        Returns the object's controller if a run was served an older version
        of it (the controller must run again), else ``None``.
        """
        key = _key(kind, body)
        version = str((body.get("metadata") or {}).get("resourceVersion", ""))
        with self._guard:
            self._last_used = self._clock()
            served = self._served_unseen.pop(key, None)
            if served is not None:
                return served[1] if served[0] != version else None
            entry = self._entries.get(key)
            if entry is None:  # not listed, or already used: nothing to keep
                return None
            if entry.version == version:  # as listed (the common case): no re-encoding
                self._entries[key] = entry._replace(seen=True)
                return None
        fresh = _entry(body, seen=True)
        with self._guard:
            if key in self._entries:
                self._entries[key] = fresh
        return None

    def gone(self, kind: ObjectKind, namespace: str, name: str) -> Controller | None:
        """The watch says the object was deleted: its entry goes (the name is absent now).

        Returns its controller if a run was served it as present, else ``None``.
        """
        key = (kind, namespace, name)
        with self._guard:
            self._entries.pop(key, None)
            served = self._served_unseen.pop(key, None)
        return served[1] if served is not None else None

    def unseen(self) -> list[Controller]:
        """Controllers of served objects the watch never showed (deleted after the listing).

        Call once the start-up phase is over (kopf has listed everything by
        then); they are handed out once.
        """
        with self._guard:
            served, self._served_unseen = self._served_unseen, {}
        return [controller for _, controller in served.values() if controller is not None]

    def take(self, kind: ObjectKind, namespace: str, name: str) -> Listed:
        """The listing's answer for one name; it is given once, then the name is unknown."""
        key = (kind, namespace, name)
        with self._guard:
            self._expire()
            self._last_used = self._clock()
            if key in self._answered:
                return UNKNOWN
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._answered.add(key)
                if not self._entries:  # every entry used: the start-up phase is over
                    self._clear()
                body = json.loads(entry.body)
                if not entry.seen:
                    self._served_unseen[key] = (entry.version, _controller(body))
                return Listed(Seen.LISTED, body)
            covered = self._covered.get(kind, set())
            if not (namespace in covered or ALL_NAMESPACES in covered):
                return UNKNOWN
            self._answered.add(key)
            return ABSENT

    def expire(self) -> bool:
        """Drop everything if the start-up phase is over (see the module docstring); did it end?"""
        with self._guard:
            return self._expire()

    def clear(self) -> None:
        """Forget everything: every name is unknown from now on."""
        with self._guard:
            self._clear()

    def __len__(self) -> int:
        with self._guard:
            return len(self._entries)

    def _expire(self) -> bool:
        if self._expires is None:  # nothing listed yet
            return False
        now = self._clock()
        idle = self._last_used is not None and now - self._last_used >= self._idle
        if idle or now >= self._expires:
            self._clear()
            return True
        return False

    def _clear(self) -> None:
        self._entries = {}
        self._covered = {}
        self._answered = set()


class _Entry(NamedTuple):
    version: str
    body: bytes
    #: Shown by the watch at this version (or of a kind not watched): nothing to check later.
    seen: bool


def _key(kind: ObjectKind, obj: Mapping[str, Any]) -> _Key:
    metadata = obj["metadata"]
    return (kind, str(metadata["namespace"]), str(metadata["name"]))


def _entry(obj: Mapping[str, Any], *, seen: bool) -> _Entry:
    version = str(obj["metadata"].get("resourceVersion", ""))
    return _Entry(version, json.dumps(trimmed(obj), separators=(",", ":")).encode(), seen)


def _controller(obj: Mapping[str, Any]) -> Controller | None:
    ref = controller_ref(obj)
    if ref is None:
        return None
    namespace = str(obj["metadata"]["namespace"])
    return Controller(namespace, str(ref.get("kind", "")), str(ref.get("name", "")),
                      str(ref.get("uid", "")))  # fmt: skip
