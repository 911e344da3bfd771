"""Retention: both stores keep history and the change log within the policy.

Every test runs against MemoryStore and RocksStore. Time is passed to
``prune`` explicitly (``now_ns``), measured from what the store recorded, so
nothing sleeps. The promise that matters most to users is at the end: an
unpublished change-log entry (an Event not yet emitted) is never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from store_factories import agent, open_store

from stigmer_operator.api.kinds import Kind
from stigmer_operator.store.protocol import Store
from stigmer_operator.store.retention import KEEP_ALL, Retention, days_ns
from stigmer_operator.store.rocks import RocksStore

Opener = Callable[[Retention], Store]
DAY = days_ns(1)


@pytest.fixture(params=["memory", "rocks"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[Store] = []

    def make(retention: Retention) -> Store:
        store = open_store(request.param, tmp_path, retention)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def edit(store: Store, number: int, generations: range) -> None:
    for generation in generations:
        store.save(agent(number, generation=generation, instructions=f"Version {generation}."))


def versions(store: Store, number: int) -> list[int]:
    return [entry.version for entry in store.history(Kind.AGENT, f"agt-{number:04d}")]


def newest_time(store: Store) -> int:
    return max(entry.recorded_at.ToNanoseconds() for entry in store.changes())


def publish_all(store: Store) -> None:
    for entry in store.changes():
        store.mark_published(entry.sequence)


# -- history -------------------------------------------------------------------------


def test_a_save_beyond_the_cap_drops_the_oldest_version_in_the_same_write(
    opener: Opener,
) -> None:
    store = opener(Retention(max_versions=3))
    edit(store, 1, range(1, 8))
    edit(store, 2, range(1, 3))

    assert versions(store, 1) == [7, 6, 5]
    assert versions(store, 2) == [2, 1]
    assert store.stats().history_entries == 5


def test_a_capped_history_still_answers_is_this_a_new_version(opener: Opener) -> None:
    store = opener(Retention(max_versions=1))
    edit(store, 1, range(1, 4))

    assert store.save(agent(1, generation=3, instructions="Version 3.")) is None
    assert versions(store, 1) == [3]


def test_prune_applies_a_cap_lowered_since_the_history_was_written(tmp_path: Path) -> None:
    """A restart with a stricter policy (or a migrated store) trims on the first prune."""
    with RocksStore.open(tmp_path / "store", create=True, retention=KEEP_ALL) as store:
        edit(store, 1, range(1, 11))
    with RocksStore.open(tmp_path / "store", retention=Retention(max_versions=4)) as store:
        report = store.prune()

        assert versions(store, 1) == [10, 9, 8, 7]
        assert report.history_entries == 6
        assert store.stats().history_entries == 4
        edit(store, 1, range(11, 12))
        assert versions(store, 1) == [11, 10, 9, 8]


def test_prune_drops_old_versions_but_never_the_newest(opener: Opener) -> None:
    store = opener(Retention(max_versions=0, max_age_ns=7 * DAY))
    edit(store, 1, range(1, 4))
    edit(store, 2, range(1, 2))
    now = newest_time(store)

    assert store.prune(now_ns=now + 6 * DAY).history_entries == 0
    report = store.prune(now_ns=now + 8 * DAY)

    assert versions(store, 1) == [3]
    assert versions(store, 2) == [1]
    assert report.history_entries == 2
    assert store.get(Kind.AGENT, "agt-0001").spec.instructions == "Version 3."


def test_the_history_of_a_deleted_resource_is_kept_for_the_ttl(opener: Opener) -> None:
    store = opener(Retention(deleted_ttl_ns=30 * DAY))
    edit(store, 1, range(1, 3))
    edit(store, 2, range(1, 3))
    store.delete(Kind.AGENT, "agt-0001")
    now = newest_time(store)

    assert store.prune(now_ns=now + 29 * DAY).deleted_resources == 0
    assert versions(store, 1) == [2, 1]
    report = store.prune(now_ns=now + 31 * DAY)

    assert versions(store, 1) == []
    assert versions(store, 2) == [2, 1]  # live: untouched
    assert (report.deleted_resources, report.history_entries) == (1, 2)
    assert store.stats().history_entries == 2


def test_a_resource_recreated_within_the_ttl_keeps_its_history(opener: Opener) -> None:
    store = opener(Retention(deleted_ttl_ns=DAY))
    edit(store, 1, range(1, 3))
    store.delete(Kind.AGENT, "agt-0001")
    store.save(agent(1, generation=1, instructions="Back."))

    store.prune(now_ns=newest_time(store) + 10 * DAY)

    assert versions(store, 1) == [3, 2, 1]


# -- change log ----------------------------------------------------------------------


def test_published_log_entries_beyond_the_limit_are_dropped_oldest_first(
    opener: Opener,
) -> None:
    store = opener(Retention(log_max_entries=3, log_max_age_ns=0))
    edit(store, 1, range(1, 7))
    publish_all(store)

    report = store.prune()

    assert [entry.sequence for entry in store.changes()] == [4, 5, 6]
    assert report.log_entries == 3
    assert store.stats().change_log_entries == 3
    assert store.stats().last_sequence == 6
    edit(store, 1, range(7, 8))
    assert [entry.sequence for entry in store.changes(6)] == [7]


def test_published_log_entries_older_than_the_limit_are_dropped(opener: Opener) -> None:
    store = opener(Retention(log_max_entries=0, log_max_age_ns=30 * DAY))
    edit(store, 1, range(1, 4))
    publish_all(store)
    now = newest_time(store)

    assert store.prune(now_ns=now + 29 * DAY).log_entries == 0
    assert store.prune(now_ns=now + 31 * DAY).log_entries == 3
    assert list(store.changes()) == []


def test_an_unpublished_log_entry_is_never_dropped(opener: Opener) -> None:
    """The change log is Publish's outbox: an entry without its Event must survive."""
    store = opener(Retention(log_max_entries=1, log_max_age_ns=DAY))
    edit(store, 1, range(1, 6))
    for sequence in (1, 3, 5):
        store.mark_published(sequence)

    store.prune(now_ns=newest_time(store) + 365 * DAY)

    assert [(entry.sequence, entry.published) for entry in store.changes()] == [
        (2, False),
        (4, False),
    ]
    store.mark_published(2)  # Publish can still finish its work
    assert store.stats().change_log_entries == 2


def test_keep_all_keeps_everything(opener: Opener) -> None:
    store = opener(KEEP_ALL)
    edit(store, 1, range(1, 61))
    store.delete(Kind.AGENT, "agt-0001")
    publish_all(store)

    report = store.prune(now_ns=newest_time(store) + 3650 * DAY)

    assert report.removed == 0
    assert len(versions(store, 1)) == 60
    assert store.stats().change_log_entries == 61


def test_the_default_policy_keeps_fifty_versions(opener: Opener) -> None:
    store = opener(Retention())
    edit(store, 1, range(1, 61))

    assert versions(store, 1) == list(range(60, 10, -1))
