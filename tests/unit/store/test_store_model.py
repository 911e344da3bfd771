"""Random save/delete sequences, checked against a model of a few dicts.

The contract suite tests each promise with hand-picked examples; here
hypothesis invents the sequences (slug, org and name changes, re-pointed
instances, deletes and re-creates) and after every run each index answer
of the store must equal what the model derives from the live set alone.
Slugs and names stay unique per resource, as the pipeline guarantees
(duplicates are covered by the contract suite).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_factories import agent, instance, open_store

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, store_pb2
from stigmer_operator.store.errors import NotFoundError, OlderGenerationError
from stigmer_operator.store.memory import MemoryStore
from stigmer_operator.store.protocol import Store, spec_hash
from stigmer_operator.store.rocks import RocksStore

ORGS = ["acme", "globex", "ac"]
AGENT_IDS = [f"agt-{n:04d}" for n in range(4)]


@dataclass(frozen=True)
class Save:
    kind: Kind
    number: int
    org: str
    variant: int  # picks slug and name among a few per resource
    generation: int
    agent_number: int  # instances only: which agent they point at


@dataclass(frozen=True)
class Delete:
    kind: Kind
    number: int


Operation = Save | Delete

operations = st.lists(
    st.one_of(
        st.builds(
            Save,
            kind=st.sampled_from(list(Kind)),
            number=st.integers(0, 3),
            org=st.sampled_from(ORGS),
            variant=st.integers(0, 2),
            generation=st.integers(1, 3),
            agent_number=st.integers(0, 3),
        ),
        st.builds(Delete, kind=st.sampled_from(list(Kind)), number=st.integers(0, 3)),
    ),
    max_size=40,
)


def build(op: Save) -> Resource:
    slug_and_name = f"r{op.number}-v{op.variant}"
    if op.kind is Kind.AGENT:
        return agent(
            op.number, org=op.org, name=slug_and_name, slug=slug_and_name, generation=op.generation
        )
    return instance(
        op.number,
        AGENT_IDS[op.agent_number],
        org=op.org,
        name=slug_and_name,
        generation=op.generation,
    )


@dataclass
class Model:
    """The expected store: live resources plus versions and log length."""

    live: dict[tuple[Kind, str], Resource] = field(default_factory=dict)
    versions: dict[tuple[Kind, str], list[tuple[str, int]]] = field(default_factory=dict)
    log: list[int] = field(default_factory=list)

    def apply(self, op: Operation) -> int | None:
        """Apply ``op``; return the change type the store must log, if any."""
        if isinstance(op, Delete):
            resource_id = f"{op.kind.id_prefix}{op.number:04d}"
            if self.live.pop((op.kind, resource_id), None) is None:
                return None
            return self._log(store_pb2.CHANGE_TYPE_DELETED)
        resource = build(op)
        ref = (op.kind, resource.metadata.id)
        existed = ref in self.live
        if existed and resource.metadata.generation < self.live[ref].metadata.generation:
            return REFUSED  # the same object (uid) rolled back: refused, nothing written
        self.live[ref] = resource
        version = (spec_hash(resource), resource.metadata.generation)
        history = self.versions.setdefault(ref, [])
        if existed and history and history[-1] == version:
            return None
        history.append(version)
        change = store_pb2.CHANGE_TYPE_UPDATED if existed else store_pb2.CHANGE_TYPE_CREATED
        return self._log(change)

    def _log(self, change: int) -> int:
        self.log.append(change)
        return change


#: What :meth:`Model.apply` returns for a save the store must refuse.
REFUSED = -1


def run(store: Store, ops: list[Operation]) -> Model:
    model = Model()
    for op in ops:
        expected = model.apply(op)
        if expected == REFUSED:
            with pytest.raises(OlderGenerationError):
                store.save(build(op))
            continue
        if isinstance(op, Delete):
            entry = store.delete(op.kind, f"{op.kind.id_prefix}{op.number:04d}")
        else:
            entry = store.save(build(op))
        assert (entry.change if entry is not None else None) == expected
        if entry is not None:
            assert entry.sequence == len(model.log)
    return model


def check(store: Store, model: Model) -> None:
    for kind in Kind:
        live = {rid: r for (k, rid), r in model.live.items() if k is kind}
        assert [r.metadata.id for r in store.list(kind)] == sorted(live)
        for org in ORGS:
            expected = [live[rid] for rid in sorted(live) if live[rid].metadata.org == org]
            assert list(store.list_by_org(kind, org)) == expected
        for number in range(4):
            resource_id = f"{kind.id_prefix}{number:04d}"
            check_lookups(store, kind, resource_id, live.get(resource_id), model)
    for agent_id in AGENT_IDS:
        expected = sorted(
            rid
            for (k, rid), r in model.live.items()
            if isinstance(r, agent_instance_pb2.AgentInstance) and r.status.agent_id == agent_id
        )
        assert [r.metadata.id for r in store.list_instances_of_agent(agent_id)] == expected
    assert [e.change for e in store.changes()] == model.log
    assert store.stats().last_sequence == len(model.log)


def check_lookups(
    store: Store, kind: Kind, resource_id: str, resource: Resource | None, model: Model
) -> None:
    history = store.history(kind, resource_id)
    expected_versions = model.versions.get((kind, resource_id), [])
    assert [(h.spec_hash, h.generation) for h in reversed(history)] == expected_versions
    assert [h.version for h in history] == list(range(len(history), 0, -1))
    for org in ORGS:
        for variant in range(3):
            slug = f"r{resource_id[-1]}-v{variant}"
            owns = resource is not None and (resource.metadata.org, resource.metadata.slug) == (
                org,
                slug,
            )
            if owns:
                assert store.get_by_slug(kind, org, slug) == resource
                assert store.get_by_name(kind, org, slug) == resource
            else:
                with pytest.raises(NotFoundError):
                    store.get_by_slug(kind, org, slug)
                with pytest.raises(NotFoundError):
                    store.get_by_name(kind, org, slug)
    if resource is None:
        with pytest.raises(NotFoundError):
            store.get(kind, resource_id)
    else:
        assert store.get(kind, resource_id) == resource


@pytest.mark.parametrize("store_kind", ["memory", "rocks"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_indexes_match_the_model_after_random_operations(
    store_kind: str, ops: list[Operation]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = open_store(store_kind, Path(directory))
        try:
            model = run(store, ops)
            check(store, model)
        finally:
            store.close()


def observable(store: Store) -> dict[str, object]:
    """Everything a caller can see, with timestamps left out."""
    seen: dict[str, object] = {}
    for kind in Kind:
        seen[f"list {kind}"] = [r.SerializeToString(deterministic=True) for r in store.list(kind)]
        for org in ORGS:
            seen[f"org {kind} {org}"] = [r.metadata.id for r in store.list_by_org(kind, org)]
        for number in range(4):
            resource_id = f"{kind.id_prefix}{number:04d}"
            seen[f"history {resource_id}"] = [
                (h.version, h.spec_hash, h.generation, h.change)
                for h in store.history(kind, resource_id)
            ]
            for org in ORGS:
                for variant in range(3):
                    slug = f"r{number}-v{variant}"
                    try:
                        found = store.get_by_slug(kind, org, slug).metadata.id
                    except NotFoundError:
                        found = None
                    seen[f"slug {kind} {org} {slug}"] = found
    for agent_id in AGENT_IDS:
        seen[f"instances {agent_id}"] = [
            r.metadata.id for r in store.list_instances_of_agent(agent_id)
        ]
    seen["log"] = [(e.sequence, e.change, e.id, e.spec_hash) for e in store.changes()]
    return seen


@settings(max_examples=30, deadline=None)
@given(ops=operations)
def test_save_many_equals_saving_one_by_one(ops: list[Operation]) -> None:
    saves = [build(op) for op in ops if isinstance(op, Save)]
    newest: dict[str, int] = {}
    for resource in saves:  # one object per id, whose generations never go back
        meta = resource.metadata
        meta.generation = newest[meta.id] = max(meta.generation, newest.get(meta.id, 0))
    one_by_one = MemoryStore()
    expected = [one_by_one.save(resource) for resource in saves]
    with (
        tempfile.TemporaryDirectory() as directory,
        RocksStore.open(Path(directory) / "store", create=True) as batched,
    ):
        entries = batched.save_many(saves)
        assert [(e.sequence, e.change) if e else None for e in entries] == [
            (e.sequence, e.change) if e else None for e in expected
        ]
        assert observable(batched) == observable(one_by_one)


def test_save_many_is_all_or_nothing(tmp_path: Path) -> None:
    broken = agent(2)
    broken.metadata.id = ""
    with RocksStore.open(tmp_path / "store", create=True) as store:
        with pytest.raises(ValueError, match="metadata"):
            store.save_many([agent(1), broken])

        assert list(store.changes()) == []
        assert list(store.list(Kind.AGENT)) == []
