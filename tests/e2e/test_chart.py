"""The Helm chart against a real API server, and the operator running as its ServiceAccount.

1. ``helm install`` (the command docs/install.md gives), then
   ``stigmer-operator run`` out of cluster, authenticated as the chart's
   ServiceAccount with the exact arguments of the chart's Deployment: the
   example Agent and AgentInstance become Ready, which proves the RBAC is
   sufficient, and the identity is refused everything outside the contract
   (deleting or listing Secrets, deleting Agents, ...), which proves it is
   minimal. Cluster-wide, namespaced and peering installs are each run, and
   the peering install's two replicas fail over: the standby stays paused
   while the active one runs and takes over when it stops.
2. In cluster-wide mode the chart's ValidatingAdmissionPolicy bounds what
   the operator's own identity may write to RBAC objects: as that identity
   (a TokenRequest token for the chart's ServiceAccount, with the chart's
   RBAC and policy from ``helm template``), a RoleBinding granting Secrets
   to ``system:authenticated`` is refused, and the operator's own IAM
   writes (through :class:`ApiKubeEffects`, as the pipeline makes them) are
   admitted.
3. Every chart variant (default values and each ``ci/*-values.yaml``) is
   rendered and applied with ``kubectl apply --server-side --dry-run=server``:
   the API server validates every object (schemas, RBAC rules, PVCs, ...).

These tests use a control plane of their own (not the session's shared one):
the operators they start serve the whole cluster as the chart's identity, and
the proof only holds if no other operator (such as the shared admin one) is
reconciling the same objects; equally, they must not touch other tests'
objects. Pods never run (there is no kubelet), which the tests do not need.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from stigmer_operator.api.kinds import GROUP, VERSION, Kind
from stigmer_operator.api.validation import validate_spec
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.deps import Deps
from stigmer_operator.pipeline.frozen import thaw
from stigmer_operator.pipeline.keys import SPEC
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.kube_api import ApiKubeEffects
from stigmer_operator.pipeline.runner import Pipeline
from stigmer_operator.pipeline.steps import CreateIamPolicies, RevokeGrants
from stigmer_operator.store.memory import MemoryStore
from stigmer_testing.controlplane import (
    BUILD_HINT,
    BinariesMissingError,
    ControlPlane,
)
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import Cluster, wait_for

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "stigmer-operator"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
EXAMPLES = REPO_ROOT / "examples"
DRY_RUN_NAMESPACE = "stigmer-system"

Helm = Callable[..., subprocess.CompletedProcess[str]]

#: A stand-in for prometheus-operator's ServiceMonitor CRD (not installed
#: here), so the ServiceMonitor variant can be validated by the API server.
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "ServiceMonitor",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    try:
        control_plane = ControlPlane()
    except BinariesMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    with control_plane:
        # What the session fixture does: the generated CRDs, Established.
        control_plane.apply_crds(REPO_ROOT / "crds")
        yield control_plane


@pytest.fixture(scope="module")
def helm(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    path = plane.helm_path
    if path is None:
        pytest.fail(f"helm is not built in {plane.bin_dir}; {BUILD_HINT}", pytrace=False)
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "KUBECONFIG": str(plane.admin_kubeconfig),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(path), *args], capture_output=True, text=True, env=env, timeout=180
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result

    return run


def _ensure_namespace(plane: ControlPlane, name: str) -> None:
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    plane.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))


def _apply(plane: ControlPlane, path: Path, namespace: str) -> None:
    plane.kubectl("apply", "-n", namespace, "-f", str(path))


# -- 1. install, then run the operator as the chart's ServiceAccount ------------------

#: (verb, resource) the operator's identity must be allowed in a namespace it serves.
ALLOWED = [
    ("get", "agents.agentic.stigmer.ai"),
    ("list", "agents.agentic.stigmer.ai"),
    ("watch", "agentinstances.agentic.stigmer.ai"),
    ("create", "agentinstances.agentic.stigmer.ai"),
    ("patch", "agents.agentic.stigmer.ai/status"),
    ("update", "agentinstances.agentic.stigmer.ai/status"),
    ("create", "events"),
    ("patch", "events.events.k8s.io"),
    ("create", "serviceaccounts"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("patch", "rolebindings.rbac.authorization.k8s.io"),
    # The IAM objects a former same-named AgentInstance left behind.
    ("delete", "serviceaccounts"),
    ("delete", "roles.rbac.authorization.k8s.io"),
    # the default instance a former Agent left (cluster-wide, the policy admits labelled only)
    ("delete", "agentinstances.agentic.stigmer.ai"),
    ("delete", "rolebindings.rbac.authorization.k8s.io"),
    ("get", "secrets"),
    ("get", "configmaps"),
]

#: ... and must be refused, anywhere.
DENIED = [
    ("delete", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "secrets"),
    ("list", "configmaps"),
    ("delete", "agents.agentic.stigmer.ai"),
    ("deletecollection", "agents.agentic.stigmer.ai"),
    ("deletecollection", "roles.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("create", "pods"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts"),
]


def _can_i(plane: ControlPlane, kubeconfig: Path, verb: str, resource: str, ns: str) -> bool:
    # `kubectl auth can-i` asks the API server with a SelfSubjectAccessReview.
    result = plane.kubectl(
        "auth", "can-i", verb, resource, "-n", ns, kubeconfig=kubeconfig, check=False
    )
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


def _deployments(plane: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    out = plane.kubectl("get", "deployments", "-n", namespace, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return sorted(items, key=lambda d: str(d["metadata"]["name"]))


def _operator_args(deployment: dict[str, Any]) -> list[str]:
    """The chart's arguments, minus what must differ out of cluster (paths, ports)."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = list(container["args"])
    assert args[0] == "run"
    local = ("--store-path=", "--metrics-port=", "--health-port=", "--log-level=")
    return [a for a in args[1:] if not a.startswith(local)]


