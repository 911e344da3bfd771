"""The chart, rendered by the real helm: lint, every ci/ variant, and the objects.

These assertions are about what the chart produces (RBAC rules, security
context, volumes, arguments); tests/e2e/test_chart.py proves the same objects
are accepted by a real API server and that the RBAC is enough to run the
operator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, CI_VALUES, NAMESPACE, RELEASE, HelmError, Render, by_kind, one

CI = CHART / "ci"
FULLNAME = RELEASE  # the release name contains the chart name

ALL_WRITE = {"get", "list", "watch", "create", "patch", "update"}
#: The kinds the operator creates: also deleted, when a former same-named owner left them.
IAM_WRITE = ALL_WRITE | {"delete"}
IAM_RESOURCES = {
    ("", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
}
DEFAULT_INSTANCES = ("agentic.stigmer.ai", "agentinstances")
DELETABLE = IAM_RESOURCES | {DEFAULT_INSTANCES}
#: The operator's permissions in every namespace it serves, exactly.
EXPECTED_RULES: dict[tuple[str, str], set[str]] = {
    ("agentic.stigmer.ai", "agents"): ALL_WRITE,
    ("agentic.stigmer.ai", "agentinstances"): IAM_WRITE,
    ("agentic.stigmer.ai", "agents/status"): {"get", "patch", "update"},
    ("agentic.stigmer.ai", "agentinstances/status"): {"get", "patch", "update"},
    ("agentic.stigmer.ai", "agents/finalizers"): {"update"},
    ("agentic.stigmer.ai", "agentinstances/finalizers"): {"update"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("", "serviceaccounts"): IAM_WRITE,
    ("rbac.authorization.k8s.io", "roles"): IAM_WRITE,
    ("rbac.authorization.k8s.io", "rolebindings"): IAM_WRITE,
    ("", "secrets"): {"get"},
    ("", "configmaps"): {"get"},
}
PEERING_VERBS = {"get", "list", "watch", "patch"}
#: Cluster-wide, also: the org of an object is its Namespace's label.
NAMESPACE_READ = {("", "namespaces"): {"get"}}


def flatten(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs; refuses the rule shapes the chart never uses."""
    result: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource) and "*" not in rule["verbs"], rule
                result.setdefault((group, resource), set()).update(rule["verbs"])
    return result


