"""Two objects with one display name, reconciled at the same time: one is accepted.

CheckDuplicate reads the slug index, Persist writes it later. The store here
makes both runs read the index at the same moment if they can (a barrier):
without a critical section around check and write, both find the slug free.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from pipeline_world import World, agent_manifest

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.pipelines import run
from stigmer_operator.store.memory import MemoryStore


class RendezvousStore(MemoryStore):
    """A MemoryStore whose slug look-ups wait (briefly) for each other."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2)

    def get_by_slug(self, kind: Kind, org: str, slug: str) -> Resource:
        # Broken: the other run could not get here meanwhile (it waits for the slug's lock).
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=1.0)
        return super().get_by_slug(kind, org, slug)


def test_one_of_two_agents_with_one_display_name_applied_together_is_refused(
    world: World,
) -> None:
    world.store = store = RendezvousStore()
    world.restart()
    bodies = [world.apply(agent_manifest(name, displayName="Twin")) for name in ("one", "two")]
    outcomes: dict[str, Any] = {}

    def reconcile(body: dict[str, Any]) -> None:
        try:
            run(Kind.AGENT, Operation.CREATE, body, world.deps)
            outcomes[body["metadata"]["name"]] = "accepted"
        except PipelineError as error:
            outcomes[body["metadata"]["name"]] = error.reason

    threads = [threading.Thread(target=reconcile, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(map(str, outcomes.values())) == sorted(["accepted", Reason.DUPLICATE_SLUG])
    assert [a.metadata.name for a in store.list(Kind.AGENT)] == [
        name for name, outcome in outcomes.items() if outcome == "accepted"
    ]
    assert len(world.deps.slug_locks) == 0, "locks are dropped when the runs end"
