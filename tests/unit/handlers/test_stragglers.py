"""The periodic sweep re-runs an object left behind for a whole interval.

Left behind: its status lags its generation, or it is an Agent refused with
DuplicateSlug that no holder would wake (this process has no record of it).
"""

from __future__ import annotations

import contextlib

import kopf
import kubernetes
from pipeline_world import World, agent_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.agent import agent_deleted
from stigmer_operator.handlers.common import reconcile
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.references import ready_reason
from stigmer_operator.handlers.retries import Retries
from stigmer_operator.handlers.stragglers import Stragglers, lags
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.settings import OperatorSettings


def _listed(world: World) -> dict[Kind, list[dict[str, object]]]:
    return {Kind.AGENT: [world.current(Kind.AGENT, "support-bot")], Kind.AGENT_INSTANCE: []}


def test_an_object_left_behind_is_rerun_at_the_second_sweep(
    world: World, memo: OperatorMemo
) -> None:
    world.apply(agent_manifest())  # its run was lost: no status at all
    stragglers = Stragglers()

    assert stragglers.check(memo, _listed(world)) == 0, "one sweep is not yet an interval"
    assert stragglers.check(memo, _listed(world)) == 1

    assert not lags(world.current(Kind.AGENT, "support-bot"))
    assert world.store.get_by_name(Kind.AGENT, "team-a", "support-bot")


def test_an_object_that_changed_meanwhile_is_left_to_its_own_run(
    world: World, memo: OperatorMemo
) -> None:
    world.apply(agent_manifest())
    stragglers = Stragglers()
    stragglers.check(memo, _listed(world))

    world.edit_spec(Kind.AGENT, "support-bot", description="edited")
    world.apply(world.current(Kind.AGENT, "support-bot"))  # a new resourceVersion

    assert stragglers.check(memo, _listed(world)) == 0
    assert lags(world.current(Kind.AGENT, "support-bot"))


def test_a_reconciled_object_is_not_rerun(world: World, memo: OperatorMemo) -> None:
    reconcile(Kind.AGENT, Operation.CREATE, world.apply(agent_manifest()), memo)
    stragglers = Stragglers()
    calls = len(world.kube.calls)

    assert stragglers.check(memo, _listed(world)) == 0
    assert stragglers.check(memo, _listed(world)) == 0
    assert len(world.kube.calls) == calls


def _ready_reason(world: World, name: str) -> str | None:
    return ready_reason(world.current(Kind.AGENT, name))


def test_a_duplicate_refusal_no_holder_would_wake_is_rerun_at_the_second_sweep(
    world: World, memo: OperatorMemo
) -> None:
    holder = world.apply(agent_manifest("holder", displayName="Twin"))
    reconcile(Kind.AGENT, Operation.CREATE, holder, memo)
    refused = world.apply(agent_manifest("support-bot", displayName="Twin"))
    with contextlib.suppress(kopf.PermanentError):
        reconcile(Kind.AGENT, Operation.CREATE, refused, memo)
    assert _ready_reason(world, "support-bot") == "DuplicateSlug"
    assert Stragglers().check(memo, _listed(world)) == 0, "recorded: its holder wakes it"

    # A process without the record (as if it had been lost): the holder's
    # deletion wakes no one.
    restarted = OperatorMemo(
        world.deps, OperatorSettings(), kubernetes.client.ApiClient(),
        retries=Retries(autostart=False),
    )  # fmt: skip
    world.kube.remove(ObjectKind.AGENT, "team-a", "holder")
    agent_deleted(body=kopf.Body(holder), memo=restarted)
    assert _ready_reason(world, "support-bot") == "DuplicateSlug"

    stragglers = Stragglers()
    assert stragglers.check(restarted, _listed(world)) == 0, "one sweep is not yet an interval"
    assert stragglers.check(restarted, _listed(world)) == 1
    assert _ready_reason(world, "support-bot") != "DuplicateSlug"
