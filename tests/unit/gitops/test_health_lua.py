"""The Argo CD health check (deploy/argocd/health.lua), run in a real Lua VM.

Argo CD evaluates health checks with gopher-lua, a Lua 5.1 implementation, so
the script runs here in lupa's Lua 5.1 runtime with the same contract: the
live object is the global ``obj`` and the chunk returns ``{status, message}``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lupa import lua51

from stigmer_operator.pipeline.conditions import failed, succeeded
from stigmer_operator.pipeline.errors import PipelineError, Reason

REPO_ROOT = Path(__file__).resolve().parents[3]
HEALTH_LUA = REPO_ROOT / "deploy" / "argocd" / "health.lua"


def _to_lua(runtime: Any, value: Any) -> Any:
    """Convert JSON-like Python data into Lua tables (lists become 1-based arrays)."""
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """Run the health check on ``obj`` in a fresh Lua VM; return (status, message)."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(HEALTH_LUA.read_text())
    return str(result["status"]), str(result["message"])


def _condition(
    type_: str,
    status: str,
    reason: str,
    message: str = "",
    observed_generation: int | None = 3,
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    if observed_generation is not None:
        cond["observedGeneration"] = observed_generation
    return cond


def _agent(
    *,
    kind: str = "Agent",
    generation: int = 3,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": kind,
        "metadata": {"name": "support-bot", "namespace": "team-a", "generation": generation},
        "spec": {"instructions": "Answer support questions politely."},
    }
    if status is not None:
        obj["status"] = status
    return obj


def _ready(
    status: str,
    reason: str,
    message: str = "",
    *,
    observed: int = 3,
    condition_observed: int | None = 3,
    kind: str = "Agent",
) -> dict[str, Any]:
    return _agent(
        kind=kind,
        status={
            "observedGeneration": observed,
            "conditions": [
                _condition("Accepted", "True", "Accepted", observed_generation=condition_observed),
                _condition("Ready", status, reason, message, condition_observed),
            ],
        },
    )


@pytest.mark.parametrize("kind", ["Agent", "AgentInstance"])
def test_ready_at_current_generation_is_healthy(kind: str) -> None:
    status, message = health(_ready("True", "Ready", "Default instance ready", kind=kind))
    assert status == "Healthy"
    assert "Default instance ready" in message


def test_missing_status_is_progressing() -> None:
    status, message = health(_agent(status=None))
    assert status == "Progressing"
    assert "status" in message


def test_status_without_conditions_is_progressing() -> None:
    status, message = health(_agent(status={"observedGeneration": 3}))
    assert (status, message) == ("Progressing", "Waiting for the Ready condition")


def test_ready_unknown_is_progressing() -> None:
    status, _ = health(_ready("Unknown", "Reconciling", "Running the pipeline"))
    assert status == "Progressing"


def test_observed_generation_behind_is_progressing_even_if_ready() -> None:
    status, message = health(_ready("True", "Ready", observed=2, condition_observed=2))
    assert status == "Progressing"
    assert "generation 3" in message


def test_missing_observed_generation_is_progressing() -> None:
    obj = _ready("True", "Ready")
    del obj["status"]["observedGeneration"]
    status, _ = health(obj)
    assert status == "Progressing"


def test_condition_observed_generation_behind_is_progressing() -> None:
    # Top-level status is current, but the Ready condition is stale.
    status, message = health(_ready("True", "Ready", observed=3, condition_observed=2))
    assert status == "Progressing"
    assert "from generation 2" in message


def test_condition_without_observed_generation_uses_top_level() -> None:
    status, _ = health(_ready("True", "Ready", condition_observed=None))
    assert status == "Healthy"


#: Refusals that only a spec change can fix. AgentNotFound is a refusal too,
#: but the instance is re-run as soon as its Agent appears (GitOps applies both
#: together), so it is Progressing, not Degraded.
#: Ready=False reasons that need someone to act: refusals of the object, and
#: another object standing in its way (both Degraded in Argo CD).
PERMANENT = sorted(
    r.value
    for r in Reason
    if (r.refuses_object or r.blocked_by_another_object) and r is not Reason.AGENT_NOT_FOUND
)


def test_permanent_reasons_are_the_operators_refusals() -> None:
    assert {
        "ValidationFailed",
        "Forbidden",
        "DuplicateSlug",
        "IamConflict",
        "DefaultInstanceConflict",
    } <= set(PERMANENT)


@pytest.mark.parametrize("reason", PERMANENT)
def test_ready_false_with_permanent_reason_is_degraded_with_message(reason: str) -> None:
    message = f"spec.instructions: refused because {reason}"
    status, text = health(_ready("False", reason, message))
    assert status == "Degraded"
    assert text == f"{reason}: {message}"


@pytest.mark.parametrize(
    "reason",
    sorted(r.value for r in Reason if not (r.refuses_object or r.blocked_by_another_object)),
)
def test_infrastructure_trouble_is_progressing(reason: str) -> None:
    # The operator reports store/API/internal errors as Ready=Unknown and retries.
    status, text = health(_ready("Unknown", reason, "the API server is unavailable"))
    assert status == "Progressing"
    assert reason in text


@pytest.mark.parametrize(
    "reason",
    ["TemporaryError", "Retrying", "Reconciling", "WaitingForAgent", "Pending", "AgentNotFound"],
)
def test_ready_false_with_transient_reason_is_progressing(reason: str) -> None:
    status, text = health(_ready("False", reason, "the API server is unavailable, retrying"))
    assert status == "Progressing"
    assert "retrying" in text


def test_degraded_agent_instance() -> None:
    obj = _ready(
        "False",
        "Forbidden",
        "Agent team-b/helper is not shared with org team-a",
        kind="AgentInstance",
    )
    status, text = health(obj)
    assert status == "Degraded"
    assert "not shared" in text


def test_stale_failure_after_spec_fix_is_progressing() -> None:
    # The user fixed the spec (generation 4); the Ready=False is about generation 3.
    obj = _ready("False", "ValidationFailed", "spec.instructions: too short")
    obj["metadata"]["generation"] = 4
    status, _ = health(obj)
    assert status == "Progressing"


def test_object_being_deleted_is_progressing() -> None:
    obj = _ready("True", "Ready")
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status, message = health(obj)
    assert (status, message) == ("Progressing", "Being deleted")


def test_ready_condition_is_found_among_others() -> None:
    obj = _ready("True", "Ready", "ok")
    conditions = obj["status"]["conditions"]
    conditions.insert(0, _condition("Accepted", "True", "Accepted"))
    obj2 = copy.deepcopy(obj)
    obj2["status"]["conditions"] = list(reversed(conditions))
    assert health(obj)[0] == "Healthy"
    assert health(obj2)[0] == "Healthy"


def test_script_runs_in_lua_5_1_semantics() -> None:
    # gopher-lua (Argo CD) is Lua 5.1: the VM used here must be too.
    runtime = lua51.LuaRuntime()
    assert runtime.lua_version == (5, 1)


# -- kstatus conditions, as the operator's builders write them ----------------


def _with_conditions(conditions: list[dict[str, Any]], generation: int = 3) -> dict[str, Any]:
    status = {"observedGeneration": generation, "conditions": conditions}
    return _agent(generation=generation, status=status)


def test_stalled_is_degraded_with_its_message() -> None:
    stalled = _condition("Stalled", "True", "DuplicateSlug", "slug 'bot' is already used")
    obj = _with_conditions([_condition("Ready", "Unknown", "Reconciling"), stalled])
    assert health(obj) == ("Degraded", "DuplicateSlug: slug 'bot' is already used")


def test_reconciling_is_progressing_even_with_ready_false() -> None:
    reconciling = _condition("Reconciling", "True", "DefaultInstanceNotReady", "not Ready yet")
    obj = _with_conditions([_condition("Ready", "False", "DefaultInstanceNotReady"), reconciling])
    assert health(obj) == ("Progressing", "DefaultInstanceNotReady: not Ready yet")


@pytest.mark.parametrize("retryable", [False, True])
@pytest.mark.parametrize("reason", list(Reason))
def test_the_operators_failure_conditions_read_as_kstatus_would(
    reason: Reason, retryable: bool
) -> None:
    """Degraded exactly when the operator says Stalled (kstatus: Failed)."""
    error = PipelineError(reason, "it went wrong", retryable=retryable, step="Step")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    obj = _with_conditions(failed([], error, 3, now))
    expected = "Degraded" if error.stalls else "Progressing"
    assert health(obj) == (expected, f"{reason.value}: Step: it went wrong")


def test_the_operators_success_conditions_are_healthy() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    waiting = succeeded([], "Agent", 3, now, not_ready_instance="team-a/bot-default")
    assert health(_with_conditions(waiting))[0] == "Progressing"
    assert health(_with_conditions(succeeded(waiting, "Agent", 3, now)))[0] == "Healthy"
