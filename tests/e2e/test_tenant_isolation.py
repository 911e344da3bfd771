"""Tenant isolation: every attack of docs/security.md, as the tenant, refused.

Each attack runs as a least-privileged tenant: a ServiceAccount of the
tenant's namespace with a token from the TokenRequest API and a Role that
lets it do what a team typically may -- write Agents and AgentInstances
(including their status, as broad roles often allow), read ConfigMaps --
and nothing else: no Secrets, no Namespaces. Only the setup (the victim's
objects, the admin's Namespace labels) and the final checks run as admin.
Whether a ServiceAccount may read a Secret is asked with a
SubjectAccessReview, the API server's own RBAC verdict.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes
import pytest

from stigmer_operator.api.kinds import ORG_LABEL, Kind
from stigmer_operator.pipeline.consent import ALLOWED_INSTANCES_ANNOTATION
from stigmer_operator.pipeline.naming import resource_id, service_account_name
from stigmer_operator.store import NotFoundError
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import VALID_SPEC, Cluster, condition, read_store, wait_for

pytestmark = pytest.mark.usefixtures("operator_process")

TENANT = "tenant"
#: What a team may do in its own namespace; no Secrets, no Namespaces.
TENANT_RULES = [
    {
        "apiGroups": ["agentic.stigmer.ai"],
        "resources": ["agents", "agentinstances"],
        "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
    },
    {
        "apiGroups": ["agentic.stigmer.ai"],
        "resources": ["agents/status", "agentinstances/status"],
        "verbs": ["get", "patch", "update"],
    },
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
]


@dataclass
class Tenancy:
    """Two teams: the attacker's namespace (``own``) and the victim's (``other``)."""

    own: str
    other: str
    victim_org: str
    tenant: Cluster
    admin: Cluster


@pytest.fixture
def tenancy(
    control_plane: ControlPlane,
    cluster: Cluster,
    namespace: str,
    namespace_factory: Callable[[], str],
) -> Iterator[Tenancy]:
    other = namespace_factory()
    victim_org = f"victim-{uuid.uuid4().hex[:6]}"
    cluster.core.patch_namespace(other, {"metadata": {"labels": {ORG_LABEL: victim_org}}})
    cluster.rbac.create_namespaced_role(
        namespace, {"metadata": {"name": TENANT}, "rules": TENANT_RULES}
    )
    cluster.rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": TENANT},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": TENANT},
            "subjects": [{"kind": "ServiceAccount", "name": TENANT, "namespace": namespace}],
        },
    )
    token = control_plane.token_for(namespace, TENANT)
    kubeconfig = control_plane.kubeconfig_for_token(token, name=f"tenant-{namespace}")
    with control_plane.client(kubeconfig) as client:
        yield Tenancy(namespace, other, victim_org, Cluster(client), cluster)


def may_get_secret(admin: Cluster, namespace: str, serviceaccount: str, secret: str) -> bool:
    """The API server's RBAC verdict (SubjectAccessReview) for one ``get``."""
    review = kubernetes.client.AuthorizationV1Api(
        admin.core.api_client
    ).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{namespace}:{serviceaccount}",
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": "get",
                    "resource": "secrets",
                    "name": secret,
                },
            },
        }
    )
    return bool(review.status.allowed)


def refusal(cluster: Cluster, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
    obj = cluster.wait_condition(kind, namespace, name, "Accepted", "False")
    return condition(obj, "Accepted")


def instance_of(agent: str, agent_namespace: str = "", **spec: Any) -> dict[str, Any]:
    ref = {"name": agent, **({"namespace": agent_namespace} if agent_namespace else {})}
    return {"agentRef": ref, **spec}


def secret(admin: Cluster, namespace: str, name: str, allowed: str | None) -> None:
    annotations = {ALLOWED_INSTANCES_ANNOTATION: allowed} if allowed is not None else {}
    admin.core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": name, "annotations": annotations}, "stringData": {"K": "v"}},
    )


def stored(process: OperatorProcess, kind: Kind, namespace: str, name: str) -> Any:
    with read_store(process.store_path) as store:
        try:
            return store.get_by_name(kind, namespace, name)
        except NotFoundError:
            return None


# -- the premise: what the tenant itself may not do ------------------------------------