def _ready(plane: ControlPlane, namespace: str, *objects: str) -> None:
    # The command docs/install.md gives to check an Agent.
    plane.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        "--timeout=120s",
        *objects,
        timeout=150,
    )


MODES = {
    "cluster-wide": [],
    "namespaced": ["--set", "rbac.namespaces={%(agents)s}"],
    "peering": [f"--values={CHART / 'ci' / 'peering-values.yaml'}"],
}


@pytest.mark.parametrize("mode", list(MODES))
def test_install_and_run_as_the_chart_service_account(
    plane: ControlPlane, helm: Helm, tmp_path: Path, mode: str
) -> None:
    suffix = uuid.uuid4().hex[:6]
    release = "stigmer-operator" if mode == "cluster-wide" else f"so-{mode}"
    release_ns = "stigmer-system" if mode == "cluster-wide" else f"stigmer-{mode}-{suffix}"
    agents_ns = f"agents-{mode}-{suffix}"
    _ensure_namespace(plane, agents_ns)  # namespaced mode binds a Role in it

    extra = [arg % {"agents": agents_ns} for arg in MODES[mode]]
    installed = helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        release_ns,
        "--create-namespace",
        *extra,
    )
    try:
        assert "kubectl wait" in installed.stdout, "NOTES.txt tells how to check the operator"
        # Helm created kopf's peering CRDs from the chart's crds/ directory (this
        # module's control plane is private; nothing else applied them).
        assert plane.kubectl("get", "crd", "kopfpeerings.kopf.dev", check=False).returncode == 0

        deployments = _deployments(plane, release_ns)
        assert len(deployments) == (2 if mode == "peering" else 1)
        for deployment in deployments:
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"]["type"] == "Recreate"
        active = deployments[0]
        service_account = active["spec"]["template"]["spec"]["serviceAccountName"]
        args = _operator_args(active)
        if mode == "namespaced":
            assert f"--namespace={agents_ns}" in args
        if mode == "peering":
            assert any(a.startswith("--peering=") for a in args)
            assert "--priority=50" in args

        token = plane.token_for(release_ns, service_account)
        kubeconfig = plane.kubeconfig_for_token(token, name=f"{release}-{suffix}")

        # Minimal: refused everything outside the contract ...
        for verb, resource in DENIED:
            assert not _can_i(plane, kubeconfig, verb, resource, agents_ns), (verb, resource)
        # ... and, in namespaced mode, everything outside its namespaces.
        if mode == "namespaced":
            assert not _can_i(plane, kubeconfig, "list", "agents.agentic.stigmer.ai", "default")
            assert not _can_i(plane, kubeconfig, "get", "secrets", "default")
        for verb, resource in ALLOWED:
            assert _can_i(plane, kubeconfig, verb, resource, agents_ns), (verb, resource)

        # Sufficient: the operator, as that identity, reconciles the examples.
        with OperatorProcess(kubeconfig, tmp_path / "store", args=args) as operator:
            _apply(plane, EXAMPLES / "agent.yaml", agents_ns)
            _apply(plane, EXAMPLES / "agent-instance.yaml", agents_ns)
            try:
                _ready(
                    plane,
                    agents_ns,
                    "agent/code-reviewer",
                    "agentinstance/code-reviewer-default",
                    "agentinstance/code-reviewer-prod",
                )
            except Exception as exc:
                raise AssertionError(f"{exc}\noperator log:\n{operator.log_tail(80)}") from exc
            agent = json.loads(
                plane.kubectl("get", "agent", "code-reviewer", "-n", agents_ns, "-o", "json").stdout
            )
            assert agent["status"]["defaultInstanceName"] == "code-reviewer-default"

            # The per-instance Role grants `get` on the named Secret: only possible
            # because the chart gives the operator `get` on Secrets itself.
            roles = json.loads(plane.kubectl("get", "roles", "-n", agents_ns, "-o", "json").stdout)[
                "items"
            ]
            granted = {
                (resource, name)
                for role in roles
                for rule in role.get("rules") or []
                if "get" in rule["verbs"]
                for resource in rule["resources"]
                for name in rule.get("resourceNames", [])
            }
            assert ("secrets", "code-reviewer-prod-credentials") in granted

            if mode == "peering":
                peering = json.loads(
                    plane.kubectl(
                        "get", "clusterkopfpeering", f"{release}-stigmer-operator", "-o", "json"
                    ).stdout
                )
                priorities = [peer["priority"] for peer in peering.get("status", {}).values()]
                assert 50 in priorities, peering

            # Refused when it tries.
            for attempt in (
                ("delete", "secret", "code-reviewer-prod-credentials"),
                ("get", "secrets"),
                ("delete", "agent", "code-reviewer"),
            ):
                result = plane.kubectl(
                    *attempt, "-n", agents_ns, kubeconfig=kubeconfig, check=False
                )
                assert result.returncode != 0 and "Forbidden" in result.stderr, attempt
            assert operator.returncode is None, operator.log_tail()
    finally:
        helm("uninstall", release, "--namespace", release_ns, check=False)


