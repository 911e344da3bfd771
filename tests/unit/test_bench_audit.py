"""``bench/reconcile/audit.py`` counts reads of the operator's kinds by client, from a time on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
GC = "system:serviceaccount:kube-system:generic-garbage-collector"


def _event(verb: str, resource: str, user: str, at: str) -> str:
    agent = "kube-controller-manager/v1.37.2 (linux/amd64)" if user == GC else "kopf/1.45.2"
    return json.dumps({
        "kind": "Event", "verb": verb, "user": {"username": user}, "userAgent": agent,
        "objectRef": {"resource": resource, "apiGroup": "agentic.stigmer.ai"},
        "requestReceivedTimestamp": at,
    })  # fmt: skip


def test_reads_are_counted_by_verb_resource_and_client_from_a_time_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    from reconcile.audit import POLICY, reads_since, write_policy

    log = tmp_path / "audit.log"
    log.write_text(
        "\n".join([
            _event("get", "agents", GC, "2026-12-03T18:00:00.000000Z"),  # before the phase
            _event("get", "agents", GC, "2026-12-03T18:00:01.500000Z"),
            _event("get", "agentinstances", GC, "2026-12-03T18:00:02.000000Z"),
            _event("get", "agents", GC, "2026-12-03T18:00:03.000000Z"),
            _event("list", "agents", "admin", "2026-12-03T18:00:04.000000Z"),
        ]) + "\n"
    )  # fmt: skip
    since = datetime(2026, 12, 3, 18, 0, 1, tzinfo=UTC)

    assert reads_since(log, since) == {
        ("GET", "agents", f"{GC} kube-controller-manager"): 2,
        ("GET", "agentinstances", f"{GC} kube-controller-manager"): 1,
        ("LIST", "agents", "admin kopf"): 1,
    }
    assert reads_since(tmp_path / "missing.log", since) == {}
    assert write_policy(tmp_path).read_text() == POLICY
    assert 'verbs: ["get", "list"]' in POLICY
