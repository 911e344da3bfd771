"""The start-up listing against the real API: by label, paginated, per namespace or cluster-wide."""

from __future__ import annotations

import kubernetes
import pytest

from stigmer_operator.api.kinds import DEFAULT_INSTANCE_LABEL, Kind
from stigmer_operator.handlers import startup_listing
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.listing import Seen, StartupListing
from stigmer_operator.pipeline.meta import MANAGED_BY
from tests.e2e.helpers import Cluster

OURS = {MANAGED_BY[0]: MANAGED_BY[1]}


@pytest.fixture
def objects(cluster: Cluster, private_namespace: str) -> str:
    """Five Roles of the operator's, one of someone else's, a default and a plain instance."""
    ns = private_namespace
    for i in range(5):
        cluster.rbac.create_namespaced_role(ns, {"metadata": {"name": f"ours-{i}", "labels": OURS}})
    cluster.rbac.create_namespaced_role(ns, {"metadata": {"name": "theirs"}})
    default = {DEFAULT_INSTANCE_LABEL: "true"}
    cluster.create(Kind.AGENT_INSTANCE, ns, "a-default", {"agentRef": {"name": "a"}}, default)
    cluster.create(Kind.AGENT_INSTANCE, ns, "plain", {"agentRef": {"name": "a"}})
    return ns


@pytest.mark.parametrize("cluster_wide", [False, True], ids=["namespaced", "cluster-wide"])
def test_the_listing_holds_exactly_the_operators_objects_over_several_pages(
    kube_api: kubernetes.client.ApiClient,
    objects: str,
    monkeypatch: pytest.MonkeyPatch,
    cluster_wide: bool,
) -> None:
    ns = objects
    monkeypatch.setattr(startup_listing, "PAGE_SIZE", 2)  # five Roles: three pages
    listing = StartupListing()
    patterns = ["p-*"] if cluster_wide else [ns]
    startup_listing.load(listing, kube_api, patterns)

    for i in range(5):
        listed = listing.take(ObjectKind.ROLE, ns, f"ours-{i}")
        assert listed.seen is Seen.LISTED and listed.body is not None
        assert listed.body["metadata"]["labels"] == OURS
        assert "managedFields" not in listed.body["metadata"]
    # Not labelled as the operator's: not fetched, so a resume would create first, then read.
    assert listing.take(ObjectKind.ROLE, ns, "theirs").seen is Seen.ABSENT
    assert listing.take(ObjectKind.ROLE_BINDING, ns, "ours-0").seen is Seen.ABSENT
    assert listing.take(ObjectKind.AGENT_INSTANCE, ns, "plain").seen is Seen.ABSENT
    # Listed: served, and checked against kopf's watch afterwards (this one it never shows).
    assert listing.take(ObjectKind.AGENT_INSTANCE, ns, "a-default").seen is Seen.LISTED
    if not cluster_wide:  # another namespace is not covered
        assert listing.take(ObjectKind.ROLE, "elsewhere", "ours-0").seen is Seen.UNKNOWN


def test_a_listing_that_fails_leaves_those_names_unknown(objects: str) -> None:
    ns = objects
    nobody = kubernetes.client.ApiClient(kubernetes.client.Configuration(host="http://127.0.0.1:1"))
    listing = StartupListing()
    assert startup_listing.load(listing, nobody, [ns]) == 0
    assert listing.take(ObjectKind.ROLE, ns, "ours-0").seen is Seen.UNKNOWN
