"""The sweeps' listing against the real API server: every page, and slim when asked."""

from __future__ import annotations

import kubernetes
import pytest

from stigmer_operator import sweep
from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.stragglers import lags
from tests.e2e.helpers import Cluster

AGENTS = 5


def test_the_listing_reads_every_page_and_slims_to_what_the_sweeps_read(
    cluster: Cluster,
    kube_api: kubernetes.client.ApiClient,
    private_namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = private_namespace
    created = {cluster.create_agent(ns, f"paged-{i}")["metadata"]["uid"] for i in range(AGENTS)}
    monkeypatch.setattr(sweep, "PAGE_SIZE", 2)  # three pages

    for namespaces in ([ns], []):  # by namespace, and cluster-wide
        whole = sweep.list_cluster_objects(kube_api, Kind.AGENT, namespaces)
        slim = sweep.list_cluster_objects(kube_api, Kind.AGENT, namespaces, slim=True)
        mine = [o for o in slim if o["metadata"]["namespace"] == ns]
        assert {o["metadata"]["uid"] for o in mine} == created
        assert {o["metadata"]["uid"] for o in whole} >= created
        by_uid = {o["metadata"]["uid"]: o for o in whole}
        for obj in mine:
            assert set(obj) == {"metadata", "status"}
            assert set(obj["metadata"]) == {
                "name", "namespace", "uid", "resourceVersion", "generation"
            }  # fmt: skip
            assert set(obj["status"]) <= {"observedGeneration", "conditions"}
            full = by_uid[obj["metadata"]["uid"]]
            ready = [
                c for c in full.get("status", {}).get("conditions", []) if c["type"] == "Ready"
            ]
            assert obj["status"].get("conditions", []) == [
                {"type": "Ready", "reason": c["reason"]} for c in ready
            ]
            assert obj["metadata"]["name"] == full["metadata"]["name"]
            assert "spec" in full and "managedFields" in full["metadata"]
            if not obj["status"]:  # not reconciled (yet): the sweep sees it lag
                assert lags(obj)
