"""Step 11, TransformResponse: camelCase status, nothing secret, truthful conditions."""

from __future__ import annotations

import json
from typing import Any

from pipeline_world import World, agent_manifest, instance_manifest, step_of

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.kube import ObjectKind

STEP = "TransformResponse"
SECRET = "s3cr3t-token-value"


def transform(
    world: World, kind: Kind, name: str, op: Operation = Operation.CREATE
) -> dict[str, Any]:
    ctx = world.run_until(STEP, kind, name, op=op)
    step_of(kind, STEP, op).run(ctx)
    return ctx.status


def test_agent_status_document(world: World) -> None:
    world.apply(agent_manifest(displayName="Support"))
    status = transform(world, Kind.AGENT, "support-bot")
    assert set(status) == {
        "observedGeneration",
        "id",
        "slug",
        "defaultInstanceId",
        "defaultInstanceName",
        "audit",
        "conditions",
    }
    assert status["observedGeneration"] == 1 and status["slug"] == "support"
    assert status["id"].startswith("agt-") and status["defaultInstanceId"].startswith("ain-")
    assert status["audit"] == {
        "createdAt": "2026-01-18T19:41:31Z",
        "updatedAt": "2026-01-18T19:41:31Z",
        "event": "created",
    }
    ready, accepted, reconciling = status["conditions"]
    assert (reconciling["type"], reconciling["reason"]) == ("Reconciling", ready["reason"])
    assert (ready["type"], ready["status"], ready["reason"]) == (
        "Ready",
        "False",
        "DefaultInstanceNotReady",
    )
    assert "team-a/support-bot-default" in ready["message"]
    assert (accepted["type"], accepted["status"], accepted["reason"]) == (
        "Accepted",
        "True",
        "Accepted",
    )
    assert ready["observedGeneration"] == accepted["observedGeneration"] == 1


def test_agent_is_ready_once_its_default_instance_is(world: World) -> None:
    world.agent()
    world.mark_ready(Kind.AGENT_INSTANCE, "support-bot-default")
    status = transform(world, Kind.AGENT, "support-bot", Operation.RESUME)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Ready")


def test_instance_status_document(world: World) -> None:
    world.agent()
    world.apply(instance_manifest())
    status = transform(world, Kind.AGENT_INSTANCE, "support-bot-prod")
    agent = world.current(Kind.AGENT, "support-bot")
    assert status["agentId"] == agent["status"]["id"]
    assert status["serviceAccountName"] == "support-bot-prod-agent"
    assert [c["status"] for c in status["conditions"]] == ["True", "True"]


def test_nothing_secret_reaches_the_status(world: World) -> None:
    server = {
        "name": "api",
        "http": {
            "url": "https://mcp.example.com",
            "headers": {"Authorization": f"Bearer {SECRET}"},
            "queryParams": {"key": SECRET},
        },
    }
    world.apply(agent_manifest(mcpServers=[server], instructions=f"Use {SECRET} wisely, always."))
    status = transform(world, Kind.AGENT, "support-bot")
    text = json.dumps(status)
    assert SECRET not in text and "Authorization" not in text and "instructions" not in text


def test_conditions_keep_transition_times_and_foreign_conditions(world: World) -> None:
    world.agent()
    before = world.current(Kind.AGENT, "support-bot")["status"]["conditions"]
    world.clock.advance(600)
    agent = world.kube.objects[(ObjectKind.AGENT, "team-a", "support-bot")]
    agent["status"]["conditions"].append({"type": "Custom", "status": "True"})
    status = transform(world, Kind.AGENT, "support-bot", Operation.RESUME)
    times = {c["type"]: c.get("lastTransitionTime") for c in status["conditions"]}
    assert times["Ready"] == times["Accepted"] == before[0]["lastTransitionTime"]
    assert "Custom" in times