def test_the_tenant_can_neither_label_namespaces_nor_read_secrets(tenancy: Tenancy) -> None:
    secret(tenancy.admin, tenancy.own, "db", allowed=None)
    with pytest.raises(kubernetes.client.ApiException) as labelling:
        tenancy.tenant.core.patch_namespace(
            tenancy.own, {"metadata": {"labels": {ORG_LABEL: tenancy.victim_org}}}
        )
    assert labelling.value.status == 403
    with pytest.raises(kubernetes.client.ApiException) as reading:
        tenancy.tenant.core.read_namespaced_secret("db", tenancy.own)
    assert reading.value.status == 403


# -- 1. the org comes from the Namespace -------------------------------------------------


def test_an_org_label_cannot_borrow_another_orgs_agent(tenancy: Tenancy) -> None:
    tenancy.admin.create_agent(tenancy.other, "private")
    tenancy.admin.wait_ready(Kind.AGENT, tenancy.other, "private")

    tenancy.tenant.create(
        Kind.AGENT_INSTANCE,
        tenancy.own,
        "borrower",
        instance_of("private", tenancy.other),
        labels={ORG_LABEL: tenancy.victim_org},
    )

    accepted = refusal(tenancy.tenant, Kind.AGENT_INSTANCE, tenancy.own, "borrower")
    assert accepted["reason"] == "OrgMismatch"
    assert f"namespace {tenancy.own} belongs to org '{tenancy.own}'" in accepted["message"]


def test_an_org_label_cannot_take_another_orgs_slug(
    tenancy: Tenancy, operator_process: OperatorProcess
) -> None:
    tenancy.tenant.create_agent(
        tenancy.own, "squatter", {**VALID_SPEC, "displayName": "Payroll"},
        labels={ORG_LABEL: tenancy.victim_org},
    )  # fmt: skip
    assert refusal(tenancy.tenant, Kind.AGENT, tenancy.own, "squatter")["reason"] == "OrgMismatch"
    assert stored(operator_process, Kind.AGENT, tenancy.own, "squatter") is None

    tenancy.admin.create_agent(tenancy.other, "payroll", {**VALID_SPEC, "displayName": "Payroll"})
    victim = tenancy.admin.wait_ready(Kind.AGENT, tenancy.other, "payroll")
    assert victim["status"]["slug"] == "payroll"


def test_a_label_that_agrees_with_the_namespace_is_fine(tenancy: Tenancy) -> None:
    tenancy.tenant.create_agent(tenancy.own, "agreeing", labels={ORG_LABEL: tenancy.own})
    tenancy.tenant.wait_ready(Kind.AGENT, tenancy.own, "agreeing")


# -- 2. ids from uids only -----------------------------------------------------------------


def test_a_forged_status_id_cannot_touch_another_objects_entry(
    tenancy: Tenancy, operator_process: OperatorProcess
) -> None:
    victim = tenancy.admin.create_agent(tenancy.other, "victim")
    victim = tenancy.admin.wait_ready(Kind.AGENT, tenancy.other, "victim")
    victim_id = victim["status"]["id"]
    before = stored(operator_process, Kind.AGENT, tenancy.other, "victim")

    forger = tenancy.tenant.create_agent(tenancy.own, "forger")
    tenancy.tenant.wait_ready(Kind.AGENT, tenancy.own, "forger")
    tenancy.tenant.custom.patch_namespaced_custom_object_status(
        "agentic.stigmer.ai", "v1", tenancy.own, "agents", "forger", {"status": {"id": victim_id}}
    )
    tenancy.tenant.patch_spec(Kind.AGENT, tenancy.own, "forger", {"description": "edited"})

    own_id = resource_id(Kind.AGENT, forger["metadata"]["uid"])
    wait_for(
        lambda: (
            (tenancy.tenant.get(Kind.AGENT, tenancy.own, "forger") or {})
            .get("status", {})
            .get("id")
            == own_id
        ),
        timeout=30,
        what="the forger's status.id to be its own again",
    )
    assert stored(operator_process, Kind.AGENT, tenancy.other, "victim") == before
    tenancy.tenant.delete(Kind.AGENT, tenancy.own, "forger")
    wait_for(
        lambda: stored(operator_process, Kind.AGENT, tenancy.own, "forger") is None,
        timeout=30,
        what="the forger's entry to go",
    )
    assert stored(operator_process, Kind.AGENT, tenancy.other, "victim") == before


# -- 3. Secrets by consent -----------------------------------------------------------------


