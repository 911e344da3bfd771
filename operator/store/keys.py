"""The key layout of the RocksDB store, in one place.

RocksDB is an ordered map of bytes, so every question the store answers is a
prefix scan or a point get, and the order of keys *is* the query plan. This
module is the only code that builds or takes apart a key; the store asks it
for a key or a prefix and never concatenates bytes itself.

Layout (``·`` is the separator byte ``0x00``)::

    meta·format                      -> b"stigmer-operator/v{schema version}"
    meta·seq                         -> last change-log sequence (8 bytes, big-endian)
    meta·count·{counter}             -> a running count (8 bytes, big-endian), schema 2+
    res·{kind}·{id}                  -> serialized Agent / AgentInstance
    org·{kind}·{org}·{id}            -> serialized resource (all of a kind in an org)
    slug·{kind}·{org}·{slug}         -> id    (slug unique per org and kind)
    name·{kind}·{namespace}·{name}   -> id    (Kubernetes object -> id)
    inst·{agent id}·{instance id}    -> b""   (instances of an agent)
    hist·{kind}·{id}·{~version}      -> serialized HistoryEntry, newest first
    head·{kind}·{id}                 -> the newest HistoryEntry without its resource
    log·{sequence}                   -> serialized ChangeLogEntry, oldest first
    own·{agent id}                   -> serialized OwnershipRecord
    gone·{kind}·{id}                 -> when a resource was deleted (ns, 8 bytes), schema 2+

Why these choices:

* ``0x00`` is the separator because it is the smallest byte: a component that
  is a prefix of another (``Agent`` / ``AgentInstance``, ``team`` /
  ``team-b``) still sorts first, so encoded keys sort exactly like the tuples
  of their components, and a prefix ending in the separator never matches a
  longer component. Kubernetes names, namespaces, label values and our ids
  cannot contain NUL; :func:`component` rejects it anyway, so a bad org label
  can never forge a key of another org.
* Numbers are fixed-width lower-case hex (16 digits): they sort numerically,
  stay readable in a raw dump, and contain no separator byte. Versions are
  stored inverted (``2**64 - 1 - version``) so a forward scan of a
  resource's history yields the newest version first.
* Slug, name and instance entries hold the id (or nothing). The org entry
  holds a copy of the resource: listing an org is the one query that returns
  many resources, and a covering index answers it with one sequential range
  scan instead of a random point read per resource, for the price of a
  second copy of each live resource on disk.
* ``head`` duplicates the header of the newest history entry so that every
  save learns "is this a new version, and which number" from a point get
  (answered by the bloom filter when the resource is new) instead of an
  iterator seek across every level of the LSM tree.
* ``gone`` marks a deleted resource whose history is still kept, with the
  time of deletion, so retention can purge that history after a while
  without scanning the change log (which may itself be trimmed).
* ``meta·count·*`` hold the counts ``/metrics`` reports, updated in the same
  WriteBatch as the entries they count, so a scrape is a few point gets.
* The format marker carries the schema version: a release refuses a store
  of a newer schema and migrates an older one (:mod:`.migrate`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from stigmer_operator.api.kinds import Kind

SEPARATOR = b"\x00"

#: The format marker without its schema version; a database without it is not ours.
FORMAT_PREFIX = b"stigmer-operator/v"
#: The schema this build writes. 1: the layout up to counters and tombstones
#: (and spec hashes over protobuf's serialization); 2: adds ``meta·count·*``,
#: ``gone·*`` and spec hashes over canonical JSON.
SCHEMA_VERSION = 2

_U64_MAX = 2**64 - 1
_HEX_WIDTH = 16


class Section(enum.Enum):
    """The first component of every key: which table the key belongs to."""

    META = b"meta"
    RESOURCE = b"res"
    ORG = b"org"
    SLUG = b"slug"
    NAME = b"name"
    INSTANCE = b"inst"
    HISTORY = b"hist"
    HEAD = b"head"
    LOG = b"log"
    OWNERSHIP = b"own"
    GONE = b"gone"


class InvalidKeyError(ValueError):
    """A key component is invalid (contains the separator or is not UTF-8)."""


def component(text: str) -> bytes:
    """Encode one textual key component, refusing the separator byte."""
    if "\x00" in text:
        raise InvalidKeyError(f"key component {text!r} contains a NUL byte")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"key component {text!r} is not valid UTF-8") from exc


# The section names as plain bytes: functions below run on every store call,
# and reading ``Section.X.value`` goes through a Python-level descriptor.
_META = Section.META.value
_RESOURCE = Section.RESOURCE.value
_ORG = Section.ORG.value
_SLUG = Section.SLUG.value
_NAME = Section.NAME.value
_INSTANCE = Section.INSTANCE.value
_HISTORY = Section.HISTORY.value
_HEAD = Section.HEAD.value
_LOG = Section.LOG.value
_OWNERSHIP = Section.OWNERSHIP.value
_GONE = Section.GONE.value


def _join(section: bytes, *parts: bytes) -> bytes:
    return SEPARATOR.join((section, *parts))


def _prefix(section: bytes, *parts: bytes) -> bytes:
    return SEPARATOR.join((section, *parts, b""))


def _kind(kind: Kind) -> bytes:
    return kind.encode("ascii")  # a Kind is a str: its value


def _hex(number: int) -> bytes:
    if not 0 <= number <= _U64_MAX:
        raise InvalidKeyError(f"number {number} does not fit in 64 bits")
    return f"{number:0{_HEX_WIDTH}x}".encode("ascii")


# -- meta -----------------------------------------------------------------

FORMAT_KEY = _join(_META, b"format")
LAST_SEQUENCE_KEY = _join(_META, b"seq")
#: Rewritten by the liveness probe to prove the store still takes writes.
PROBE_KEY = _join(_META, b"probe")


def format_marker(schema_version: int = SCHEMA_VERSION) -> bytes:
    """The value of :data:`FORMAT_KEY` for a store of this schema version."""
    return FORMAT_PREFIX + str(schema_version).encode("ascii")


#: The marker this build writes.
FORMAT_MARKER = format_marker()


def schema_version(marker: bytes) -> int | None:
    """The schema version a format marker names, or None if it is not ours."""
    if not marker.startswith(FORMAT_PREFIX):
        return None
    digits = marker[len(FORMAT_PREFIX) :]
    return int(digits) if digits.isdigit() else None


def encode_sequence_value(sequence: int) -> bytes:
    """The value stored under :data:`LAST_SEQUENCE_KEY`."""
    return sequence.to_bytes(8, "big")


def decode_sequence_value(value: bytes) -> int:
    return int.from_bytes(value, "big")


#: Counters are 8-byte big-endian numbers, like the last sequence.
encode_count = encode_sequence_value
decode_count = decode_sequence_value


class Count(enum.Enum):
    """The running counts kept under ``meta·count·*``."""

    AGENTS = b"agents"
    AGENT_INSTANCES = b"agent-instances"
    HISTORY = b"history"
    LOG = b"log"

    @classmethod
    def of_kind(cls, kind: Kind) -> Count:
        """The count of live resources of ``kind``."""
        return cls.AGENTS if kind is Kind.AGENT else cls.AGENT_INSTANCES


def counter(count: Count) -> bytes:
    """The key of one running count."""
    return _join(_META, b"count", count.value)


def encode_time_ns(time_ns: int) -> bytes:
    """A point in time (ns since the epoch), as stored under ``gone`` keys."""
    return time_ns.to_bytes(8, "big")


decode_time_ns = decode_sequence_value


# -- resources and their indexes -------------------------------------------


def resource(kind: Kind, resource_id: str) -> bytes:
    return _join(_RESOURCE, _kind(kind), component(resource_id))


def resources_of(kind: Kind) -> bytes:
    """Prefix of every live resource of a kind, ordered by id."""
    return _prefix(_RESOURCE, _kind(kind))


def org_index(kind: Kind, org: str, resource_id: str) -> bytes:
    return _join(_ORG, _kind(kind), component(org), component(resource_id))


def org_prefix(kind: Kind, org: str) -> bytes:
    """Prefix of the org index entries of one org (ids follow, in order)."""
    return _prefix(_ORG, _kind(kind), component(org))


def slug_index(kind: Kind, org: str, slug: str) -> bytes:
    return _join(_SLUG, _kind(kind), component(org), component(slug))


def name_index(kind: Kind, namespace: str, name: str) -> bytes:
    return _join(_NAME, _kind(kind), component(namespace), component(name))


def instance_index(agent_id: str, instance_id: str) -> bytes:
    return _join(_INSTANCE, component(agent_id), component(instance_id))


def instances_prefix(agent_id: str) -> bytes:
    return _prefix(_INSTANCE, component(agent_id))


def indexed_resources(kind: Kind, index_prefix: bytes, index_keys: Iterable[bytes]) -> list[bytes]:
    """The resource keys named by index entries whose keys are ``index_prefix`` + id.

    The id bytes are moved over as they are: no decoding, no re-validation.
    """
    base = resources_of(kind)
    start = len(index_prefix)
    return [base + key[start:] for key in index_keys]


def last_component(key: bytes) -> str:
    """The final component of a key: the id in org and instance index keys."""
    return key.rsplit(SEPARATOR, 1)[-1].decode("utf-8")


# -- history ----------------------------------------------------------------


def history(kind: Kind, resource_id: str, version: int) -> bytes:
    if version < 1:
        raise InvalidKeyError(f"history versions start at 1, got {version}")
    return _join(_HISTORY, _kind(kind), component(resource_id), _hex(_U64_MAX - version))


def history_prefix(kind: Kind, resource_id: str) -> bytes:
    """Prefix of one resource's history; a forward scan is newest first."""
    return _prefix(_HISTORY, _kind(kind), component(resource_id))


