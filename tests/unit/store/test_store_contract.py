"""The Store contract: every test runs against MemoryStore and RocksStore.

Each test names one promise of ``stigmer_operator.store.protocol`` and checks
it through the public API only, so both implementations are held to exactly
the same behaviour.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable

import pytest
from store_factories import agent, instance

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.store.errors import (
    NotFoundError,
    OlderGenerationError,
    StoreError,
    UidMismatchError,
)
from stigmer_operator.store.protocol import Store, spec_hash

CREATED = store_pb2.CHANGE_TYPE_CREATED
UPDATED = store_pb2.CHANGE_TYPE_UPDATED
DELETED = store_pb2.CHANGE_TYPE_DELETED


def ids(resources: Iterable[Resource]) -> list[str]:
    return [resource.metadata.id for resource in resources]


def sequences(store: Store, since: int = 0) -> list[int]:
    return [entry.sequence for entry in store.changes(since)]


# -- save / get -------------------------------------------------------------------


def test_both_stores_satisfy_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_save_returns_a_created_log_entry_describing_the_resource(store: Store) -> None:
    resource = agent(1, org="acme", namespace="team-a", name="helper", generation=3)

    entry = store.save(resource)

    assert entry is not None
    assert entry.sequence == 1
    assert entry.change == CREATED
    assert entry.kind == store_pb2.RESOURCE_KIND_AGENT
    assert (entry.id, entry.org, entry.namespace, entry.name) == (
        "agt-0001",
        "acme",
        "team-a",
        "helper",
    )
    assert entry.generation == 3
    assert entry.spec_hash == spec_hash(resource)
    assert entry.recorded_at.seconds > 0
    assert not entry.published


def test_get_returns_what_was_saved(store: Store) -> None:
    resource = agent(1)
    store.save(resource)

    assert store.get(Kind.AGENT, "agt-0001") == resource
    assert store.get_by_slug(Kind.AGENT, "acme", "agent-1") == resource
    assert store.get_by_name(Kind.AGENT, "acme", "agent-1") == resource


def test_returned_messages_are_copies(store: Store) -> None:
    resource = agent(1)
    store.save(resource)
    resource.spec.description = "changed by the caller after saving"
    fetched = store.get(Kind.AGENT, "agt-0001")
    fetched.spec.description = "changed by the caller after getting"

    assert store.get(Kind.AGENT, "agt-0001").spec.description == "Support agent"


def test_save_without_an_id_is_refused(store: Store) -> None:
    resource = agent(1)
    resource.metadata.id = ""

    with pytest.raises(ValueError, match=r"metadata\.id"):
        store.save(resource)
    assert list(store.changes()) == []


def test_a_key_component_with_a_nul_byte_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="NUL"):
        store.save(agent(1, org="evil\x00org"))
    assert list(store.list(Kind.AGENT)) == []


def test_kinds_are_kept_apart(store: Store) -> None:
    store.save(agent(1))
    store.save(instance(1, "agt-0001"))

    assert ids(store.list(Kind.AGENT)) == ["agt-0001"]
    assert ids(store.list(Kind.AGENT_INSTANCE)) == ["ain-0001"]
    with pytest.raises(NotFoundError):
        store.get(Kind.AGENT_INSTANCE, "agt-0001")


def test_list_is_ordered_by_id(store: Store) -> None:
    for number in (3, 1, 2):
        store.save(agent(number))

    assert ids(store.list(Kind.AGENT)) == ["agt-0001", "agt-0002", "agt-0003"]


# -- idempotency and history --------------------------------------------------------


def test_saving_the_same_resource_twice_appends_nothing(store: Store) -> None:
    resource = agent(1)
    assert store.save(resource) is not None

    assert store.save(resource) is None
    assert len(store.history(Kind.AGENT, "agt-0001")) == 1
    assert sequences(store) == [1]


def test_status_only_change_rewrites_the_live_value_without_history(store: Store) -> None:
    resource = agent(1)
    store.save(resource)
    resource.status.default_instance_id = "ain-0001"

    assert store.save(resource) is None
    assert store.get(Kind.AGENT, "agt-0001").status.default_instance_id == "ain-0001"
    assert list(store.list_by_org(Kind.AGENT, "acme")) == [resource]
    assert len(store.history(Kind.AGENT, "agt-0001")) == 1


def test_spec_change_appends_an_updated_version(store: Store) -> None:
    first = agent(1, generation=1)
    store.save(first)
    second = agent(1, generation=2, instructions="Answer questions about invoices only.")

    entry = store.save(second)

    assert entry is not None
    assert entry.change == UPDATED
    assert entry.sequence == 2
    history = store.history(Kind.AGENT, "agt-0001")
    assert [h.version for h in history] == [2, 1]
    assert [h.generation for h in history] == [2, 1]
    assert [h.spec_hash for h in history] == [spec_hash(second), spec_hash(first)]
    assert [h.change for h in history] == [UPDATED, CREATED]
    assert history[0].agent == second
    assert history[1].agent == first
    assert history[0].kind == store_pb2.RESOURCE_KIND_AGENT
    assert history[0].id == "agt-0001"


def test_a_new_generation_with_the_same_spec_is_a_new_version(store: Store) -> None:
    store.save(agent(1, generation=1))

    entry = store.save(agent(1, generation=2))

    assert entry is not None
    assert [h.generation for h in store.history(Kind.AGENT, "agt-0001")] == [2, 1]


def test_instance_history_holds_the_instance(store: Store) -> None:
    resource = instance(7, "agt-0001")
    store.save(resource)

    (entry,) = store.history(Kind.AGENT_INSTANCE, "ain-0007")

    assert entry.WhichOneof("resource") == "agent_instance"
    assert entry.agent_instance == resource
    assert entry.kind == store_pb2.RESOURCE_KIND_AGENT_INSTANCE


def test_history_of_an_unknown_resource_is_empty(store: Store) -> None:
    assert store.history(Kind.AGENT, "agt-9999") == []


def test_history_survives_delete_until_purged(store: Store) -> None:
    store.save(agent(1, generation=1))
    store.save(agent(1, generation=2))
    store.delete(Kind.AGENT, "agt-0001")

    assert [h.version for h in store.history(Kind.AGENT, "agt-0001")] == [2, 1]
    assert store.purge_history(Kind.AGENT, "agt-0001") == 2
    assert store.history(Kind.AGENT, "agt-0001") == []
    assert store.purge_history(Kind.AGENT, "agt-0001") == 0


def test_purging_a_live_resource_lets_the_next_save_start_a_new_history(store: Store) -> None:
    resource = agent(1, generation=4)
    store.save(resource)
    store.purge_history(Kind.AGENT, "agt-0001")

    entry = store.save(resource)

    assert entry is not None
    assert entry.change == UPDATED
    assert [(h.version, h.generation) for h in store.history(Kind.AGENT, "agt-0001")] == [(1, 4)]


def test_purge_touches_only_that_resource(store: Store) -> None:
    store.save(agent(1))
    store.save(agent(2))

    store.purge_history(Kind.AGENT, "agt-0001")

    assert len(store.history(Kind.AGENT, "agt-0002")) == 1


def test_recreating_after_delete_is_a_new_created_version(store: Store) -> None:
    resource = agent(1)
    store.save(resource)
    store.delete(Kind.AGENT, "agt-0001")

    entry = store.save(resource)

    assert entry is not None
    assert entry.change == CREATED
    assert [h.version for h in store.history(Kind.AGENT, "agt-0001")] == [2, 1]
    assert [h.change for h in store.history(Kind.AGENT, "agt-0001")] == [CREATED, CREATED]


def test_spec_hash_ignores_map_insertion_order() -> None:
    one, other = agent(1), agent(1)
    for message, order in ((one, ("a", "b")), (other, ("b", "a"))):
        for key in order:
            message.spec.mcp_servers[0].stdio.env_placeholders[key] = key

    assert spec_hash(one) == spec_hash(other)
    assert spec_hash(one) != spec_hash(agent(1))


# -- delete -------------------------------------------------------------------------


def test_delete_removes_the_live_entry_and_its_indexes(store: Store) -> None:
    store.save(agent(1, org="acme", namespace="team-a", name="helper", slug="helper"))

    entry = store.delete(Kind.AGENT, "agt-0001")

    assert entry is not None
    assert entry.change == DELETED
    assert entry.sequence == 2
    assert (entry.org, entry.namespace, entry.name) == ("acme", "team-a", "helper")
    with pytest.raises(NotFoundError):
        store.get(Kind.AGENT, "agt-0001")
    with pytest.raises(NotFoundError):
        store.get_by_slug(Kind.AGENT, "acme", "helper")
    with pytest.raises(NotFoundError):
        store.get_by_name(Kind.AGENT, "team-a", "helper")
    assert list(store.list_by_org(Kind.AGENT, "acme")) == []
    assert list(store.list(Kind.AGENT)) == []


def test_deleting_an_absent_resource_returns_none_and_writes_nothing(store: Store) -> None:
    store.save(agent(1))
    store.delete(Kind.AGENT, "agt-0001")

    assert store.delete(Kind.AGENT, "agt-0001") is None
    assert store.delete(Kind.AGENT_INSTANCE, "ain-0404") is None
    assert sequences(store) == [1, 2]


# -- an entry belongs to the object of its uid -------------------------------------


def _of_uid(resource: Resource, uid: str) -> Resource:
    resource.metadata.uid = uid
    return resource


def test_a_save_of_another_uid_under_the_same_id_is_refused_and_changes_nothing(
    store: Store,
) -> None:
    victim = _of_uid(agent(1, org="acme", name="victim"), "uid-victim")
    store.save(victim)
    forged = _of_uid(agent(1, org="evil", name="forger", generation=7), "uid-forger")

    with pytest.raises(UidMismatchError, match="agt-0001 is held by uid uid-victim"):
        store.save(forged)

    assert store.get(Kind.AGENT, "agt-0001") == victim
    assert store.get_by_name(Kind.AGENT, "acme", "victim") == victim
    with pytest.raises(NotFoundError):
        store.get_by_name(Kind.AGENT, "evil", "forger")
    assert [entry.version for entry in store.history(Kind.AGENT, "agt-0001")] == [1]
    assert sequences(store) == [1]


def test_a_refused_save_in_a_batch_writes_none_of_the_batch(store: Store) -> None:
    save_many = getattr(store, "save_many", None)
    if save_many is None:
        pytest.skip("only RocksStore saves in batches")
    store.save(_of_uid(agent(1), "uid-1"))

    with pytest.raises(UidMismatchError):
        save_many([_of_uid(agent(2), "uid-2"), _of_uid(agent(1, generation=2), "uid-other")])

    with pytest.raises(NotFoundError):
        store.get(Kind.AGENT, "agt-0002")


def test_the_same_uid_may_update_its_entry(store: Store) -> None:
    store.save(_of_uid(agent(1), "uid-1"))

    entry = store.save(
        _of_uid(agent(1, generation=2, instructions="New instructions here."), "uid-1")
    )

    assert entry is not None and entry.change == UPDATED


def test_a_delete_naming_another_uid_removes_nothing(store: Store) -> None:
    victim = _of_uid(agent(1), "uid-victim")
    store.save(victim)

    assert store.delete(Kind.AGENT, "agt-0001", uid="uid-forger") is None

    assert store.get(Kind.AGENT, "agt-0001") == victim
    assert sequences(store) == [1]
    entry = store.delete(Kind.AGENT, "agt-0001", uid="uid-victim")
    assert entry is not None and entry.change == DELETED


def test_delete_kind_removes_only_that_kind_and_keeps_history(store: Store) -> None:
    for number in range(3):
        store.save(agent(number))
    store.save(instance(1, "agt-0000"))

    assert store.delete_kind(Kind.AGENT) == 3

    assert list(store.list(Kind.AGENT)) == []
    assert ids(store.list(Kind.AGENT_INSTANCE)) == ["ain-0001"]
    assert len(store.history(Kind.AGENT, "agt-0002")) == 1
    deleted = [e.id for e in store.changes() if e.change == DELETED]
    assert deleted == ["agt-0000", "agt-0001", "agt-0002"]
    assert store.delete_kind(Kind.AGENT) == 0


# -- indexes --------------------------------------------------------------------------


def test_not_found_is_raised_for_every_kind_of_lookup(store: Store) -> None:
    lookups = [
        lambda: store.get(Kind.AGENT, "agt-0404"),
        lambda: store.get_by_slug(Kind.AGENT, "acme", "nobody"),
        lambda: store.get_by_name(Kind.AGENT_INSTANCE, "acme", "nobody"),
        lambda: store.get_ownership("agt-0404"),
        lambda: store.mark_published(42),
    ]
    for lookup in lookups:
        with pytest.raises(NotFoundError) as caught:
            lookup()
        assert isinstance(caught.value, KeyError)
        assert not str(caught.value).startswith("'")  # a readable message, not a quoted key


def test_slug_change_removes_the_old_slug(store: Store) -> None:
    store.save(agent(1, slug="old-slug", generation=1))
    store.save(agent(1, slug="new-slug", generation=2))

    assert store.get_by_slug(Kind.AGENT, "acme", "new-slug").metadata.id == "agt-0001"
    with pytest.raises(NotFoundError):
        store.get_by_slug(Kind.AGENT, "acme", "old-slug")


def test_org_change_without_new_generation_moves_every_org_index(store: Store) -> None:
    store.save(agent(1, org="acme", namespace="shared", slug="helper"))

    entry = store.save(agent(1, org="globex", namespace="shared", slug="helper"))

    assert entry is None  # same spec and generation: no new version
    assert list(store.list_by_org(Kind.AGENT, "acme")) == []
    assert ids(store.list_by_org(Kind.AGENT, "globex")) == ["agt-0001"]
    assert store.get_by_slug(Kind.AGENT, "globex", "helper").metadata.org == "globex"
    with pytest.raises(NotFoundError):
        store.get_by_slug(Kind.AGENT, "acme", "helper")


def test_name_change_removes_the_old_name(store: Store) -> None:
    store.save(agent(1, namespace="team-a", name="before"))
    store.save(agent(1, namespace="team-b", name="after"))

    assert store.get_by_name(Kind.AGENT, "team-b", "after").metadata.id == "agt-0001"
    with pytest.raises(NotFoundError):
        store.get_by_name(Kind.AGENT, "team-a", "before")


def test_list_by_org_returns_only_that_org_in_id_order(store: Store) -> None:
    # "team" is a prefix of "team-b": the org index must not mix them.
    for number, org in ((4, "team"), (2, "team-b"), (3, "team"), (1, "team-b"), (5, "other")):
        store.save(agent(number, org=org))

    assert ids(store.list_by_org(Kind.AGENT, "team")) == ["agt-0003", "agt-0004"]
    assert ids(store.list_by_org(Kind.AGENT, "team-b")) == ["agt-0001", "agt-0002"]
    assert list(store.list_by_org(Kind.AGENT, "tea")) == []
    assert list(store.list_by_org(Kind.AGENT_INSTANCE, "team")) == []


def test_instances_of_an_agent(store: Store) -> None:
    store.save(instance(1, "agt-0001"))
    store.save(instance(2, "agt-0002"))
    store.save(instance(3, "agt-0001"))

    assert ids(store.list_instances_of_agent("agt-0001")) == ["ain-0001", "ain-0003"]

    store.save(instance(1, "agt-0002"))  # re-pointed at another agent
    store.delete(Kind.AGENT_INSTANCE, "ain-0003")

    assert list(store.list_instances_of_agent("agt-0001")) == []
    assert ids(store.list_instances_of_agent("agt-0002")) == ["ain-0001", "ain-0002"]


def test_duplicate_slug_index_names_the_last_saved_and_survives_the_other(store: Store) -> None:
    store.save(agent(1, slug="same", name="one"))
    store.save(agent(2, slug="same", name="two"))

    assert store.get_by_slug(Kind.AGENT, "acme", "same").metadata.id == "agt-0002"

    store.delete(Kind.AGENT, "agt-0001")
    store.save(agent(3, slug="other"))

    assert store.get_by_slug(Kind.AGENT, "acme", "same").metadata.id == "agt-0002"


def test_moving_away_from_a_taken_slug_keeps_the_other_owner(store: Store) -> None:
    store.save(agent(1, slug="same", name="one", generation=1))
    store.save(agent(2, slug="same", name="two"))

    store.save(agent(1, slug="mine", name="one", generation=2))

    assert store.get_by_slug(Kind.AGENT, "acme", "same").metadata.id == "agt-0002"
    assert store.get_by_slug(Kind.AGENT, "acme", "mine").metadata.id == "agt-0001"


def test_resaving_reclaims_a_slug_taken_over_by_another(store: Store) -> None:
    store.save(agent(1, slug="same", name="one"))
    store.save(agent(2, slug="same", name="two"))
    store.delete(Kind.AGENT, "agt-0002")

    assert store.save(agent(1, slug="same", name="one")) is None

    assert store.get_by_slug(Kind.AGENT, "acme", "same").metadata.id == "agt-0001"


# -- change log -------------------------------------------------------------------


def test_change_log_is_monotonic_and_readable_from_a_sequence(store: Store) -> None:
    for number in range(5):
        store.save(agent(number))
    store.delete(Kind.AGENT, "agt-0000")

    assert sequences(store) == [1, 2, 3, 4, 5, 6]
    assert sequences(store, since=4) == [5, 6]
    assert sequences(store, since=6) == []
    assert [e.change for e in store.changes(5)] == [DELETED]


def test_mark_published_is_visible_in_the_log(store: Store) -> None:
    store.save(agent(1))
    store.save(agent(2))

    store.mark_published(2)
    store.mark_published(2)

    assert [e.published for e in store.changes()] == [False, True]


# -- ownership --------------------------------------------------------------------


def test_ownership_records_are_replaced_and_deleted_with_the_agent(store: Store) -> None:
    store.save(agent(1))
    store.save(instance(1, "agt-0001"))
    record = store_pb2.OwnershipRecord(agent_id="agt-0001", org="acme", name="agent-1")
    store.put_ownership(record)
    record.shared_with_orgs.append("globex")
    store.put_ownership(record)

    assert store.get_ownership("agt-0001").shared_with_orgs == ["globex"]

    store.delete(Kind.AGENT_INSTANCE, "ain-0001")
    assert store.get_ownership("agt-0001") == record

    store.delete(Kind.AGENT, "agt-0001")
    with pytest.raises(NotFoundError):
        store.get_ownership("agt-0001")


def test_ownership_needs_an_agent_id(store: Store) -> None:
    with pytest.raises(ValueError, match="agent_id"):
        store.put_ownership(store_pb2.OwnershipRecord(org="acme"))


# -- stats, threads, close --------------------------------------------------------


def test_stats_count_live_entries_history_and_log(store: Store) -> None:
    store.save(agent(1, generation=1))
    store.save(agent(1, generation=2))
    store.save(agent(2))
    store.save(instance(1, "agt-0001"))
    store.delete(Kind.AGENT, "agt-0002")

    stats = store.stats()

    assert (stats.agents, stats.agent_instances) == (1, 1)
    assert stats.history_entries == 4
    assert stats.change_log_entries == 5
    assert stats.last_sequence == 5


def test_concurrent_saves_get_unique_contiguous_sequences(store: Store) -> None:
    def write(first: int) -> None:
        for number in range(first, first + 25):
            store.save(agent(number))

    threads = [threading.Thread(target=write, args=(t * 100,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sequences(store) == list(range(1, 101))
    assert len(list(store.list(Kind.AGENT))) == 100


def test_a_closed_store_refuses_use(store: Store) -> None:
    store.save(agent(1))
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.get(Kind.AGENT, "agt-0001")
    with pytest.raises(StoreError, match="closed"):
        store.save(agent(2))
    with pytest.raises(StoreError, match="closed"):
        store.probe()  # the liveness probe fails
    store.close()  # closing twice is harmless


def test_probe_of_a_healthy_store_passes_and_changes_no_resource(store: Store) -> None:
    store.save(agent(1))
    before = dataclasses.replace(store.stats(), bytes_on_disk=0)
    store.probe()
    store.probe()
    assert dataclasses.replace(store.stats(), bytes_on_disk=0) == before
    assert [e.sequence for e in store.changes()] == [1]


# -- no roll-back -------------------------------------------------------------------


def _with_uid(resource: Resource, uid: str) -> Resource:
    resource.metadata.uid = uid
    return resource


def test_an_older_generation_of_the_same_object_is_refused_and_writes_nothing(
    store: Store,
) -> None:
    store.save(_with_uid(agent(1, generation=1), "uid-1"))
    store.save(
        _with_uid(agent(1, generation=2, instructions="Answer billing questions, v2."), "uid-1")
    )
    before = sequences(store)

    with pytest.raises(OlderGenerationError, match="generation 1 is older than the stored 2"):
        store.save(_with_uid(agent(1, generation=1), "uid-1"))

    assert store.get(Kind.AGENT, "agt-0001").metadata.generation == 2
    assert len(store.history(Kind.AGENT, "agt-0001")) == 2
    assert sequences(store) == before


def test_the_same_generation_is_not_refused_and_another_uid_is_a_mismatch(store: Store) -> None:
    store.save(_with_uid(agent(1, generation=2), "uid-1"))
    assert store.save(_with_uid(agent(1, generation=2), "uid-1")) is None  # a resume
    with pytest.raises(UidMismatchError):  # not the same object: refused for that, not its age
        store.save(_with_uid(agent(1, generation=1), "uid-2"))
    assert store.get(Kind.AGENT, "agt-0001").metadata.uid == "uid-1"
