"""The start-up listing: served once, only on a resume, never trusted for a write, expires."""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes
import pytest
from pipeline_world import World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.agent_instance import instance_event
from stigmer_operator.handlers.common import reconcile
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.retries import Retries
from stigmer_operator.handlers.startup_listing import rerun_stale
from stigmer_operator.pipeline.conditions import ConditionType, is_true
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import DEFAULT_INSTANCE_READY
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.kube_recording import Call
from stigmer_operator.pipeline.listing import (
    ABSENT,
    UNKNOWN,
    Controller,
    Seen,
    StartupListing,
)
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.settings import OperatorSettings

IAM = (ObjectKind.SERVICE_ACCOUNT, ObjectKind.ROLE, ObjectKind.ROLE_BINDING)
SA = "support-bot-prod-agent"


class Ticks:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def role(name: str = "r", namespace: str = "team-a", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "managedFields": [{"manager": "stigmer-operator", "fieldsV1": {"f:rules": {}}}],
            "annotations": {"note": "x" * 1000},
            **metadata,
        },
        "rules": [],
    }


# -- the listing itself --------------------------------------------------------
def test_an_entry_is_served_once_and_keeps_only_what_comparisons_read() -> None:
    listing = StartupListing()
    listing.add(ObjectKind.ROLE, "team-a", [role(labels={"a": "b"}), role("another")])
    first = listing.take(ObjectKind.ROLE, "team-a", "r")
    assert first.seen is Seen.LISTED and first.body is not None
    assert first.body["metadata"] == {
        "name": "r",
        "namespace": "team-a",
        "uid": "uid-r",
        "resourceVersion": "7",
        "labels": {"a": "b"},
    }
    assert first.body["rules"] == []
    assert "kind" not in first.body
    assert listing.take(ObjectKind.ROLE, "team-a", "r") == UNKNOWN


def test_a_name_missing_from_a_complete_listing_is_absent_once() -> None:
    listing = StartupListing()
    listing.add(ObjectKind.ROLE, "team-a", [role("kept")])
    assert listing.take(ObjectKind.ROLE, "team-a", "other") == ABSENT
    assert listing.take(ObjectKind.ROLE, "team-a", "other") == UNKNOWN


def test_what_was_not_listed_is_unknown() -> None:
    listing = StartupListing()
    listing.add(ObjectKind.ROLE, "team-a", [role("kept")])
    assert listing.take(ObjectKind.ROLE, "team-b", "kept") == UNKNOWN  # namespace not listed
    assert listing.take(ObjectKind.ROLE_BINDING, "team-a", "kept") == UNKNOWN  # kind not listed


def test_a_cluster_wide_listing_covers_every_namespace() -> None:
    listing = StartupListing()
    listing.add(ObjectKind.ROLE, None, [role("kept", "team-b")])
    assert listing.take(ObjectKind.ROLE, "team-c", "other") == ABSENT
    assert listing.take(ObjectKind.ROLE, "team-b", "kept").seen is Seen.LISTED


def test_a_listing_whose_pages_fail_midway_records_nothing() -> None:
    def pages() -> Any:
        yield role("first")
        raise OSError("connection reset on the second page")

    listing = StartupListing()
    with pytest.raises(OSError):
        listing.add(ObjectKind.ROLE, "team-a", pages())
    assert len(listing) == 0
    assert listing.take(ObjectKind.ROLE, "team-a", "first") == UNKNOWN
    assert listing.take(ObjectKind.ROLE, "team-a", "other") == UNKNOWN  # not taken for absent


def test_the_listing_expires_after_its_ttl() -> None:
    ticks = Ticks()
    listing = StartupListing(ttl=60, clock=ticks)
    listing.add(ObjectKind.ROLE, "team-a", [role("a"), role("b")])
    assert listing.take(ObjectKind.ROLE, "team-a", "a").seen is Seen.LISTED
    ticks.now += 60
    assert listing.take(ObjectKind.ROLE, "team-a", "b") == UNKNOWN
    assert listing.take(ObjectKind.ROLE, "team-a", "never") == UNKNOWN
    assert len(listing) == 0  # the memory is given back


