"""Objects deleted while a watch re-listed (no DELETED event) leave nothing behind.

The sweep compares the mirror with a listing of the cluster; each leftover
is checked again under its lock, so an object created after the listing
keeps its entry.
"""

from __future__ import annotations

import contextlib
from typing import Any

import kopf
import kubernetes
from pipeline_world import World, agent_manifest, instance_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.common import reconcile
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.startup import sweep_gone
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.settings import OperatorSettings

INSTANCE = "support-bot-prod"


def _memo(world: World) -> OperatorMemo:
    return OperatorMemo(world.deps, OperatorSettings(), kubernetes.client.ApiClient())


def _listing(world: World) -> Any:
    def live_uids(kind: Kind) -> set[str]:
        wanted = ObjectKind.of(kind)
        return {
            obj["metadata"]["uid"] for (k, _, _), obj in world.kube.objects.items() if k is wanted
        }

    return live_uids


def _reconciled_pair(world: World, memo: OperatorMemo) -> dict[str, Any]:
    reconcile(Kind.AGENT, Operation.CREATE, world.apply(agent_manifest()), memo)
    instance = world.apply(instance_manifest())
    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, instance, memo)
    return instance


def test_an_object_deleted_unseen_is_swept_from_the_mirror_and_the_process(world: World) -> None:
    memo = _memo(world)
    instance = _reconciled_pair(world, memo)
    stored = world.store.get_by_name(Kind.AGENT_INSTANCE, "team-a", INSTANCE)
    world.kube.remove(ObjectKind.AGENT_INSTANCE, "team-a", INSTANCE)  # no DELETED event

    assert sweep_gone(memo, _listing(world)) == 1

    left = [entry.metadata.name for entry in world.store.list(Kind.AGENT_INSTANCE)]
    assert left == ["support-bot-default"]  # reconciled in its Agent's run
    assert len(list(world.store.list(Kind.AGENT))) == 1
    assert world.history(Kind.AGENT_INSTANCE, stored.metadata.id) == 1  # history stays
    assert memo.coordination.outdated(instance["metadata"]["uid"], 1)  # forgotten as deleted
    assert sweep_gone(memo, _listing(world)) == 0


def test_an_object_created_after_the_listing_keeps_its_entry(world: World) -> None:
    memo = _memo(world)
    _reconciled_pair(world, memo)

    assert sweep_gone(memo, lambda kind: set()) == 0  # a listing older than every object

    assert len(list(world.store.list(Kind.AGENT_INSTANCE))) == 2  # with the default instance
    assert len(list(world.store.list(Kind.AGENT))) == 1


def test_a_default_instance_deleted_unseen_is_created_again(world: World) -> None:
    memo = _memo(world)
    reconcile(Kind.AGENT, Operation.CREATE, world.apply(agent_manifest()), memo)
    default = world.current(Kind.AGENT_INSTANCE, "support-bot-default")
    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, default, memo)
    world.kube.remove(ObjectKind.AGENT_INSTANCE, "team-a", "support-bot-default")  # no event

    assert sweep_gone(memo, _listing(world)) == 1

    again = world.current(Kind.AGENT_INSTANCE, "support-bot-default")
    assert again["metadata"]["uid"] != default["metadata"]["uid"]


def test_an_agent_deleted_unseen_lets_in_the_agent_it_kept_out(world: World) -> None:
    memo = _memo(world)
    for name in ("first-bot", "second-bot"):
        body = world.apply(agent_manifest(name, displayName="Support Bot"))
        with contextlib.suppress(kopf.PermanentError):
            reconcile(Kind.AGENT, Operation.CREATE, body, memo)
    assert memo.references.duplicates_of(("team-a", "first-bot")) == [("team-a", "second-bot")]
    world.kube.remove(ObjectKind.AGENT, "team-a", "first-bot")  # no DELETED event

    assert sweep_gone(memo, _listing(world)) >= 1

    assert world.store.get_by_name(Kind.AGENT, "team-a", "second-bot")  # accepted now
    assert memo.references.duplicates_of(("team-a", "first-bot")) == []