def deployments(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_kind(objects, "Deployment")


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return operator


def args(deployment: dict[str, Any]) -> list[str]:
    return list(container(deployment)["args"])


def volume(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    return volumes[name]


# -- lint ---------------------------------------------------------------------


def test_lint_strict_default_values(helm: Callable[..., str], kube_version: str) -> None:
    out = helm("lint", "--strict", str(CHART), f"--kube-version={kube_version}")
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict_ci_values(helm: Callable[..., str], kube_version: str, values: Path) -> None:
    out = helm(
        "lint", "--strict", str(CHART), f"--values={values}", f"--kube-version={kube_version}"
    )
    assert "0 chart(s) failed" in out


def test_ci_variants_cover_the_documented_modes() -> None:
    names = {p.name for p in CI_VALUES}
    assert {
        "cluster-wide-values.yaml",
        "namespaced-values.yaml",
        "no-persistence-values.yaml",
        "peering-values.yaml",
        "extras-values.yaml",
        "crds-install-values.yaml",
    } <= names


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_variant_renders_labelled_objects(render: Render, values: Path) -> None:
    objects = render([values])
    assert objects
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/instance") == RELEASE, obj["metadata"]
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        if obj["kind"] != "CustomResourceDefinition":
            assert labels.get("app.kubernetes.io/name") == "stigmer-operator"
            assert labels.get("helm.sh/chart") == "stigmer-operator-0.1.0"


# -- default values -------------------------------------------------------------


def test_default_objects(render: Render) -> None:
    kinds = sorted(o["kind"] for o in render())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]


def test_deployment_is_one_replica_recreate(render: Render) -> None:
    (deployment,) = deployments(render())
    assert deployment["metadata"]["name"] == FULLNAME
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == FULLNAME
    assert pod["automountServiceAccountToken"] is True


def test_pod_security_is_restricted(render: Render) -> None:
    (deployment,) = deployments(render())
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 10001
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container(deployment)["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 10001
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in ctx
    assert not any("hostPath" in v for v in deployment["spec"]["template"]["spec"]["volumes"])


def test_writable_tmp_and_store_mounts(render: Render) -> None:
    (deployment,) = deployments(render())
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", "/var/lib/stigmer": "store"}
    assert "emptyDir" in volume(deployment, "tmp")
    claim = volume(deployment, "store")["persistentVolumeClaim"]["claimName"]
    assert claim == f"{FULLNAME}-store"


def test_store_claim(render: Render) -> None:
    pvc = one(render(), "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == f"{FULLNAME}-store"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in pvc["spec"]


def test_default_arguments(render: Render) -> None:
    (deployment,) = deployments(render())
    assert args(deployment) == [
        "run",
        "--store-path=/var/lib/stigmer/store",
        "--log-format=json",
        "--log-level=info",
        "--metrics-port=8080",
        "--health-port=8081",
        "--platform-namespace=stigmer-system",
        "--history-max-versions=50",
        "--history-max-age-days=0",
        "--deleted-history-days=30",
        "--change-log-max-entries=100000",
        "--change-log-max-age-days=30",
        "--store-maintenance-seconds=3600",
        "--worker-limit=32",
        "--backlog-limit=128",
    ]
    image = container(deployment)["image"]
    assert image == "ghcr.io/stigmer/stigmer-operator:0.1.0"


def test_retention_values_become_flags_the_operator_parses(render: Render) -> None:
    from stigmer_operator.cli import build_parser
    from stigmer_operator.settings import OperatorSettings
    from stigmer_operator.store import maintenance

    (deployment,) = deployments(
        render(
            set_values={
                "operator.retention.historyMaxVersions": "7",
                "operator.retention.changeLogMaxAgeDays": "2",
            }
        )
    )
    parsed = build_parser().parse_args(args(deployment))
    settings = OperatorSettings(**{f: getattr(parsed, f) for f in maintenance.FIELDS})

    assert settings.history_max_versions == 7
    assert settings.change_log_max_age_days == 2
    assert settings.change_log_max_entries == 100_000


def test_worker_limit_value_bounds_kopfs_workers(render: Render) -> None:
    """The chart's workerLimit reaches kopf as the bound on per-object workers."""
    import kopf

    from stigmer_operator.cli import build_parser
    from stigmer_operator.handlers.startup import configure_kopf
    from stigmer_operator.settings import OperatorSettings

    def kopf_worker_limit(value: str) -> int | None:
        (deployment,) = deployments(render(set_values={"operator.workerLimit": value}))
        parsed = build_parser().parse_args(args(deployment))
        kopf_settings = kopf.OperatorSettings()
        configure_kopf(kopf_settings, OperatorSettings(worker_limit=parsed.worker_limit))
        return kopf_settings.queueing.worker_limit

    assert kopf_worker_limit("5") == 5
    assert kopf_worker_limit("0") is None  # no bound


def test_backlog_limit_value_reaches_the_operator(render: Render) -> None:
    """The chart's backlogLimit is the operator's bound on objects handed to kopf."""
    from stigmer_operator.cli import build_parser
    from stigmer_operator.settings import BACKLOG_LIMIT

    def backlog_limit(**values: str) -> int:
        (deployment,) = deployments(render(set_values=values))
        limit: int = build_parser().parse_args(args(deployment)).backlog_limit
        return limit

    assert backlog_limit() == BACKLOG_LIMIT
    assert backlog_limit(**{"operator.backlogLimit": "16"}) == 16
    assert backlog_limit(**{"operator.backlogLimit": "0"}) == 0  # kopf's own queueing


def test_probes_and_ports(render: Render) -> None:
    (deployment,) = deployments(render())
    operator = container(deployment)
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["resources"]["requests"] and operator["resources"]["limits"]["memory"]


def test_probes_can_be_disabled(render: Render) -> None:
    (deployment,) = deployments(
        render(set_values={"livenessProbe.enabled": "false", "readinessProbe.enabled": "false"})
    )
    assert "livenessProbe" not in container(deployment)
    assert "readinessProbe" not in container(deployment)


def test_metrics_service_selects_operator_pods(render: Render) -> None:
    objects = render()
    service = one(objects, "Service")
    (deployment,) = deployments(objects)
    assert service["metadata"]["name"] == f"{FULLNAME}-metrics"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_image_digest_wins_over_tag(render: Render) -> None:
    digest = "sha256:" + "a" * 64
    (deployment,) = deployments(render(set_values={"image.digest": digest, "image.tag": "x"}))
    assert container(deployment)["image"] == f"ghcr.io/stigmer/stigmer-operator@{digest}"


# -- RBAC -------------------------------------------------------------------------


def test_cluster_wide_rbac_is_exactly_the_contract(render: Render) -> None:
    objects = render([CI / "cluster-wide-values.yaml"])
    role = one(objects, "ClusterRole")
    assert flatten(role["rules"]) == EXPECTED_RULES | NAMESPACE_READ
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]
    assert not by_kind(objects, "Role") and not by_kind(objects, "RoleBinding")
    (deployment,) = deployments(objects)
    assert not [a for a in args(deployment) if a.startswith("--namespace")]


def test_namespaced_rbac_one_role_per_namespace(render: Render) -> None:
    objects = render([CI / "namespaced-values.yaml"])
    roles = {r["metadata"]["namespace"]: r for r in by_kind(objects, "Role")}
    bindings = {b["metadata"]["namespace"]: b for b in by_kind(objects, "RoleBinding")}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    for ns, role in roles.items():
        assert flatten(role["rules"]) == EXPECTED_RULES
        assert bindings[ns]["roleRef"]["kind"] == "Role"
        assert bindings[ns]["roleRef"]["name"] == role["metadata"]["name"]
        assert bindings[ns]["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
        ]
    (deployment,) = deployments(objects)
    assert [a for a in args(deployment) if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]
    assert "--platform-namespace=team-a" in args(deployment)
    assert not by_kind(objects, "ValidatingAdmissionPolicy")  # Roles bound it already


def test_namespaced_mode_reads_exactly_its_namespaces(render: Render) -> None:
    """A Role cannot grant Namespaces: one ClusterRole, `get` on the served ones only."""
    objects = render([CI / "namespaced-values.yaml"])
    role = one(objects, "ClusterRole")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "verbs": ["get"],
            "resourceNames": ["team-a", "team-b"],
        }
    ]
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]