def test_the_listing_ends_when_resumes_stop_asking() -> None:
    ticks = Ticks()
    listing = StartupListing(ttl=600, idle=15, clock=ticks)
    listing.add(ObjectKind.ROLE, "team-a", [role("a"), role("b"), role("c")])
    ticks.now += 100  # kopf may take a while to start: no resume has asked yet
    assert not listing.expire()
    assert listing.take(ObjectKind.ROLE, "team-a", "a").seen is Seen.LISTED
    ticks.now += 14
    assert listing.take(ObjectKind.ROLE, "team-a", "b").seen is Seen.LISTED
    ticks.now += 14
    assert not listing.expire()
    ticks.now += 1
    assert listing.expire()
    assert len(listing) == 0
    assert listing.take(ObjectKind.ROLE, "team-a", "c") == UNKNOWN


def test_once_every_entry_is_used_the_listing_is_over() -> None:
    listing = StartupListing()
    listing.add(ObjectKind.ROLE, "team-a", [role("only")])
    assert listing.take(ObjectKind.ROLE, "team-a", "only").seen is Seen.LISTED
    assert listing.take(ObjectKind.ROLE, "team-a", "other") == UNKNOWN


def owned_instance(name: str, version: str) -> dict[str, Any]:
    body = instance_manifest(name)
    body["metadata"].update(uid=f"uid-{name}", resourceVersion=version)
    body["metadata"]["ownerReferences"] = [
        {"kind": "Agent", "name": name.removesuffix("-default"), "uid": "agent-uid",
         "controller": True}
    ]  # fmt: skip
    return body


def test_a_watched_kind_served_before_the_watch_showed_it_is_checked_afterwards() -> None:
    listing = StartupListing()
    names = ("seen-default", "same-default", "changed-default", "deleted-default", "gap-default")
    listing.add(ObjectKind.AGENT_INSTANCE, "team-a", [owned_instance(n, "5") for n in names])

    newer = owned_instance("seen-default", "9")
    newer["status"] = {"id": "ain-1"}
    assert listing.observed(ObjectKind.AGENT_INSTANCE, newer) is None  # before any run used it
    served = listing.take(ObjectKind.AGENT_INSTANCE, "team-a", "seen-default")
    assert served.body is not None
    assert served.body["metadata"]["resourceVersion"] == "9"  # as the watch last showed it
    assert served.body["status"] == {"id": "ain-1"}

    for name in names[1:]:  # used before the watch showed them
        assert listing.take(ObjectKind.AGENT_INSTANCE, "team-a", name).seen is Seen.LISTED
    same = listing.observed(ObjectKind.AGENT_INSTANCE, owned_instance("same-default", "5"))
    changed = listing.observed(ObjectKind.AGENT_INSTANCE, owned_instance("changed-default", "6"))
    deleted = listing.gone(ObjectKind.AGENT_INSTANCE, "team-a", "deleted-default")
    assert same is None
    assert changed == Controller("team-a", "Agent", "changed", "agent-uid")
    assert deleted == Controller("team-a", "Agent", "deleted", "agent-uid")
    # Never shown by the watch: deleted between the start-up listing and kopf's own.
    assert listing.unseen() == [Controller("team-a", "Agent", "gap", "agent-uid")]
    assert listing.unseen() == []


def test_a_deleted_instance_the_watch_reports_before_any_run_is_absent() -> None:
    listing = StartupListing()
    listing.add(ObjectKind.AGENT_INSTANCE, "team-a", [owned_instance(n, "5") for n in "ab"])
    assert listing.gone(ObjectKind.AGENT_INSTANCE, "team-a", "a") is None
    assert listing.take(ObjectKind.AGENT_INSTANCE, "team-a", "a") == ABSENT


