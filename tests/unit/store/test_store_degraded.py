"""The operator's store on a full volume: reads go on, the store reopens once there is room.

Unit level: the DegradableStore's decisions (when to reopen, what it falls
back to), what liveness and metrics report, and how RocksDB's error lines
are classified. The real thing -- RocksDB on a full tmpfs under a running
operator -- is ``tests/e2e/test_full_disk.py``.
"""

from __future__ import annotations

from pathlib import Path

import kopf
import kubernetes
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.api.v1 import agent_pb2
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.startup import store_takes_writes
from stigmer_operator.metrics import StoreCollector
from stigmer_operator.pipeline.deps import Deps
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.settings import OperatorSettings
from stigmer_operator.store import degraded
from stigmer_operator.store.degraded import DegradableStore, UnwritableStandIn
from stigmer_operator.store.errors import (
    StoreCorruptError,
    StoreOpenError,
    StoreUnwritableError,
    unwritable_cause,
)
from stigmer_operator.store.memory import MemoryStore
from stigmer_operator.store.protocol import Store


def _agent() -> agent_pb2.Agent:
    agent = agent_pb2.Agent()
    agent.metadata.id = "agt-1"
    agent.metadata.name = "support-bot"
    agent.metadata.namespace = "team-a"
    agent.metadata.org = "team-a"
    return agent


class Reopener:
    """What ``open_for_operator`` passes: opens the store again, counting the attempts."""

    def __init__(self, result: Store | Exception) -> None:
        self.result = result
        self.calls = 0

    def __call__(self) -> Store:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_rocksdb_error_lines_tell_a_full_disk_from_damage() -> None:
    assert (
        unwritable_cause("IO error: No space left on device: While appending to file: 4.log")
        == "no space left on device"
    )
    assert unwritable_cause("IO error: While open a file: Read-only file system") == (
        "read-only file system"
    )
    assert unwritable_cause("Corruption: block checksum mismatch") is None


def test_an_unwritable_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    store = DegradableStore(UnwritableStandIn(tmp_path), tmp_path, Reopener(MemoryStore()))
    assert not store.writable
    assert list(store.list(Kind.AGENT)) == []
    with pytest.raises(StoreUnwritableError):
        store.save(_agent())


def test_a_write_reopens_the_store_once_the_volume_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reopened = MemoryStore()
    reopen = Reopener(reopened)
    store = DegradableStore(UnwritableStandIn(tmp_path), tmp_path, reopen)
    with pytest.raises(StoreUnwritableError):
        store.save(_agent())  # too soon after the refusal: no reopen yet
    assert reopen.calls == 0

    monkeypatch.setattr(degraded, "REOPEN_INTERVAL_SECONDS", 0.0)
    store.save(_agent())  # tmp_path has room: reopened, then written
    assert reopen.calls == 1 and store.writable
    assert reopened.get(Kind.AGENT, "agt-1").metadata.name == "support-bot"


def test_no_reopen_while_the_volume_is_still_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reopen = Reopener(MemoryStore())
    store = DegradableStore(UnwritableStandIn(tmp_path), tmp_path, reopen)
    monkeypatch.setattr(degraded, "REOPEN_INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(degraded, "REOPEN_MIN_FREE_BYTES", 1 << 62)  # more than any disk
    with pytest.raises(StoreUnwritableError):
        store.probe()
    assert reopen.calls == 0


def test_a_failed_reopen_leaves_a_store_that_refuses_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reopen = Reopener(StoreOpenError("cannot open"))
    store = DegradableStore(UnwritableStandIn(tmp_path), tmp_path, reopen)
    monkeypatch.setattr(degraded, "REOPEN_INTERVAL_SECONDS", 0.0)
    with pytest.raises(StoreUnwritableError):
        store.save(_agent())
    assert reopen.calls == 1 and not store.writable


def _memo(store: Store) -> OperatorMemo:
    deps = Deps(store=store, kube=RecordingKubeEffects())
    return OperatorMemo(deps, OperatorSettings(), kubernetes.client.ApiClient())


def test_liveness_passes_on_a_full_disk_and_says_so(tmp_path: Path) -> None:
    store = DegradableStore(UnwritableStandIn(tmp_path), tmp_path, Reopener(MemoryStore()))
    assert store_takes_writes(memo=_memo(store)).startswith("unwritable: ")
    assert store_takes_writes(memo=_memo(MemoryStore())) == "writable"


def test_liveness_fails_on_any_other_store_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = MemoryStore()

    def corrupt() -> None:
        raise StoreCorruptError("the store at /x is corrupt")

    monkeypatch.setattr(broken, "probe", corrupt)
    with pytest.raises(kopf.PermanentError):
        store_takes_writes(memo=_memo(broken))


@pytest.mark.parametrize(("writable", "value"), [(True, "1.0"), (False, "0.0")])
def test_the_writable_metric(tmp_path: Path, writable: bool, value: str) -> None:
    store = MemoryStore() if writable else UnwritableStandIn(tmp_path)
    registry = CollectorRegistry()
    registry.register(StoreCollector(store))
    assert f"stigmer_store_writable {value}" in generate_latest(registry).decode()