def test_cluster_wide_mode_bounds_the_operators_rbac_writes(render: Render) -> None:
    objects = render([CI / "cluster-wide-values.yaml"])
    policy = one(objects, "ValidatingAdmissionPolicy")
    binding = one(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    matched = {
        (group, resource)
        for rule in spec["matchConstraints"]["resourceRules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert matched == DELETABLE
    # Every write the operator may make to them is checked, deletes included;
    # but not its kopf bookkeeping patches (UPDATE) on users' AgentInstances.
    granted = flatten(one(objects, "ClusterRole")["rules"])
    for rule in spec["matchConstraints"]["resourceRules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                writes = granted[(group, resource)] - {"get", "list", "watch"}
                checked = {v.upper() for v in writes} - {"PATCH"}
                if (group, resource) == DEFAULT_INSTANCES:
                    checked.discard("UPDATE")
                assert checked == set(rule["operations"])
    (condition,) = spec["matchConditions"]
    assert f"'system:serviceaccount:{NAMESPACE}:{FULLNAME}'" in condition["expression"]
    assert len(spec["validations"]) == 4


def test_the_admission_policy_can_be_turned_off(render: Render) -> None:
    objects = render(set_values={"rbac.admissionPolicy.enabled": "false"})
    assert not by_kind(objects, "ValidatingAdmissionPolicy")
    assert not by_kind(objects, "ValidatingAdmissionPolicyBinding")


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_delete_only_what_the_operator_creates_and_no_secret_enumeration_anywhere(
    render: Render, values: Path
) -> None:
    for obj in render([values]):
        if obj["kind"] not in ("Role", "ClusterRole") or obj["metadata"]["name"].endswith(
            "-namespaces"
        ):
            continue
        rules = flatten(obj["rules"])
        for (group, resource), verbs in rules.items():
            forbidden = {"deletecollection", "escalate", "bind", "impersonate"}
            if (group, resource) not in DELETABLE:
                forbidden.add("delete")
            assert not verbs & forbidden, (group, resource)
        assert rules[("", "secrets")] == {"get"}
        assert rules[("", "configmaps")] == {"get"}


def test_rbac_can_be_left_to_the_user(render: Render) -> None:
    objects = render(set_values={"rbac.create": "false", "serviceAccount.create": "false"})
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert "ServiceAccount" not in kinds
    (deployment,) = deployments(objects)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "default"


# -- persistence -------------------------------------------------------------------


def test_no_persistence_uses_empty_dir(render: Render) -> None:
    objects = render([CI / "no-persistence-values.yaml"])
    assert not by_kind(objects, "PersistentVolumeClaim")
    (deployment,) = deployments(objects)
    store = volume(deployment, "store")
    assert "persistentVolumeClaim" not in store
    assert store["emptyDir"] == {"sizeLimit": "1Gi"}


def test_existing_claim_is_used_and_not_created(render: Render) -> None:
    objects = render(set_values={"persistence.existingClaim": "my-store"})
    assert not by_kind(objects, "PersistentVolumeClaim")
    (deployment,) = deployments(objects)
    assert volume(deployment, "store")["persistentVolumeClaim"]["claimName"] == "my-store"


def test_existing_claim_cannot_be_shared_by_replicas(render: Render) -> None:
    with pytest.raises(HelmError, match="cannot be shared"):
        render(set_values={"persistence.existingClaim": "my-store", "replicaCount": "2"})


# -- peering -------------------------------------------------------------------------


def test_standalone_by_default(render: Render) -> None:
    objects = render()
    (deployment,) = deployments(objects)
    assert not [a for a in args(deployment) if a.startswith(("--peering", "--priority"))]
    assert not [o for o in objects if o["apiVersion"].startswith("kopf.dev/")]
    assert ("kopf.dev", "clusterkopfpeerings") not in flatten(one(objects, "ClusterRole")["rules"])


def test_peering_two_replicas_one_active(render: Render) -> None:
    objects = render([CI / "peering-values.yaml"])
    found = deployments(objects)
    assert [d["metadata"]["name"] for d in found] == [FULLNAME, f"{FULLNAME}-1"]
    priorities = []
    selectors = []
    for deployment in found:
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        flags = args(deployment)
        assert f"--peering={FULLNAME}" in flags
        (priority,) = [a for a in flags if a.startswith("--priority=")]
        priorities.append(int(priority.split("=", 1)[1]))
        selectors.append(deployment["spec"]["selector"]["matchLabels"])
        env = {e["name"]: e for e in container(deployment)["env"]}
        assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        affinity = deployment["spec"]["template"]["spec"]["affinity"]
        assert affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert priorities == [50, 49], "distinct priorities: kopf pauses peers of equal priority"
    assert selectors[0] != selectors[1], "each Deployment owns only its own pod"

    claims = {d["metadata"]["name"]: volume(d, "store") for d in found}
    pvcs = {p["metadata"]["name"] for p in by_kind(objects, "PersistentVolumeClaim")}
    assert pvcs == {f"{FULLNAME}-store", f"{FULLNAME}-1-store"}
    assert {c["persistentVolumeClaim"]["claimName"] for c in claims.values()} == pvcs

    peering = one(objects, "ClusterKopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == FULLNAME
    rules = flatten(one(objects, "ClusterRole")["rules"])
    assert rules == {
        **EXPECTED_RULES,
        **NAMESPACE_READ,
        ("kopf.dev", "clusterkopfpeerings"): PEERING_VERBS,
    }


def test_peering_namespaced_uses_kopfpeerings(render: Render) -> None:
    objects = render([CI / "namespaced-values.yaml"], {"peering.enabled": "true"})
    peerings = by_kind(objects, "KopfPeering")
    assert {p["metadata"]["namespace"] for p in peerings} == {"team-a", "team-b"}
    assert not by_kind(objects, "ClusterKopfPeering")
    for role in by_kind(objects, "Role"):
        rules = flatten(role["rules"])
        assert rules == {**EXPECTED_RULES, ("kopf.dev", "kopfpeerings"): PEERING_VERBS}
    (deployment,) = deployments(objects)
    assert "--priority=100" in args(deployment)


def test_single_replica_peering_on_request(render: Render) -> None:
    objects = render(set_values={"peering.enabled": "true", "peering.name": "shared"})
    (deployment,) = deployments(objects)
    assert "--peering=shared" in args(deployment)
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    assert one(objects, "ClusterKopfPeering")["metadata"]["name"] == "shared"


# -- optional objects ----------------------------------------------------------------


def test_optional_objects_are_off_by_default(render: Render) -> None:
    kinds = {o["kind"] for o in render()}
    assert not kinds & {"ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy"}


def test_service_monitor_pdb_network_policy(render: Render) -> None:
    objects = render([CI / "extras-values.yaml"])
    (deployment,) = deployments(objects)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    service = one(objects, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}

    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    policy = one(objects, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    metrics_in, health_in = policy["spec"]["ingress"]
    assert metrics_in["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics_in["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    assert health_in == {"ports": [{"port": "health", "protocol": "TCP"}]}
    api, dns = policy["spec"]["egress"]
    assert {p["port"] for p in api["ports"]} == {443, 6443}
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}


def test_pdb_defaults_to_max_unavailable(render: Render) -> None:
    pdb = one(render(set_values={"podDisruptionBudget.enabled": "true"}), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]


def test_service_monitor_needs_the_service(render: Render) -> None:
    with pytest.raises(HelmError, match=r"requires metrics\.service\.enabled"):
        render(
            set_values={
                "metrics.serviceMonitor.enabled": "true",
                "metrics.service.enabled": "false",
            }
        )


# -- CRDs ------------------------------------------------------------------------------


def _crd_files() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[doc["metadata"]["name"]] = doc
    return docs


def test_crds_not_templated_by_default(render: Render) -> None:
    assert not by_kind(render(), "CustomResourceDefinition")
    # --include-crds shows what Helm installs from crds/ on first install.
    names = {
        c["metadata"]["name"]
        for c in by_kind(render(include_crds=True), "CustomResourceDefinition")
    }
    assert names == set(_crd_files())


def test_crds_install_renders_the_crds_directory_with_keep(render: Render) -> None:
    rendered = {
        c["metadata"]["name"]: c
        for c in by_kind(render([CI / "crds-install-values.yaml"]), "CustomResourceDefinition")
    }
    files = _crd_files()
    assert set(rendered) == set(files)
    assert {"agents.agentic.stigmer.ai", "agentinstances.agentic.stigmer.ai"} <= set(rendered)
    for name, crd in rendered.items():
        assert crd["spec"] == files[name]["spec"], f"{name}: spec changed by templating"
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_crds_install_without_keep(render: Render) -> None:
    crds = by_kind(
        render(set_values={"crds.install": "true", "crds.keep": "false"}),
        "CustomResourceDefinition",
    )
    assert crds
    for crd in crds:
        assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})


# -- values schema ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("unknownKey", "1"),
        ("image.unknown", "x"),
        ("rbac.unknown", "x"),
        ("replicaCount", "0"),
        ("operator.logFormat", "xml"),
        ("operator.metricsPort", "70000"),
        ("rbac.namespaces[0]", "Not_A_Namespace"),
        ("image.pullPolicy", "Sometimes"),
        ("image.digest", "latest"),
        ("persistence.size", "lots"),
        ("podDisruptionBudget.minAvailable", "half"),
    ],
)
def test_schema_rejects_bad_values(render: Render, key: str, value: str) -> None:
    with pytest.raises(HelmError, match=r"(?i)schema|values don't meet"):
        render(set_values={key: value})


def test_schema_is_strict_at_the_top() -> None:

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])
    for key, sub in schema["properties"].items():
        if key in values and isinstance(values[key], dict) and "properties" in sub:
            assert set(values[key]) <= set(sub["properties"]), key