def test_a_tenant_cannot_obtain_a_service_account_that_reads_a_secret(tenancy: Tenancy) -> None:
    secret(tenancy.admin, tenancy.own, "db", allowed=None)
    tenancy.tenant.create_agent(tenancy.own, "helper")
    refs = [{"kind": "Secret", "name": "db"}]
    tenancy.tenant.create(
        Kind.AGENT_INSTANCE, tenancy.own, "thief", instance_of("helper", environmentRefs=refs)
    )

    accepted = refusal(tenancy.tenant, Kind.AGENT_INSTANCE, tenancy.own, "thief")
    assert accepted["reason"] == "EnvironmentRefNotAllowed"
    assert "Secret db not found or not allowed" in accepted["message"]
    assert not may_get_secret(tenancy.admin, tenancy.own, service_account_name("thief"), "db")


def test_a_consenting_secret_is_granted_and_a_missing_one_reads_the_same(
    tenancy: Tenancy,
) -> None:
    secret(tenancy.admin, tenancy.own, "shared", allowed="user")
    tenancy.tenant.create_agent(tenancy.own, "helper")
    for name, ref in (("user", "shared"), ("prober", "no-such-secret")):
        refs = [{"kind": "Secret", "name": ref}]
        tenancy.tenant.create(
            Kind.AGENT_INSTANCE, tenancy.own, name, instance_of("helper", environmentRefs=refs)
        )
    tenancy.tenant.wait_ready(Kind.AGENT_INSTANCE, tenancy.own, "user", timeout=60)
    assert may_get_secret(tenancy.admin, tenancy.own, service_account_name("user"), "shared")
    missing = refusal(tenancy.tenant, Kind.AGENT_INSTANCE, tenancy.own, "prober")
    assert missing["reason"] == "EnvironmentRefNotAllowed"
    assert "Secret no-such-secret not found or not allowed" in missing["message"]


# -- 4. a refusal revokes --------------------------------------------------------------------


def test_unsharing_revokes_the_instance_at_once(
    tenancy: Tenancy, operator_process: OperatorProcess
) -> None:
    tenancy.admin.create_agent(tenancy.other, "lent", {**VALID_SPEC, "sharing": [tenancy.own]})
    tenancy.admin.wait_ready(Kind.AGENT, tenancy.other, "lent")
    secret(tenancy.admin, tenancy.own, "creds", allowed="*")
    refs = [{"kind": "Secret", "name": "creds"}]
    tenancy.tenant.create(
        Kind.AGENT_INSTANCE, tenancy.own, "borrower",
        instance_of("lent", tenancy.other, environmentRefs=refs),
    )  # fmt: skip
    tenancy.tenant.wait_ready(Kind.AGENT_INSTANCE, tenancy.own, "borrower", timeout=60)
    sa = service_account_name("borrower")
    assert may_get_secret(tenancy.admin, tenancy.own, sa, "creds")

    tenancy.admin.patch_spec(Kind.AGENT, tenancy.other, "lent", {"sharing": []})

    accepted = refusal(tenancy.tenant, Kind.AGENT_INSTANCE, tenancy.own, "borrower")
    assert accepted["reason"] == "AgentNotFound"
    wait_for(
        lambda: not may_get_secret(tenancy.admin, tenancy.own, sa, "creds"),
        timeout=10,
        what="the grant to be revoked",
    )
    role = tenancy.admin.rbac.read_namespaced_role(sa, tenancy.own)
    assert not role.rules
    assert stored(operator_process, Kind.AGENT_INSTANCE, tenancy.own, "borrower") is None


# -- 5. no disclosure ---------------------------------------------------------------------------


def test_refusals_do_not_tell_missing_from_private_from_refused(tenancy: Tenancy) -> None:
    tenancy.admin.create_agent(tenancy.other, "private")
    tenancy.admin.create_agent(tenancy.other, "broken", {**VALID_SPEC, "scope": "platform"})
    tenancy.admin.wait_ready(Kind.AGENT, tenancy.other, "private")
    refusal(tenancy.admin, Kind.AGENT, tenancy.other, "broken")
    for target in ("private", "broken", "missing"):
        tenancy.tenant.create(
            Kind.AGENT_INSTANCE, tenancy.own, f"probe-{target}", instance_of(target, tenancy.other)
        )
    answers = {
        target: refusal(tenancy.tenant, Kind.AGENT_INSTANCE, tenancy.own, f"probe-{target}")
        for target in ("private", "broken", "missing")
    }
    for target, accepted in answers.items():
        assert accepted["reason"] == "AgentNotFound", target
        assert accepted["message"] == (
            f"Authorize: spec.agentRef: Agent {tenancy.other}/{target} "
            "not found or not shared with you"
        )
        assert tenancy.victim_org not in accepted["message"]
