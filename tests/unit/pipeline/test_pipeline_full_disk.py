"""A store that cannot write (full or read-only volume) is not an outage.

The cluster is still reconciled -- default instance, IAM objects, status --
and the object says its mirror is behind (``Mirrored=False``,
``StoreUnwritable``, one Warning Event); once the store writes again, the
next run records the object and ``Mirrored`` turns True. Authorize does not
trust store records that may be stale while the store cannot write.

The store is a MemoryStore whose writes are refused the way RocksStore
refuses them on a full disk (the same typed error); the real RocksDB on a
real full tmpfs is in ``tests/e2e/test_full_disk.py``.
"""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes
import pytest
from pipeline_world import Clock, World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.handlers.common import Reconciled, reconcile, rerun, retry_until_mirrored
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.retries import Retries
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.settings import OperatorSettings
from stigmer_operator.store.errors import (
    NotFoundError,
    StoreCorruptError,
    StoreUnwritableError,
)
from stigmer_operator.store.memory import MemoryStore

NO_SPACE = "no space left on device"


class FullableStore(MemoryStore):
    """A MemoryStore whose disk can fill up: then every write raises StoreUnwritableError."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False

    @property
    def writable(self) -> bool:
        return not self.full

    def _check(self) -> None:
        if self.full:
            raise StoreUnwritableError("write to the store failed: No space left", NO_SPACE)

    def save(self, resource: Resource) -> store_pb2.ChangeLogEntry | None:
        self._check()
        return super().save(resource)

    def delete(
        self, kind: Kind, resource_id: str, *, uid: str | None = None
    ) -> store_pb2.ChangeLogEntry | None:
        self._check()
        return super().delete(kind, resource_id, uid=uid)

    def mark_published(self, sequence: int) -> None:
        self._check()
        super().mark_published(sequence)

    def put_ownership(self, record: store_pb2.OwnershipRecord) -> None:
        self._check()
        super().put_ownership(record)

    def probe(self) -> None:
        self._check()


@pytest.fixture
def full() -> FullableStore:
    return FullableStore()


@pytest.fixture
def fworld(full: FullableStore, kube: RecordingKubeEffects, clock: Clock) -> World:
    return World(full, kube, clock)


def _condition(world: World, kind: Kind, name: str, type_: ConditionType) -> dict[str, Any]:
    return dict(find_condition(conditions_of(world.current(kind, name)), type_) or {})


def test_a_new_agent_on_a_full_store_is_reconciled_and_says_its_mirror_is_behind(
    fworld: World, full: FullableStore
) -> None:
    full.full = True
    fworld.agent()
    fworld.run(Kind.AGENT_INSTANCE, "support-bot-default")
    fworld.mark_ready(Kind.AGENT_INSTANCE, "support-bot-default")
    fworld.run(Kind.AGENT, "support-bot")

    # The cluster side is all there: default instance, its IAM objects, status.
    for kind in (ObjectKind.SERVICE_ACCOUNT, ObjectKind.ROLE, ObjectKind.ROLE_BINDING):
        assert fworld.kube.get(kind, "team-a", "support-bot-default-agent") is not None
    for kind, name in ((Kind.AGENT, "support-bot"), (Kind.AGENT_INSTANCE, "support-bot-default")):
        ready = _condition(fworld, kind, name, ConditionType.READY)
        assert ready["status"] == "True", ready
        mirrored = _condition(fworld, kind, name, ConditionType.MIRRORED)
        assert (mirrored["status"], mirrored["reason"]) == ("False", "StoreUnwritable")
        assert NO_SPACE in mirrored["message"]
        # kstatus: Ready, neither Stalled nor Reconciling -- the cluster side is Current.
        assert _condition(fworld, kind, name, ConditionType.RECONCILING) == {}
        assert _condition(fworld, kind, name, ConditionType.STALLED) == {}
    # ... the mirror is not, and the Warning was posted once per generation, not per run.
    with pytest.raises(NotFoundError):
        full.get_by_name(Kind.AGENT, "team-a", "support-bot")
    assert len(fworld.kube.events_for("support-bot", "StoreUnwritable")) == 1
    assert fworld.kube.events_for("support-bot", "Created") == []


def test_the_mirror_catches_up_on_the_next_run_once_the_store_writes(
    fworld: World, full: FullableStore
) -> None:
    full.full = True
    fworld.agent()
    full.full = False
    fworld.run(Kind.AGENT, "support-bot")
    agent = full.get_by_name(Kind.AGENT, "team-a", "support-bot")
    assert len(full.history(Kind.AGENT, agent.metadata.id)) == 1
    assert full.get_ownership(agent.metadata.id).org == "team-a"
    mirrored = _condition(fworld, Kind.AGENT, "support-bot", ConditionType.MIRRORED)
    assert (mirrored["status"], mirrored["reason"]) == ("True", "Mirrored")
    assert len(fworld.kube.events_for("support-bot", "Created")) == 1


def test_objects_never_behind_get_no_mirrored_condition(world: World) -> None:
    world.agent()
    assert _condition(world, Kind.AGENT, "support-bot", ConditionType.MIRRORED) == {}


def test_a_stale_ownership_record_grants_nothing_while_the_store_cannot_write(
    fworld: World, full: FullableStore
) -> None:
    fworld.agent(namespace="team-b", sharing=["team-a"])
    # Sharing with team-a is withdrawn while the disk is full: the record stays stale.
    full.full = True
    fworld.edit_spec(Kind.AGENT, "support-bot", "team-b", sharing=[])
    fworld.run(Kind.AGENT, "support-bot", "team-b")
    agent_id = fworld.current(Kind.AGENT, "support-bot", "team-b")["status"]["id"]
    assert list(full.get_ownership(agent_id).shared_with_orgs) == ["team-a"]  # stale

    fworld.apply(instance_manifest(agent_namespace="team-b"))
    with pytest.raises(PipelineError) as refused:
        fworld.run(Kind.AGENT_INSTANCE, "support-bot-prod")
    assert refused.value.reason is Reason.AGENT_NOT_FOUND


def test_other_store_failures_still_fail_the_reconcile(
    fworld: World, full: FullableStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def corrupt(_resource: Resource) -> None:
        raise StoreCorruptError("the store at /x is corrupt")

    monkeypatch.setattr(full, "save", corrupt)
    fworld.apply(agent_manifest())
    with pytest.raises(PipelineError) as failed:
        fworld.run(Kind.AGENT, "support-bot")
    assert (failed.value.step, failed.value.reason) == ("Persist", Reason.STORE_ERROR)


def test_the_handler_asks_kopf_to_retry_until_the_store_records_the_object(
    fworld: World, full: FullableStore
) -> None:
    memo = OperatorMemo(fworld.deps, OperatorSettings(), kubernetes.client.ApiClient())
    body = fworld.apply(agent_manifest())
    full.full = True
    reconciled = reconcile(Kind.AGENT, Operation.CREATE, body, memo)
    assert reconciled is Reconciled.MIRROR_BEHIND
    with pytest.raises(kopf.TemporaryError):
        retry_until_mirrored(reconciled)
    full.full = False  # kopf's retry, with the same body, is not skipped as a repeat
    assert reconcile(Kind.AGENT, Operation.CREATE, body, memo) is Reconciled.MIRRORED
    retry_until_mirrored(Reconciled.MIRRORED)
    assert full.get_by_name(Kind.AGENT, "team-a", "support-bot").metadata.name == "support-bot"


def test_a_rerun_whose_mirror_is_behind_is_retried_until_the_store_records_it(
    fworld: World, full: FullableStore
) -> None:
    """kopf retries only its own handler runs; a re-run by another object goes to Retries."""
    now = [1000.0]
    memo = OperatorMemo(
        fworld.deps,
        OperatorSettings(),
        kubernetes.client.ApiClient(),
        retries=Retries(clock=lambda: now[0], autostart=False),
    )
    full.full = True
    fworld.agent()  # reconciles its default instance in its run: that one is retried too
    key = (Kind.AGENT, "team-a", "support-bot")
    instance_key = (Kind.AGENT_INSTANCE, "team-a", "support-bot-default")
    assert memo.retries.pending() == [instance_key]

    rerun(*key, memo)

    assert memo.retries.pending() == [instance_key, key]
    full.full = False
    assert memo.retries.run_due() == 0  # not due yet
    now[0] += 30
    assert memo.retries.run_due() == 2
    assert memo.retries.pending() == []
    assert full.get_by_name(Kind.AGENT, "team-a", "support-bot").metadata.name == "support-bot"
    mirrored = _condition(fworld, Kind.AGENT, "support-bot", ConditionType.MIRRORED)
    assert (mirrored["status"], mirrored["reason"]) == ("True", "Mirrored")
