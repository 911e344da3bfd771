"""ApiKubeEffects and the pipelines against a real kube-apiserver (marked e2e).

``RecordingKubeEffects`` only mimics the API; these tests hold the production
implementation to the real thing: merge patches on ``/status``, 409 ->
AlreadyExists with the existing object, Event de-duplication by name,
create-or-update of RBAC objects with the operator's ``fieldManager``, and a
whole agent-create + agentinstance-create whose children the API accepts.
They use the session control plane of ``tests/conftest.py`` and play the
operator themselves: no operator process runs for them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import kubernetes
import pytest

from stigmer_operator.api.kinds import GROUP, VERSION, Kind
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.deps import Deps, PipelineSettings
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.kube import (
    AlreadyExists,
    ApplyResult,
    Conflict,
    EventRecord,
    EventType,
    NamespaceTerminating,
    NotFound,
    ObjectKind,
    ObjectRef,
)
from stigmer_operator.pipeline.kube_api import ApiKubeEffects
from stigmer_operator.pipeline.pipelines import run
from stigmer_operator.store.memory import MemoryStore
from tests.e2e.helpers import Cluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def namespace(private_namespace: str) -> str:
    """A ``p-*`` namespace: the e2e session's shared operator watches ``t-*``, and
    these tests play the operator themselves, so nothing else may write here."""
    return private_namespace


@pytest.fixture
def effects(kube_api: kubernetes.client.ApiClient) -> ApiKubeEffects:
    return ApiKubeEffects(kube_api, field_manager="stigmer-operator", reporting_instance="test")


@pytest.fixture
def custom(kube_api: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube_api)


@pytest.fixture
def agent(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return cluster.create_agent(namespace, "support-bot")


def role_body(namespace: str, owner_uid: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": "prod-agent",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "stigmer-operator"},
            "ownerReferences": [
                {
                    "apiVersion": "agentic.stigmer.ai/v1",
                    "kind": "Agent",
                    "name": "support-bot",
                    "uid": owner_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "rules": rules,
    }


def test_get_returns_dicts_or_none(
    effects: ApiKubeEffects, agent: dict[str, Any], namespace: str
) -> None:
    found = effects.get(ObjectKind.AGENT, namespace, "support-bot")
    assert found is not None and found["metadata"]["uid"] == agent["metadata"]["uid"]
    assert effects.get(ObjectKind.AGENT, namespace, "absent") is None
    assert effects.get(ObjectKind.SERVICE_ACCOUNT, namespace, "absent") is None


def test_create_agent_instance_then_already_exists(effects: ApiKubeEffects, namespace: str) -> None:
    body = {
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "AgentInstance",
        "metadata": {"name": "x-default", "namespace": namespace},
        "spec": {"agentRef": {"name": "x"}},
    }
    created = effects.create_agent_instance(body)
    with pytest.raises(AlreadyExists) as caught:
        effects.create_agent_instance(body)
    assert caught.value.existing["metadata"]["uid"] == created["metadata"]["uid"]


def test_patch_status_merges_on_the_subresource(
    effects: ApiKubeEffects,
    custom: kubernetes.client.CustomObjectsApi,
    agent: dict[str, Any],
    namespace: str,
) -> None:
    effects.patch_status(Kind.AGENT, namespace, "support-bot", {"id": "agt-1", "slug": "s"})
    effects.patch_status(
        Kind.AGENT, namespace, "support-bot", {"slug": None, "observedGeneration": 1}
    )
    current = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "agents", "support-bot"
    )
    assert current["status"] == {"id": "agt-1", "observedGeneration": 1}
    assert current["spec"] == agent["spec"]  # the status subresource never touches spec
    managers = {m["manager"] for m in current["metadata"]["managedFields"]}
    assert "stigmer-operator" in managers
    with pytest.raises(NotFound):
        effects.patch_status(Kind.AGENT, namespace, "absent", {"id": "x"})


def test_events_are_posted_once_per_name(
    effects: ApiKubeEffects, kube_api: kubernetes.client.ApiClient, agent: dict[str, Any]
) -> None:
    meta = agent["metadata"]
    involved = ObjectRef(
        "agentic.stigmer.ai/v1", "Agent", meta["namespace"], meta["name"], meta["uid"]
    )
    event = EventRecord("support-bot.0123456789abcdef", involved, EventType.NORMAL, "Created", "m")
    assert effects.post_event(event) is True
    assert effects.post_event(event) is False
    core = kubernetes.client.CoreV1Api(kube_api)
    stored = core.read_namespaced_event(event.name, meta["namespace"])
    assert stored.reporting_component == "stigmer-operator"
    assert stored.involved_object.uid == meta["uid"] and stored.reason == "Created"


def test_apply_owned_creates_skips_updates_and_refuses_foreign(
    effects: ApiKubeEffects, agent: dict[str, Any], namespace: str
) -> None:
    uid = agent["metadata"]["uid"]
    secret_rule = {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get"],
        "resourceNames": ["api-key"],
    }
    assert effects.apply_owned(ObjectKind.ROLE, role_body(namespace, uid, [secret_rule])) is (
        ApplyResult.CREATED
    )
    assert effects.apply_owned(ObjectKind.ROLE, role_body(namespace, uid, [secret_rule])) is (
        ApplyResult.UNCHANGED
    )
    assert effects.apply_owned(ObjectKind.ROLE, role_body(namespace, uid, [])) is (
        ApplyResult.UPDATED
    )
    role = effects.get(ObjectKind.ROLE, namespace, "prod-agent")
    assert role is not None and not role.get("rules")
    with pytest.raises(AlreadyExists, match="controlled by Agent support-bot"):
        effects.apply_owned(ObjectKind.ROLE, role_body(namespace, "another-uid", []))


def test_delete_removes_only_the_object_of_that_uid(
    effects: ApiKubeEffects, agent: dict[str, Any], namespace: str
) -> None:
    """The uid is a precondition the API server checks: a newer namesake survives."""
    effects.apply_owned(ObjectKind.ROLE, role_body(namespace, agent["metadata"]["uid"], []))
    role = effects.get(ObjectKind.ROLE, namespace, "prod-agent")
    assert role is not None
    with pytest.raises(Conflict) as caught:
        effects.delete(ObjectKind.ROLE, namespace, "prod-agent", uid=str(uuid.uuid4()))
    assert caught.value.retryable
    assert effects.get(ObjectKind.ROLE, namespace, "prod-agent") is not None
    effects.delete(ObjectKind.ROLE, namespace, "prod-agent", uid=role["metadata"]["uid"])
    assert effects.get(ObjectKind.ROLE, namespace, "prod-agent") is None
    effects.delete(ObjectKind.ROLE, namespace, "prod-agent", uid=role["metadata"]["uid"])


@pytest.mark.parametrize("likely_absent", [False, True])
def test_apply_owned_outcomes_do_not_depend_on_the_guess(
    effects: ApiKubeEffects, agent: dict[str, Any], namespace: str, likely_absent: bool
) -> None:
    """Create-first (a just-created owner) and read-first end in the same objects."""
    uid = agent["metadata"]["uid"]

    def apply(owner: str, rules: list[dict[str, Any]]) -> ApplyResult:
        body = role_body(namespace, owner, rules)
        return effects.apply_owned(ObjectKind.ROLE, body, likely_absent=likely_absent)

    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    assert apply(uid, [rule]) is ApplyResult.CREATED
    assert apply(uid, [rule]) is ApplyResult.UNCHANGED
    assert apply(uid, []) is ApplyResult.UPDATED
    role = effects.get(ObjectKind.ROLE, namespace, "prod-agent")
    assert role is not None and not role.get("rules")
    with pytest.raises(AlreadyExists, match="controlled by Agent support-bot"):
        apply("another-uid", [rule])
    role = effects.get(ObjectKind.ROLE, namespace, "prod-agent")
    assert role is not None and not role.get("rules")


def test_pipelines_against_the_real_api(
    effects: ApiKubeEffects, agent: dict[str, Any], namespace: str
) -> None:
    deps = Deps(MemoryStore(), effects, PipelineSettings(reporting_instance="test"))
    run(Kind.AGENT, Operation.CREATE, agent, deps)
    instance = effects.get(ObjectKind.AGENT_INSTANCE, namespace, "support-bot-default")
    assert instance is not None
    assert instance["metadata"]["ownerReferences"][0]["uid"] == agent["metadata"]["uid"]
    run(Kind.AGENT_INSTANCE, Operation.CREATE, instance, deps)
    for kind in (ObjectKind.SERVICE_ACCOUNT, ObjectKind.ROLE, ObjectKind.ROLE_BINDING):
        assert effects.get(kind, namespace, "support-bot-default-agent") is not None
    instance = effects.get(ObjectKind.AGENT_INSTANCE, namespace, "support-bot-default")
    assert instance is not None
    assert {c["type"]: c["status"] for c in instance["status"]["conditions"]} == {
        "Ready": "True",
        "Accepted": "True",
    }
    fresh = effects.get(ObjectKind.AGENT, namespace, "support-bot")
    assert fresh is not None
    ctx = run(Kind.AGENT, Operation.RESUME, fresh, deps)
    status = effects.get(ObjectKind.AGENT, namespace, "support-bot")
    assert status is not None
    assert status["status"]["conditions"][0]["status"] == "True"
    assert ctx.status["defaultInstanceId"] == instance["status"]["id"]


def test_a_terminating_namespace_is_not_a_missing_permission(
    effects: ApiKubeEffects, kube_api: kubernetes.client.ApiClient
) -> None:
    """The real 403 of a namespace being deleted, held open by a finalizer."""
    core = kubernetes.client.CoreV1Api(kube_api)
    name = f"p-terminating-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    hold = {"metadata": {"name": "hold", "finalizers": ["e2e.stigmer.ai/hold"]}}
    core.create_namespaced_config_map(name, hold)
    agent = Cluster(kube_api).create_agent(name, "support-bot")
    try:
        core.delete_namespace(name)
        _wait_until_creates_are_refused(core, name)
        deps = Deps(MemoryStore(), effects, PipelineSettings(reporting_instance="test"))
        with pytest.raises(PipelineError) as caught:
            run(Kind.AGENT, Operation.CREATE, agent, deps)
        assert caught.value.reason is Reason.NAMESPACE_TERMINATING, caught.value
        assert caught.value.step == "CreateDefaultInstance" and not caught.value.retryable
        with pytest.raises(NamespaceTerminating):
            effects.post_event(_event(name, agent))
    finally:
        core.patch_namespaced_config_map("hold", name, {"metadata": {"finalizers": None}})


def _wait_until_creates_are_refused(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    """The admission plugin reads namespaces from a cache: it may lag the delete briefly."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "probe-"}})
        except kubernetes.client.ApiException as error:
            assert error.status == 403, error
            return
        time.sleep(0.2)
    raise AssertionError(f"namespace {namespace} still accepts new objects")


def _event(namespace: str, agent: dict[str, Any]) -> EventRecord:
    ref = ObjectRef(ObjectKind.AGENT.api_version, "Agent", namespace, agent["metadata"]["name"],
                    agent["metadata"]["uid"])  # fmt: skip
    return EventRecord(name="support-bot.terminating", involved=ref, type=EventType.NORMAL,
                       reason="Probe", message="probe")  # fmt: skip
