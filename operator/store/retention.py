"""How long the store keeps history and change-log entries, decided in one place.

Every spec change stores a full copy of the resource, and the change log
grows with every write; without limits a volume of any size fills up and the
operator stops (see ``docs/operations.md``). Both stores apply the same
policy through the functions here, so the contract suite can hold them to
one behaviour:

* A resource keeps at most ``max_versions`` versions. The cap is applied by
  ``save`` in the same atomic write that appends a version, so history never
  overshoots it, not even between maintenance runs (``prune`` applies a cap
  lowered since the versions were written).
* Versions older than ``max_age`` are dropped by ``prune``, except the
  newest one: the version a live resource is at is never removed.
* The history of a deleted resource is kept for ``deleted_ttl`` after the
  deletion, then dropped whole by ``prune`` (re-creating the resource before
  then continues its history).
* Change-log entries are dropped by ``prune`` when older than
  ``log_max_age`` or beyond the newest ``log_max_entries`` -- but only once
  published: an entry without its Kubernetes Event is the Publish step's
  outbox, and dropping it would lose the Event.

Zero disables a limit.
"""

from __future__ import annotations

from dataclasses import dataclass

_NS_PER_DAY = 86_400 * 1_000_000_000


def days_ns(days: float) -> int:
    """A number of days in nanoseconds (the unit of the store's timestamps)."""
    return int(days * _NS_PER_DAY)


@dataclass(frozen=True, slots=True)
class Retention:
    """The retention policy; the defaults keep a 1 GiB volume far from full."""

    #: Versions kept per resource, newest first (0: all).
    max_versions: int = 50
    #: Versions older than this are dropped, except the newest (0: no age limit).
    max_age_ns: int = 0
    #: How long the history of a deleted resource is kept (0: forever).
    deleted_ttl_ns: int = days_ns(30)
    #: Published change-log entries older than this are dropped (0: no age limit).
    log_max_age_ns: int = days_ns(30)
    #: Published change-log entries beyond this many are dropped, oldest first (0: no limit).
    log_max_entries: int = 100_000

    def __post_init__(self) -> None:
        fields = (
            self.max_versions,
            self.max_age_ns,
            self.deleted_ttl_ns,
            self.log_max_age_ns,
            self.log_max_entries,
        )
        if any(value < 0 for value in fields):
            raise ValueError(f"retention limits cannot be negative: {self}")

    def version_dropped_by_save(self, new_version: int) -> int | None:
        """The version a save of ``new_version`` drops (if stored): the one the cap pushes out.

        One version per save, found by a point lookup: scanning for the
        oldest version would step over the delete markers of every version
        dropped before (until RocksDB compacts them away). Versions older
        than that one exist only after the cap was lowered, or in a store
        migrated from before retention; ``prune`` drops those.
        """
        if not self.max_versions or new_version <= self.max_versions:
            return None
        return new_version - self.max_versions

    def version_expired(self, position: int, recorded_at_ns: int, now_ns: int) -> bool:
        """Whether the version at ``position`` (0: newest) is past the policy."""
        if position == 0:
            return False
        if self.max_versions and position >= self.max_versions:
            return True
        return bool(self.max_age_ns) and recorded_at_ns < now_ns - self.max_age_ns

    def deleted_expired(self, deleted_at_ns: int, now_ns: int) -> bool:
        """Whether the history of a resource deleted at ``deleted_at_ns`` is dropped."""
        return bool(self.deleted_ttl_ns) and deleted_at_ns < now_ns - self.deleted_ttl_ns

    def log_entry_expired(self, recorded_at_ns: int, entries: int, now_ns: int) -> bool:
        """Whether a published log entry goes, the log holding ``entries`` entries.

        Asked oldest entry first; the first "no" for a published entry ends
        the trimming (every later entry is newer).
        """
        if self.log_max_entries and entries > self.log_max_entries:
            return True
        return bool(self.log_max_age_ns) and recorded_at_ns < now_ns - self.log_max_age_ns


#: Keep everything (the behaviour before retention existed; tests and tools).
KEEP_ALL = Retention(
    max_versions=0, max_age_ns=0, deleted_ttl_ns=0, log_max_age_ns=0, log_max_entries=0
)


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one ``prune`` removed."""

    history_entries: int = 0
    deleted_resources: int = 0
    log_entries: int = 0

    @property
    def removed(self) -> int:
        return self.history_entries + self.log_entries

    def __add__(self, other: PruneReport) -> PruneReport:
        return PruneReport(
            self.history_entries + other.history_entries,
            self.deleted_resources + other.deleted_resources,
            self.log_entries + other.log_entries,
        )