def test_the_watch_adds_nothing_that_was_not_listed() -> None:
    listing = StartupListing()
    listing.add(ObjectKind.AGENT_INSTANCE, "team-a", [])
    late = instance_manifest("late")
    late["metadata"].update(uid="u9", resourceVersion="3")
    listing.observed(ObjectKind.AGENT_INSTANCE, late)
    assert len(listing) == 0


# -- the steps on a restart ----------------------------------------------------
def reconciled(world: World) -> None:
    """An Agent, its default instance, and an instance with its IAM objects, all reconciled."""
    world.agent()
    world.apply(instance_manifest())
    world.run(Kind.AGENT_INSTANCE, "support-bot-prod")


def restart_with_listing(world: World) -> StartupListing:
    """A restarted operator with the listing it takes: IAM objects and default instances."""
    world.restart()
    listing = world.deps.listing
    for kind in (*IAM, ObjectKind.AGENT_INSTANCE):
        objects = [o for (k, _, _), o in world.kube.objects.items() if k is kind]
        listing.add(kind, "team-a", objects)
    for (kind, _, _), obj in world.kube.objects.items():  # kopf's watch, after the listing
        if kind is ObjectKind.AGENT_INSTANCE:
            listing.observed(kind, obj)
    return listing


def requests(world: World, since: int) -> list[Call]:
    """Calls since ``since`` but status patches, Events and the namespace's org (read once)."""
    return [
        c
        for c in world.kube.calls[since:]
        if c.method not in ("patch_status", "post_event") and c.kind != "Namespace"
    ]


def test_resumes_at_start_read_nothing_the_listing_answered(world: World) -> None:
    reconciled(world)
    restart_with_listing(world)
    before = len(world.kube.calls)
    world.run(Kind.AGENT_INSTANCE, "support-bot-prod", op=Operation.RESUME)
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert requests(world, before) == []


def test_an_iam_object_changed_while_down_is_read_and_repaired(world: World) -> None:
    reconciled(world)
    world.kube.objects[(ObjectKind.ROLE, "team-a", SA)]["rules"] = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}
    ]
    world.kube.remove(ObjectKind.ROLE_BINDING, "team-a", SA)
    restart_with_listing(world)
    before = len(world.kube.calls)
    world.run(Kind.AGENT_INSTANCE, "support-bot-prod", op=Operation.RESUME)
    assert requests(world, before) == [
        Call("apply_owned", "Role", "team-a", SA),
        Call("apply_owned", "RoleBinding", "team-a", SA),
    ]
    assert world.kube.created_first[-1] == Call("apply_owned", "RoleBinding", "team-a", SA)
    assert world.kube.objects[(ObjectKind.ROLE, "team-a", SA)]["rules"] == []
    assert (ObjectKind.ROLE_BINDING, "team-a", SA) in world.kube.objects


