"""KubeEffects semantics shared by both implementations, and the API error mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.kube import (
    AlreadyExists,
    ApiForbidden,
    ApplyResult,
    Conflict,
    EventRecord,
    EventType,
    Invalid,
    KubeEffects,
    NamespaceTerminating,
    NotFound,
    ObjectKind,
    ObjectRef,
    ServerError,
    apply_patch,
)
from stigmer_operator.pipeline.kube_api import ApiKubeEffects, translate
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects, merge_patch

OWNER = {
    "apiVersion": "agentic.stigmer.ai/v1",
    "kind": "AgentInstance",
    "name": "prod",
    "uid": "u-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def role(rules: list[dict[str, Any]], owner: dict[str, Any] | None = OWNER) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "prod-agent",
        "namespace": "team-a",
        "labels": {"app.kubernetes.io/managed-by": "stigmer-operator"},
    }
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"metadata": meta, "rules": rules}


SECRET_RULE = {
    "apiGroups": [""],
    "resources": ["secrets"],
    "verbs": ["get"],
    "resourceNames": ["a"],
}


def test_both_implementations_satisfy_the_protocol() -> None:
    assert isinstance(RecordingKubeEffects(), KubeEffects)
    assert isinstance(ApiKubeEffects.__new__(ApiKubeEffects), KubeEffects)


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (404, NotFound, False),
        (409, Conflict, True),
        (403, ApiForbidden, False),
        (401, ApiForbidden, False),
        (422, Invalid, False),
        (400, Invalid, False),
        (429, ServerError, True),
        (500, ServerError, True),
        (503, ServerError, True),
    ],
)
def test_api_status_codes_map_to_typed_errors(
    status: int, error: type[Exception], retryable: bool
) -> None:
    mapped = translate(ApiException(status=status, reason="Because"), "get agents a/b")
    assert type(mapped) is error
    assert mapped.retryable is retryable
    assert str(mapped) == f"get agents a/b: HTTP {status} Because"


def test_a_terminating_namespace_is_told_apart_from_missing_rbac() -> None:
    body = json.dumps({
        "kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": "agentinstances \"x\" is forbidden: unable to create new content in "
                   "namespace team-a because it is being terminated",
        "details": {"name": "x", "kind": "agentinstances", "causes": [{
            "reason": "NamespaceTerminating", "field": "metadata.namespace",
            "message": "namespace team-a is being terminated"}]},
    })  # fmt: skip
    mapped = translate(ApiException(status=403, reason="Forbidden"), "create x")
    assert type(mapped) is ApiForbidden
    terminating = ApiException(status=403, reason="Forbidden")
    terminating.body = body
    mapped = translate(terminating, "create agentinstances team-a/x")
    assert type(mapped) is NamespaceTerminating and isinstance(mapped, ApiForbidden)
    assert not mapped.retryable
    assert str(mapped) == (
        "create agentinstances team-a/x: HTTP 403 Forbidden: the namespace is being deleted"
    )
    for garbage in ("not json", "[1]", '{"details": "x"}', '{"details": {"causes": {}}}'):
        odd = ApiException(status=403, reason="Forbidden")
        odd.body = garbage
        assert type(translate(odd, "create x")) is ApiForbidden, garbage


def test_network_failures_are_retryable() -> None:
    mapped = translate(ConnectionResetError("reset"), "patch")
    assert isinstance(mapped, ServerError) and mapped.retryable


def test_merge_patch_follows_rfc7386() -> None:
    target: dict[str, Any] = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}
    merge_patch(target, {"a": None, "b": {"c": 4}, "l": [3], "n": {"x": 1}})
    assert target == {"b": {"c": 4, "d": 3}, "l": [3], "n": {"x": 1}}


def test_apply_patch_is_none_when_equal_modulo_api_defaults() -> None:
    existing = role([SECRET_RULE])
    existing["metadata"]["labels"]["extra"] = "kept"
    existing["rules"][0]["nonResourceURLs"] = None  # what a client may echo back
    assert apply_patch(ObjectKind.ROLE, existing, role([SECRET_RULE])) is None


def test_apply_patch_is_none_for_an_empty_role_the_api_echoes_without_rules() -> None:
    existing = role([])
    del existing["rules"]  # the API omits an empty list
    assert apply_patch(ObjectKind.ROLE, existing, role([])) is None


def test_apply_patch_replaces_rules_and_adds_missing_labels() -> None:
    existing = role([SECRET_RULE])
    existing["metadata"]["labels"] = {}
    patch = apply_patch(ObjectKind.ROLE, existing, role([]))
    assert patch == {
        "metadata": {"labels": {"app.kubernetes.io/managed-by": "stigmer-operator"}},
        "rules": [],
    }


def test_recording_apply_owned_creates_updates_and_skips() -> None:
    kube = RecordingKubeEffects()
    assert kube.apply_owned(ObjectKind.ROLE, role([SECRET_RULE])) is ApplyResult.CREATED
    assert kube.apply_owned(ObjectKind.ROLE, role([SECRET_RULE])) is ApplyResult.UNCHANGED
    assert kube.apply_owned(ObjectKind.ROLE, role([])) is ApplyResult.UPDATED
    assert kube.objects[(ObjectKind.ROLE, "team-a", "prod-agent")]["rules"] == []


def test_recording_apply_owned_refuses_objects_of_another_controller() -> None:
    kube = RecordingKubeEffects()
    kube.put(ObjectKind.ROLE, role([], owner={**OWNER, "uid": "someone-else"}))
    with pytest.raises(AlreadyExists, match="controlled by AgentInstance prod") as caught:
        kube.apply_owned(ObjectKind.ROLE, role([SECRET_RULE]))
    assert caught.value.existing["metadata"]["ownerReferences"][0]["uid"] == "someone-else"


def test_recording_delete_removes_only_the_object_of_that_uid() -> None:
    kube = RecordingKubeEffects()
    uid = kube.put(ObjectKind.ROLE, role([]))["metadata"]["uid"]
    with pytest.raises(Conflict) as caught:
        kube.delete(ObjectKind.ROLE, "team-a", "prod-agent", uid="another-uid")
    assert caught.value.retryable
    assert (ObjectKind.ROLE, "team-a", "prod-agent") in kube.objects
    kube.delete(ObjectKind.ROLE, "team-a", "prod-agent", uid=uid)
    assert (ObjectKind.ROLE, "team-a", "prod-agent") not in kube.objects
    kube.delete(ObjectKind.ROLE, "team-a", "prod-agent", uid=uid)  # gone already: done


def test_recording_apply_owned_refuses_unmanaged_objects_and_adopts_its_own() -> None:
    kube = RecordingKubeEffects()
    human = role([], owner=None)
    human["metadata"]["labels"] = {}
    kube.put(ObjectKind.ROLE, human)
    with pytest.raises(AlreadyExists, match="not managed by stigmer-operator"):
        kube.apply_owned(ObjectKind.ROLE, role([SECRET_RULE]))
    kube.put(ObjectKind.ROLE, role([], owner=None))  # ours, lost its ownerReference
    assert kube.apply_owned(ObjectKind.ROLE, role([SECRET_RULE])) is ApplyResult.UPDATED
    refs = kube.objects[(ObjectKind.ROLE, "team-a", "prod-agent")]["metadata"]["ownerReferences"]
    assert refs == [OWNER]


def test_recording_create_agent_instance_raises_already_exists_with_the_object() -> None:
    kube = RecordingKubeEffects()
    body = {"metadata": {"name": "x", "namespace": "n"}, "spec": {}}
    created = kube.create_agent_instance(body)
    assert created["metadata"]["uid"]
    with pytest.raises(AlreadyExists) as caught:
        kube.create_agent_instance(body)
    assert caught.value.existing["metadata"]["uid"] == created["metadata"]["uid"]


def test_recording_patch_status_merges_and_404s() -> None:
    kube = RecordingKubeEffects()
    kube.put(ObjectKind.AGENT, {"metadata": {"name": "a", "namespace": "n"}, "status": {"x": 1}})
    kube.patch_status(Kind.AGENT, "n", "a", {"y": 2, "x": None})
    assert kube.objects[(ObjectKind.AGENT, "n", "a")]["status"] == {"y": 2}
    with pytest.raises(NotFound):
        kube.patch_status(Kind.AGENT, "n", "missing", {})


def test_recording_events_are_deduplicated_by_name() -> None:
    kube = RecordingKubeEffects()
    event = EventRecord(
        "a.1", ObjectRef("v1", "Agent", "n", "a", "u"), EventType.NORMAL, "Created", "m"
    )
    assert kube.post_event(event) is True
    assert kube.post_event(event) is False
    assert len(kube.events_for("a")) == 1


def test_fault_injection_raises_once() -> None:
    kube = RecordingKubeEffects()
    kube.fail_next("get", ServerError("503"))
    with pytest.raises(ServerError):
        kube.get(ObjectKind.AGENT, "n", "a")
    assert kube.get(ObjectKind.AGENT, "n", "a") is None
