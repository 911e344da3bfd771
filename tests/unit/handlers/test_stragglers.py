"""The periodic sweep re-runs an object whose status lags its generation for a whole interval."""

from __future__ import annotations

from pipeline_world import World, agent_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.common import reconcile
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.stragglers import Stragglers, lags
from stigmer_operator.pipeline.context import Operation


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