def history_head(kind: Kind, resource_id: str) -> bytes:
    """The newest version of a resource, as one point get (written with each version)."""
    return _join(_HEAD, _kind(kind), component(resource_id))


def history_version(key: bytes) -> int:
    """The version number encoded in a history key."""
    return _U64_MAX - int(key.rsplit(SEPARATOR, 1)[-1], 16)


def resource_ref(key: bytes) -> tuple[Kind, str]:
    """The (kind, id) a history, head or gone key belongs to."""
    _section, kind, resource_id, *_version = key.split(SEPARATOR)
    return Kind(kind.decode("ascii")), resource_id.decode("utf-8")


def gone(kind: Kind, resource_id: str) -> bytes:
    """Marks a deleted resource whose history is kept; holds the deletion time."""
    return _join(_GONE, _kind(kind), component(resource_id))


# -- change log -------------------------------------------------------------


def change(sequence: int) -> bytes:
    return _join(_LOG, _hex(sequence))


def change_sequence(key: bytes) -> int:
    """The sequence number encoded in a change-log key."""
    return int(key.rsplit(SEPARATOR, 1)[-1], 16)


# -- ownership --------------------------------------------------------------


def ownership(agent_id: str) -> bytes:
    return _join(_OWNERSHIP, component(agent_id))


# -- whole sections and scanning helpers --------------------------------------


def section_prefix(section: Section) -> bytes:
    """Prefix of every key of a section (the whole history, the whole log, ...)."""
    return _prefix(section.value)


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix``.

    Used as an exclusive upper bound, so a scan stops at the end of its
    prefix instead of reading (and discarding) the next section.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise InvalidKeyError("a prefix of only 0xff bytes has no upper bound")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def decode(key: bytes) -> tuple[str, ...]:
    """Split a key into readable components (numbers as integers, in text).

    For dumps and debugging only; the store never parses keys this way on a
    hot path.
    """
    section_bytes, *rest = key.split(SEPARATOR)
    section = Section(section_bytes)
    parts = [part.decode("utf-8") for part in rest]
    if section is Section.HISTORY and parts:
        parts[-1] = str(history_version(key))
    elif section is Section.LOG and parts:
        parts[-1] = str(change_sequence(key))
    return (section.name.lower(), *parts)