def test_a_name_created_after_the_listing_is_not_taken_for_absent(world: World) -> None:
    reconciled(world)
    world.kube.remove(ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")
    restart_with_listing(world)
    # Re-created (say, by a GitOps tool) after the listing, not by this Agent.
    world.apply(instance_manifest("support-bot-default"))
    with pytest.raises(PipelineError) as refused:
        world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert refused.value.reason is Reason.DEFAULT_INSTANCE_CONFLICT


def test_a_listed_default_instance_of_another_owner_is_read_again(world: World) -> None:
    reconciled(world)
    instance = world.kube.objects[(ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")]
    instance["metadata"]["ownerReferences"][0].update(name="other-bot", uid="someone-else")
    restart_with_listing(world)
    before = len(world.kube.calls)
    with pytest.raises(PipelineError) as refused:
        world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    assert refused.value.reason is Reason.DEFAULT_INSTANCE_CONFLICT
    assert Call("get", "AgentInstance", "team-a", "support-bot-default") in requests(world, before)


def test_a_second_run_reads_what_the_first_took_from_the_listing(world: World) -> None:
    reconciled(world)
    restart_with_listing(world)
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    world.mark_ready(Kind.AGENT_INSTANCE, "support-bot-default")  # flipped after the listing
    before = len(world.kube.calls)
    ctx = world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)  # the re-run the flip causes
    assert Call("get", "AgentInstance", "team-a", "support-bot-default") in requests(world, before)
    assert ctx.values.get(DEFAULT_INSTANCE_READY) is True


@pytest.mark.parametrize("operation", [Operation.CREATE, Operation.UPDATE])
def test_only_a_resume_uses_the_listing(world: World, operation: Operation) -> None:
    reconciled(world)
    listing = restart_with_listing(world)
    entries = len(listing)
    world.run(Kind.AGENT_INSTANCE, "support-bot-prod", op=operation)
    world.run(Kind.AGENT, "support-bot", op=operation)
    assert len(listing) == entries


def test_a_new_agent_at_start_creates_its_instance_without_a_read(world: World) -> None:
    restart_with_listing(world)  # nothing listed yet in team-a
    world.apply(agent_manifest())
    before = len(world.kube.calls)
    world.run(Kind.AGENT, "support-bot", op=Operation.RESUME)
    instance_calls = [c.method for c in requests(world, before) if c.kind == "AgentInstance"]
    assert instance_calls == ["create_agent_instance"]


# -- the handlers: an Agent that used a stale listed instance runs again -----------------
def _memo(world: World) -> OperatorMemo:
    return OperatorMemo(
        world.deps,
        OperatorSettings(),
        kubernetes.client.ApiClient(),
        retries=Retries(clock=lambda: 0.0, autostart=False),
    )


def _agent_ready(world: World) -> bool:
    return is_true(conditions_of(world.current(Kind.AGENT, "support-bot")), ConditionType.READY)


def _not_ready_yet(world: World, name: str) -> None:
    """The instance's own reconcile said Ready=False (blocked, say): it has status."""
    obj = world.kube.objects[(ObjectKind.AGENT_INSTANCE, "team-a", name)]
    obj["status"] = {
        "observedGeneration": obj["metadata"]["generation"],
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "IamConflict",
                "message": "",
                "observedGeneration": obj["metadata"]["generation"],
                "lastTransitionTime": "2026-01-18T19:41:31Z",
            }
        ],
    }


def test_an_agent_that_used_an_older_listed_instance_runs_again(world: World) -> None:
    world.agent()
    _not_ready_yet(world, "support-bot-default")
    world.restart()
    memo = _memo(world)
    instance = world.current(Kind.AGENT_INSTANCE, "support-bot-default")
    world.deps.listing.add(ObjectKind.AGENT_INSTANCE, "team-a", [instance])
    # The Agent's resume runs before kopf's watch showed the instance: as listed, not Ready.
    reconcile(Kind.AGENT, Operation.RESUME, world.current(Kind.AGENT, "support-bot"), memo)
    assert not _agent_ready(world)

    # It turned Ready between the two listings: kopf's first sight is no readiness flip.
    world.mark_ready(Kind.AGENT_INSTANCE, "support-bot-default")
    newer = world.current(Kind.AGENT_INSTANCE, "support-bot-default")
    newer["metadata"]["resourceVersion"] += "0"  # the API versions every change
    asyncio.run(instance_event({"type": None, "object": newer}, memo))

    assert memo.retries.run_due() == 1
    assert _agent_ready(world)


def test_an_agent_served_an_instance_deleted_between_the_listings_recreates_it(
    world: World,
) -> None:
    world.agent()
    world.restart()
    memo = _memo(world)
    instance = world.current(Kind.AGENT_INSTANCE, "support-bot-default")
    world.deps.listing.add(ObjectKind.AGENT_INSTANCE, "team-a", [instance])
    world.kube.remove(ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")
    reconcile(Kind.AGENT, Operation.RESUME, world.current(Kind.AGENT, "support-bot"), memo)
    assert (ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default") not in world.kube.objects

    for controller in world.deps.listing.unseen():  # what ends the start-up phase does
        rerun_stale(controller, memo)
    assert memo.retries.run_due() == 1
    assert (ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default") in world.kube.objects