def _wait_log(process: OperatorProcess, text: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in process.log_tail(400):
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not logged in {timeout}s:\n{process.log_tail(60)}")


def _wait_peers(plane: ControlPlane, name: str, priorities: set[int]) -> None:
    """Until the ClusterKopfPeering lists live peers with exactly these priorities."""
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while time.monotonic() < deadline:
        out = plane.kubectl("get", "clusterkopfpeering", name, "-o", "json").stdout
        peers = json.loads(out).get("status") or {}
        seen = {int(peer["priority"]) for peer in peers.values() if peer}
        if seen == priorities:
            return
        time.sleep(0.5)
    raise AssertionError(f"peers with priorities {priorities} not seen (last: {seen})")


def _agent(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "agentic.stigmer.ai/v1",
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {
                "instructions": "Answer questions about the weather, briefly.",
                "mcpServers": [{"name": "weather", "http": {"url": "https://weather.example/mcp"}}],
            },
        }
    )


def test_peering_standby_takes_over(plane: ControlPlane, helm: Helm, tmp_path: Path) -> None:
    """Two replicas of the peering install: one active, the other paused until it stops."""
    suffix = uuid.uuid4().hex[:6]
    release, release_ns = "so-failover", f"stigmer-failover-{suffix}"
    agents_ns = f"agents-failover-{suffix}"
    _ensure_namespace(plane, agents_ns)
    helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        release_ns,
        "--create-namespace",
        f"--values={CHART / 'ci' / 'peering-values.yaml'}",
    )
    try:
        first, second = _deployments(plane, release_ns)
        service_account = first["spec"]["template"]["spec"]["serviceAccountName"]
        kubeconfig = plane.kubeconfig_for_token(plane.token_for(release_ns, service_account))
        active = OperatorProcess(kubeconfig, tmp_path / "active", args=_operator_args(first))
        standby = OperatorProcess(kubeconfig, tmp_path / "standby", args=_operator_args(second))
        resumed = "Resuming operations after the pause"  # kopf: this peer is now active
        with active:
            # With --peering, kopf starts paused and resumes once the peering
            # object shows no peer of higher priority.
            _wait_log(active, resumed)
            with standby:
                _wait_peers(plane, f"{release}-stigmer-operator", {50, 49})
                plane.kubectl("apply", "-n", agents_ns, "-f", "-", input=_agent("before-failover"))
                _ready(plane, agents_ns, "agent/before-failover")
                assert resumed not in standby.log_tail(400), "the standby must stay paused"

                active.stop()  # a graceful stop withdraws it from the peering object
                _wait_log(standby, resumed)
                plane.kubectl("apply", "-n", agents_ns, "-f", "-", input=_agent("after-failover"))
                _ready(
                    plane, agents_ns, "agent/after-failover", "agentinstance/after-failover-default"
                )
                assert standby.returncode is None, standby.log_tail()
    finally:
        helm("uninstall", release, "--namespace", release_ns, check=False)


