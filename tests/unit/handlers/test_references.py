"""The in-process reference maps the cross-object handlers read."""

from __future__ import annotations

import threading
from typing import Any

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.references import References, Referrer
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.naming import default_instance_name


def _instance(name: str, agent: str, *, reason: str | None = None, ns: str = "team-a",
              agent_ns: str | None = None, uid: str | None = None) -> dict[str, Any]:  # fmt: skip
    ref: dict[str, str] = {"name": agent}
    if agent_ns is not None:
        ref["namespace"] = agent_ns
    metadata = {"namespace": ns, "name": name} | ({"uid": uid} if uid else {})
    body: dict[str, Any] = {"metadata": metadata, "spec": {"agentRef": ref}}
    if reason is not None:
        body["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": reason}]}
    return body


def _agent(
    name: str, *, reason: str | None = None, ns: str = "team-a", uid: str | None = None
) -> dict[str, Any]:
    metadata = {"namespace": ns, "name": name} | ({"uid": uid} if uid else {})
    body: dict[str, Any] = {"metadata": metadata, "spec": {}}
    if reason is not None:
        body["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": reason}]}
    return body


def test_an_instance_waiting_for_its_agent_is_found_until_it_is_ready() -> None:
    references = References()
    references.instance_seen(_instance("i1", "bot", reason="AgentNotFound"))
    references.instance_seen(_instance("i2", "bot"))
    references.instance_seen(_instance("i3", "other-bot", reason="AgentNotFound"))

    assert sorted(references.referrers(("team-a", "bot"))) == [
        Referrer("team-a", "i1", True),
        Referrer("team-a", "i2", False),
    ]
    references.instance_seen(_instance("i1", "bot", reason="Ready"))
    assert Referrer("team-a", "i1", False) in references.referrers(("team-a", "bot"))


def test_an_agent_ref_without_namespace_means_the_instance_s_own() -> None:
    references = References()
    references.instance_seen(_instance("i1", "bot", ns="team-b"))
    references.instance_seen(_instance("i2", "bot", ns="team-b", agent_ns="team-a"))

    assert references.referrers(("team-b", "bot")) == [Referrer("team-b", "i1", False)]
    assert references.referrers(("team-a", "bot")) == [Referrer("team-b", "i2", False)]


def test_a_deleted_instance_is_no_referrer_and_leaves_nothing_behind() -> None:
    references = References()
    references.instance_seen(_instance("i1", "bot"))
    references.instance_gone(_instance("i1", "bot"))

    assert references.referrers(("team-a", "bot")) == []
    assert references._referrers == {} and references._target == {}


def test_an_instance_whose_reference_changes_moves_to_the_new_agent() -> None:
    references = References()
    references.instance_seen(_instance("i1", "bot"))
    references.instance_seen(_instance("i1", "other-bot"))

    assert references.referrers(("team-a", "bot")) == []
    assert references.referrers(("team-a", "other-bot")) == [Referrer("team-a", "i1", False)]


def test_an_agent_blocked_by_a_squatter_is_found_by_the_squatter_s_name() -> None:
    references = References()
    squatted = ("team-a", default_instance_name("bot"))
    references.agent_seen(_agent("bot", reason="DefaultInstanceConflict"))
    references.agent_seen(_agent("fine-bot", reason="Ready"))

    assert references.blocked_by(squatted) == ["bot"]
    assert references.blocked_by(("team-a", default_instance_name("fine-bot"))) == []


def test_an_agent_that_healed_or_went_is_no_longer_blocked() -> None:
    references = References()
    squatted = ("team-a", default_instance_name("bot"))
    references.agent_seen(_agent("bot", reason="DefaultInstanceConflict"))
    references.agent_seen(_agent("bot", reason="Ready"))
    assert references.blocked_by(squatted) == []

    references.agent_seen(_agent("bot", reason="DefaultInstanceConflict"))
    references.agent_gone(_agent("bot"))
    assert references.blocked_by(squatted) == []
    assert references._blocked == {} and references._squatted == {}


def test_a_late_deletion_of_an_earlier_object_of_the_name_keeps_the_new_one_s_records() -> None:
    """kopf runs each uid on its own worker: the old object's DELETED can come last."""
    references = References()
    squatted = ("team-a", default_instance_name("bot"))
    references.agent_seen(_agent("bot", reason="DefaultInstanceConflict", uid="new"))
    references.instance_seen(_instance("i1", "bot", reason="AgentNotFound", uid="new"))
    references.instance_waiting(("team-a", "i1"), True, "new")
    refused = PipelineError(
        Reason.DUPLICATE_SLUG, "slug taken", retryable=False, blocker=("team-a", "holder")
    )
    references.outcome(Kind.AGENT, _agent("bot", uid="new"), refused)

    references.agent_gone(_agent("bot", uid="old"))
    references.instance_gone(_instance("i1", "bot", uid="old"))

    assert references.blocked_by(squatted) == ["bot"]
    assert references.referrers(("team-a", "bot")) == [Referrer("team-a", "i1", True)]
    assert references.duplicates_of(("team-a", "holder")) == [("team-a", "bot")]

    references.agent_gone(_agent("bot", uid="new"))
    references.instance_gone(_instance("i1", "bot", uid="new"))
    assert references.blocked_by(squatted) == []
    assert references.referrers(("team-a", "bot")) == []
    assert references.duplicates_of(("team-a", "holder")) == []


def test_readers_get_a_copy_while_the_event_loop_keeps_writing() -> None:
    """Sync handlers iterate while kopf's loop records other instances of the same Agent."""
    references = References()
    for k in range(200):
        references.instance_seen(_instance(f"i{k}", "bot"))
    stop = threading.Event()

    def write() -> None:
        k = 200
        while not stop.is_set():
            references.instance_seen(_instance(f"i{k}", "bot"))
            references.instance_gone(_instance(f"i{k - 100}", "bot"))
            k += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(200):
            for referrer in references.referrers(("team-a", "bot")):
                assert referrer.name.startswith("i")
    finally:
        stop.set()
        writer.join()
