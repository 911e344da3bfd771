"""kopf's diff-base annotation: a digest of the spec, and kopf still sees every change."""

from __future__ import annotations

import hashlib
import json
import logging
from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from stigmer_operator.api.kinds import GROUP
from stigmer_operator.handlers import startup
from stigmer_operator.handlers.startup import SpecDigestDiffBaseStorage

KEY = "last-handled-configuration"


def _agent(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Agent",
        "metadata": {
            "name": "support-bot",
            "namespace": "team-a",
            "uid": "u-1",
            "resourceVersion": "1",
            "labels": {"team": "a"},
            "annotations": {"note": "x"},
        },
        "spec": {"instructions": "You answer questions.", "sharing": ["org-b"]},
        "status": {"id": "agt-1"},
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = body
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return body


def _essence(body: dict[str, Any]) -> kopf.BodyEssence:
    return SpecDigestDiffBaseStorage(prefix=GROUP, key=KEY).build(body=kopf.Body(body))


@pytest.mark.parametrize(
    ("after", "changed"),
    [
        (_agent(), False),
        (_agent(spec={"sharing": ["org-b"], "instructions": "You answer questions."}), False),
        (_agent(spec__instructions="You answer questions in French."), True),
        (_agent(spec__sharing=[]), True),
        (_agent(metadata__labels={"team": "b"}), True),
        (_agent(metadata__annotations={"note": "y"}), True),
        (_agent(metadata__resourceVersion="2"), False),
        (_agent(status={"id": "agt-1", "slug": "support-bot"}), False),
        (_agent(metadata__annotations={"note": "x", f"{GROUP}/{KEY}": "{}"}), False),
    ],
    ids=[
        "same object",
        "spec keys reordered",
        "instructions edited",
        "sharing edited",
        "label edited",
        "annotation edited",
        "new resourceVersion",
        "status written",
        "kopf's own annotation",
    ],
)
def test_kopf_sees_a_change_exactly_when_spec_labels_or_annotations_change(
    after: dict[str, Any], changed: bool
) -> None:
    assert (_essence(_agent()) != _essence(after)) is changed


def test_the_longest_allowed_instructions_fit_in_an_annotation() -> None:
    essence = _essence(_agent(spec__instructions="x" * 1_000_000))
    assert len(json.dumps(essence)) < 1_000
    assert "x" * 100 not in json.dumps(essence)


def test_an_object_without_spec_keeps_kopf_s_essence() -> None:
    body = _agent()
    del body["spec"]
    assert _essence(body) == {"metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}}}


class _NotCopied:
    """A value kopf's essence has no use for: copying it fails the test."""

    def __deepcopy__(self, memo: object) -> _NotCopied:
        raise AssertionError("copied a part of the body the essence drops")


class _NotCopiedText(str):
    """Text of the spec: hashed, but copying it fails the test."""

    def __deepcopy__(self, memo: object) -> _NotCopiedText:
        raise AssertionError("copied the spec, which the essence keeps as a digest")


def test_the_essence_is_kopf_s_own_without_copying_status_managed_fields_or_spec() -> None:
    owner = {"apiVersion": f"{GROUP}/v1", "kind": "Agent", "name": "a", "uid": "u-0"}
    annotations = {
        "note": "x",
        f"{GROUP}/{KEY}": "{}",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    body = _agent(
        metadata__annotations=annotations,
        metadata__ownerReferences=[owner],
        metadata__finalizers=["f"],
    )
    storage = SpecDigestDiffBaseStorage(prefix=GROUP, key=KEY)
    kopf_s = kopf.AnnotationsDiffBaseStorage.build(storage, body=kopf.Body(body))
    body["metadata"]["managedFields"] = [{"fieldsV1": _NotCopied()}]
    body["status"] = {"conditions": [_NotCopied()]}
    body["spec"]["instructions"] = _NotCopiedText(body["spec"]["instructions"])

    ours = storage.build(body=kopf.Body(body))

    canonical = json.dumps(kopf_s["spec"], sort_keys=True, separators=(",", ":"))
    assert ours["spec"] == {"sha256": hashlib.sha256(canonical.encode()).hexdigest()}
    assert {**ours, "spec": None} == {**kopf_s, "spec": None}
    assert ours["metadata"] == {"labels": {"team": "a"}, "annotations": {"note": "x"}}


def test_a_failing_start_up_sweep_is_tried_again_with_a_growing_delay(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes: list[int | Exception] = [OSError("API down"), OSError("API down"), 3]
    slept: list[float] = []

    def sweep(memo: Any, live_uids: Any) -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(startup, "sweep_gone", sweep)
    monkeypatch.setattr(startup.time, "sleep", slept.append)
    with caplog.at_level(logging.INFO, logger=startup.__name__):
        memo = SimpleNamespace(first_listings=None)  # the sweep lists
        startup._sweep_at_start_then_every(memo=memo, interval=0)  # type: ignore[arg-type]

    assert slept == [startup.START_RETRY_SECONDS, 2 * startup.START_RETRY_SECONDS]
    assert "start-up sweep failed (API down); trying again in 10 s" in caplog.text
    assert (
        "start-up sweep removed 3 mirror entries without an object (compared with a listing "
        "of its own)"
    ) in caplog.text
    assert not outcomes