# -- 2. the admission policy bounds the operator's own RBAC writes --------------------

#: What the policy test applies from ``helm template``: identity, RBAC, policy.
POLICY_KINDS = {
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
MANAGED = {"app.kubernetes.io/managed-by": "stigmer-operator"}
DENIED_BY_POLICY = "denied request"


def _role(name: str, labels: dict[str, str], rule: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "rules": [rule]}


def _binding(name: str, subject: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": MANAGED},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [subject],
    }


def _refused(write: Callable[[], Any]) -> str:
    """The API's refusal message of ``write``; fails if it was admitted."""
    try:
        write()
    except ApiException as exc:
        assert exc.status in (403, 422), exc
        return str(exc.body)
    raise AssertionError("admitted")


def test_admission_policy_bounds_the_operators_rbac_writes(plane: ControlPlane, helm: Helm) -> None:
    suffix = uuid.uuid4().hex[:6]
    release, release_ns, target = "so-vap", f"stigmer-vap-{suffix}", f"agents-vap-{suffix}"
    for namespace in (release_ns, target):
        _ensure_namespace(plane, namespace)
    rendered = helm("template", release, str(CHART), f"--namespace={release_ns}").stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in POLICY_KINDS]
    assert {d["kind"] for d in docs} == POLICY_KINDS
    plane.kubectl("apply", "-n", release_ns, "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
        token = plane.token_for(release_ns, account["metadata"]["name"])
        kubeconfig = plane.kubeconfig_for_token(token, name=f"vap-{suffix}")
        with plane.client(kubeconfig) as client:
            _attacks_are_refused(plane, client, target)
            _the_pipelines_writes_are_admitted(plane, client, target)
    finally:
        cluster_scoped = [d for d in docs if d["kind"] != "ServiceAccount"]
        plane.kubectl(
            "delete", "--ignore-not-found", "-f", "-",
            input=yaml.safe_dump_all(cluster_scoped), check=False,
        )  # fmt: skip


def _attacks_are_refused(
    plane: ControlPlane, client: kubernetes.client.ApiClient, target: str
) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(client)
    secrets_of = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    named = {**secrets_of, "resourceNames": ["db"]}
    # RBAC alone admits this Role (the operator holds `get` on Secrets) ...
    rbac.create_namespaced_role(target, _role("grab", MANAGED, named))
    everyone = {
        "kind": "Group",
        "name": "system:authenticated",
        "apiGroup": "rbac.authorization.k8s.io",
    }
    attack = _binding("grab", everyone)
    # ... and this RoleBinding: only the policy refuses it (it may take a moment to load).
    wait_for(
        lambda: _try_dry_run(rbac, target, attack),
        timeout=30, what="the admission policy to be enforced",
    )  # fmt: skip
    message = _refused(lambda: rbac.create_namespaced_role_binding(target, attack))
    assert DENIED_BY_POLICY in message and "may only bind its own Role" in message
    other_sa = {"kind": "ServiceAccount", "name": "someone-else", "namespace": target}
    assert "may only bind" in _refused(
        lambda: rbac.create_namespaced_role_binding(target, _binding("grab", other_sa))
    )
    assert "only grant get on named" in _refused(
        lambda: rbac.create_namespaced_role(target, _role("wide", MANAGED, secrets_of))
    )
    assert "labelled app.kubernetes.io/managed-by" in _refused(
        lambda: rbac.create_namespaced_role(target, _role("unlabelled", {}, named))
    )
    # RBAC admits deleting any Role; the policy only those labelled managed-by.
    with plane.client() as admin:
        kubernetes.client.RbacAuthorizationV1Api(admin).create_namespaced_role(
            target, _role("someone-elses", {}, named)
        )
    assert "change or delete objects already labelled" in _refused(
        lambda: rbac.delete_namespaced_role("someone-elses", target)
    )
    # Likewise a user's own AgentInstance: RBAC admits its delete, the policy does not.
    with plane.client() as admin:
        Cluster(admin).create(Kind.AGENT_INSTANCE, target, "users-own", {"agentRef": {"name": "x"}})
    assert "change or delete objects already labelled" in _refused(
        lambda: Cluster(client).custom.delete_namespaced_custom_object(
            GROUP, VERSION, target, Kind.AGENT_INSTANCE.plural, "users-own"
        )
    )


def _try_dry_run(rbac: Any, namespace: str, body: dict[str, Any]) -> bool:
    """``True`` once the policy refuses ``body`` (asked with a server-side dry run)."""
    try:
        rbac.create_namespaced_role_binding(namespace, body, dry_run="All")
    except ApiException as exc:
        return DENIED_BY_POLICY in str(exc.body)
    return False


def _the_pipelines_writes_are_admitted(
    plane: ControlPlane, client: kubernetes.client.ApiClient, target: str
) -> None:
    """CreateIamPolicies' three objects, RevokeGrants' empty Role, the deletes, as the operator."""
    with plane.client() as admin:
        owner = Cluster(admin).create(
            Kind.AGENT_INSTANCE, target, "owner", {"agentRef": {"name": "x"}}
        )
    deps = Deps(store=MemoryStore(), kube=ApiKubeEffects(client))
    body = {**owner, "spec": {"agentRef": {"name": "x"}, "environmentRefs": [
        {"kind": "Secret", "name": "db"}]}}  # fmt: skip
    ctx = RequestContext.for_kind(Kind.AGENT_INSTANCE, body, Operation.CREATE, deps)
    ctx.values.put(SPEC, validate_spec(Kind.AGENT_INSTANCE, thaw(ctx.spec)))
    Pipeline("iam", [CreateIamPolicies()]).run(ctx)
    rbac = kubernetes.client.RbacAuthorizationV1Api(client)
    role = rbac.read_namespaced_role("owner-agent", target)
    assert role.rules[0].resource_names == ["db"]
    Pipeline("revoke", [RevokeGrants()]).run(
        RequestContext.for_kind(Kind.AGENT_INSTANCE, body, Operation.UPDATE, deps)
    )
    assert not rbac.read_namespaced_role("owner-agent", target).rules
    role_uid = rbac.read_namespaced_role("owner-agent", target).metadata.uid
    ApiKubeEffects(client).delete(ObjectKind.ROLE, target, "owner-agent", uid=role_uid)
    assert ApiKubeEffects(client).get(ObjectKind.ROLE, target, "owner-agent") is None
    # CreateDefaultInstance's delete of the default instance a former Agent left.
    with plane.client() as admin:
        left = Cluster(admin).create(
            Kind.AGENT_INSTANCE, target, "gone-default", {"agentRef": {"name": "gone"}}, MANAGED
        )
    effects = ApiKubeEffects(client)
    effects.delete(ObjectKind.AGENT_INSTANCE, target, "gone-default", uid=left["metadata"]["uid"])
    assert effects.get(ObjectKind.AGENT_INSTANCE, target, "gone-default") is None


# -- 3. every variant, validated by the API server ------------------------------------


@pytest.fixture(scope="module")
def dry_run_cluster(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> ControlPlane:
    """The CRDs and namespaces the variants need to exist before a dry run."""
    extra = tmp_path_factory.mktemp("extra-crds")
    (extra / "servicemonitor.yaml").write_text(yaml.safe_dump(SERVICE_MONITOR_CRD))
    plane.apply_crds(extra)
    plane.apply_crds(CHART / "crds")  # kopf's peering CRDs, as `helm install` creates them
    for namespace in (DRY_RUN_NAMESPACE, "team-a", "team-b"):
        _ensure_namespace(plane, namespace)
    return plane


@pytest.mark.parametrize(
    "values", [None, *CI_VALUES], ids=lambda p: "default" if p is None else p.name
)
def test_variant_passes_server_side_dry_run(
    dry_run_cluster: ControlPlane, helm: Helm, values: Path | None
) -> None:
    args = ["template", "stigmer-operator", str(CHART), f"--namespace={DRY_RUN_NAMESPACE}"]
    if values is not None:
        args.append(f"--values={values}")
    manifest = helm(*args).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(manifest) if d}
    assert "Deployment" in kinds

    result = dry_run_cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=stigmer-chart-e2e",
        "-f",
        "-",
        input=manifest,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout
