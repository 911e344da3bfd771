"""An Agent refused with DuplicateSlug is re-run once the slug's holder lets go of it.

Three ways it could be missed: the holder's edit is itself refused (the
holder leaves the mirror and frees the slug, but only a successful edit
woke anyone); the holder lets go while the refused Agent's verdict is not
yet recorded (the holder wakes the Agents it knows of, which do not include
this one yet); and an earlier Agent of the refused one's name is deleted,
its DELETED event handled only after the refusal (it took the refusal's
record with it).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kopf
import pytest
from pipeline_world import World, agent_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.agent import agent_created, agent_event, agent_updated
from stigmer_operator.handlers.common import rerun
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.references import name_of
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.errors import PipelineError
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.meta import conditions_of

HOLDER, LATE = "first-bot", "second-bot"


def _reason(world: World, name: str) -> str | None:
    ready = find_condition(conditions_of(world.current(Kind.AGENT, name)), ConditionType.READY)
    return (ready or {}).get("reason")


def _create(world: World, memo: OperatorMemo, name: str) -> None:
    body = world.apply(agent_manifest(name, displayName="Support Bot"))
    with contextlib.suppress(kopf.PermanentError):  # a refusal: status says which
        agent_created(body=body, memo=memo, retry=0)


def _deleted(world: World, memo: OperatorMemo, body: dict[str, Any]) -> None:
    """The object is gone and its DELETED event reaches the operator."""
    key = (ObjectKind.AGENT, "team-a", body["metadata"]["name"])
    if world.kube.objects.get(key, {}).get("metadata", {}).get("uid") == body["metadata"]["uid"]:
        del world.kube.objects[key]
    event: kopf.RawEvent = {"type": "DELETED", "object": body}
    asyncio.run(agent_event(event, memo))


def _update(world: World, memo: OperatorMemo, name: str) -> None:
    with contextlib.suppress(kopf.PermanentError):
        agent_updated(body=world.current(Kind.AGENT, name), memo=memo, retry=0)


def test_a_refused_edit_of_the_holder_wakes_the_agent_it_kept_out(
    world: World, memo: OperatorMemo
) -> None:
    _create(world, memo, HOLDER)
    _create(world, memo, LATE)
    assert _reason(world, LATE) == "DuplicateSlug"

    world.edit_spec(Kind.AGENT, HOLDER, instructions="")  # refused: leaves the mirror
    _update(world, memo, HOLDER)

    assert _reason(world, HOLDER) == "ValidationFailed"
    assert _reason(world, LATE) != "DuplicateSlug"
    assert memo.references.duplicates_of(("team-a", HOLDER)) == []


def test_a_holder_letting_go_before_the_refusal_is_recorded_still_frees_it(
    world: World, memo: OperatorMemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    _create(world, memo, HOLDER)
    record = memo.references.outcome

    def holder_renames_first(kind: Kind, body: Any, error: PipelineError | None) -> None:
        if name_of(body) == ("team-a", LATE):
            monkeypatch.undo()  # once
            world.edit_spec(Kind.AGENT, HOLDER, displayName="Other Bot")
            _update(world, memo, HOLDER)  # wakes the refusals it knows of: none yet
        record(kind, body, error)

    monkeypatch.setattr(memo.references, "outcome", holder_renames_first)
    _create(world, memo, LATE)
    assert _reason(world, LATE) == "DuplicateSlug"

    assert memo.retries.run_due() == 1, "the refusal re-checked the slug and found it free"
    assert _reason(world, LATE) != "DuplicateSlug"
    assert _reason(world, HOLDER) != "DuplicateSlug"


def test_a_refusal_whose_holder_keeps_the_slug_is_not_rerun(
    world: World, memo: OperatorMemo
) -> None:
    _create(world, memo, HOLDER)
    _create(world, memo, LATE)

    assert memo.retries.pending() == []
    assert _reason(world, LATE) == "DuplicateSlug"


def test_a_holder_refused_in_a_rerun_started_elsewhere_lets_in_the_agent_it_kept_out(
    world: World, memo: OperatorMemo
) -> None:
    _create(world, memo, HOLDER)
    _create(world, memo, LATE)
    world.edit_spec(Kind.AGENT, HOLDER, instructions="")  # refused when next run

    rerun(Kind.AGENT, "team-a", HOLDER, memo)  # e.g. its instance's readiness flipped

    assert _reason(world, HOLDER) == "ValidationFailed"
    assert memo.retries.run_due() >= 1
    assert _reason(world, LATE) != "DuplicateSlug"


def test_a_late_deletion_of_an_earlier_agent_of_the_name_keeps_the_refusal_s_wake_up(
    world: World, memo: OperatorMemo
) -> None:
    _create(world, memo, HOLDER)
    earlier = world.apply(agent_manifest(LATE, displayName="Support Bot"))
    world.kube.objects.pop((ObjectKind.AGENT, "team-a", LATE))  # deleted before it ran
    _create(world, memo, LATE)  # applied again: a new uid, refused
    assert world.current(Kind.AGENT, LATE)["metadata"]["uid"] != earlier["metadata"]["uid"]
    assert _reason(world, LATE) == "DuplicateSlug"

    _deleted(world, memo, earlier)  # kopf handles the earlier uid's event only now
    assert memo.references.duplicates_of(("team-a", HOLDER)) == [("team-a", LATE)]

    _deleted(world, memo, world.current(Kind.AGENT, HOLDER))
    assert _reason(world, LATE) != "DuplicateSlug"
