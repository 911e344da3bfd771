"""Retention settings reach the store, and the periodic prune never stops the operator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from store_factories import agent

from stigmer_operator.api.kinds import Kind
from stigmer_operator.cli import build_parser
from stigmer_operator.settings import OperatorSettings
from stigmer_operator.store.maintenance import Maintenance
from stigmer_operator.store.memory import MemoryStore
from stigmer_operator.store.retention import Retention, days_ns
from stigmer_operator.store.rocks import RocksStore


def test_defaults_keep_fifty_versions_and_a_month_of_deleted_history() -> None:
    assert OperatorSettings().retention == Retention(
        max_versions=50,
        max_age_ns=0,
        deleted_ttl_ns=days_ns(30),
        log_max_entries=100_000,
        log_max_age_ns=days_ns(30),
    )


def test_environment_and_flags_set_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STIGMER_HISTORY_MAX_VERSIONS", "7")
    monkeypatch.setenv("STIGMER_CHANGE_LOG_MAX_AGE_DAYS", "0.5")
    assert OperatorSettings().retention.max_versions == 7
    assert OperatorSettings().retention.log_max_age_ns == days_ns(0.5)

    args = build_parser().parse_args(["run", "--history-max-versions", "3"])
    fields = ("history_max_versions", "change_log_max_entries")
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    assert overrides == {"history_max_versions": 3}


def test_negative_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="history_max_versions"):
        OperatorSettings(history_max_versions=-1)


def test_a_maintenance_run_prunes(tmp_path: Path) -> None:
    with RocksStore.open(tmp_path / "store", create=True) as store:
        store.save(agent(1))
        store.delete(Kind.AGENT, "agt-0001")
        for entry in store.changes():
            store.mark_published(entry.sequence)
    with RocksStore.open(tmp_path / "store", retention=Retention(log_max_entries=1)) as store:
        Maintenance(store, 3600).run_once()

        assert [entry.sequence for entry in store.changes()] == [2]


def test_a_failing_prune_is_logged_and_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    store.close()  # every call now fails with a StoreError

    with caplog.at_level(logging.WARNING):
        Maintenance(store, 60).run_once()

    assert "store maintenance failed, retrying in 60 s" in caplog.text


def test_stop_ends_the_thread_promptly() -> None:
    maintenance = Maintenance.start(MemoryStore(), 3600)
    maintenance.stop()  # returns without waiting for the first run
