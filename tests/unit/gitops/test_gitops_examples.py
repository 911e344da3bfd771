"""The GitOps examples (Kustomize, Flux, Argo CD) and the docs that embed the health check.

deploy/argocd/health.lua is the one copy of the Argo CD health check; the
argocd-cm patch in examples/argocd and the snippet in docs/gitops.md embed it
verbatim for both kinds, and the Flux CEL health checks use the same list of
transient reasons. The Kustomize base is built with the project's kubectl and
its custom resources are validated by the operator's own validation contract.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stigmer_operator.api.kinds import API_VERSION, Kind
from stigmer_operator.api.validation import validate_spec
from stigmer_testing.controlplane import BUILD_HINT, default_bin_dir

REPO_ROOT = Path(__file__).resolve().parents[3]
HEALTH_LUA = REPO_ROOT / "deploy" / "argocd" / "health.lua"
KUSTOMIZE = REPO_ROOT / "examples" / "kustomize"
ARGOCD = REPO_ROOT / "examples" / "argocd"
FLUX = REPO_ROOT / "examples" / "flux"
GITOPS_DOC = REPO_ROOT / "docs" / "gitops.md"
HEALTH_KEYS = {
    f"resource.customizations.health.agentic.stigmer.ai_{kind}"
    for kind in ("Agent", "AgentInstance")
}
REPO_URLS = {
    "https://github.com/stigmer/stigmer-operator",
    "https://github.com/stigmer/stigmer-operator.git",
}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _embedding_hint() -> str:
    body = "".join(
        ("    " + line if line.strip() else line)
        for line in HEALTH_LUA.read_text().splitlines(keepends=True)
    )
    keys = "".join(f"  {key}: |\n{body}" for key in sorted(HEALTH_KEYS))
    return f"expected, under `data:`:\n{keys}"


# -- the Argo CD health check, one source ---------------------------------------------


def test_argocd_cm_embeds_the_health_check_verbatim() -> None:
    (config_map,) = _docs(ARGOCD / "argocd-cm.yaml")
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
    }
    assert set(config_map["data"]) == HEALTH_KEYS
    for key in HEALTH_KEYS:
        assert config_map["data"][key] == HEALTH_LUA.read_text(), _embedding_hint()


def _fenced_yaml(markdown: str) -> list[Any]:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def test_docs_snippet_embeds_the_health_check_verbatim() -> None:
    snippets = [
        block
        for block in _fenced_yaml(GITOPS_DOC.read_text())
        if isinstance(block, dict) and HEALTH_KEYS & set(block.get("data", {}))
    ]
    assert len(snippets) == 1, "docs/gitops.md shows the argocd-cm snippet once"
    (snippet,) = snippets
    assert set(snippet["data"]) == HEALTH_KEYS
    for key in HEALTH_KEYS:
        assert snippet["data"][key] == HEALTH_LUA.read_text(), _embedding_hint()


def _lua_transient_reasons() -> set[str]:
    table = re.search(
        r"local TRANSIENT_REASONS = \{(.*?)\}", HEALTH_LUA.read_text(), flags=re.DOTALL
    )
    assert table is not None
    return set(re.findall(r"(\w+) = true", table.group(1)))


def test_flux_cel_and_lua_agree_on_transient_reasons() -> None:
    (_, kustomization) = _docs(FLUX / "kustomization.yaml")
    exprs = kustomization["spec"]["healthCheckExprs"]
    for expr in exprs:
        listed = re.search(r"c\.reason in \[(.*?)\]", expr["failed"], flags=re.DOTALL)
        assert listed is not None
        assert set(re.findall(r"'(\w+)'", listed.group(1))) == _lua_transient_reasons()
        assert "startsWith('Waiting')" in expr["failed"]
        assert 'string.sub(reason, 1, 7) == "Waiting"' in HEALTH_LUA.read_text()


# -- Kustomize --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubectl() -> Path:
    path = default_bin_dir() / "kubectl"
    if not os.access(path, os.X_OK):
        pytest.fail(f"kubectl is not built ({path} missing); {BUILD_HINT}", pytrace=False)
    return path


@pytest.fixture(scope="module")
def built(kubectl: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize examples/kustomize``: what Flux or Argo CD would apply."""
    result = subprocess.run(
        [str(kubectl), "kustomize", str(KUSTOMIZE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((KUSTOMIZE / "kustomization.yaml").read_text())
    files = {p.name for p in KUSTOMIZE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_kustomize_build_puts_everything_in_the_namespace(built: list[dict[str, Any]]) -> None:
    namespaces = [d for d in built if d["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == ["support-agents"]
    for obj in built:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "support-agents", obj["metadata"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "support-agents"


def test_kustomize_has_two_agents_and_an_extra_instance(built: list[dict[str, Any]]) -> None:
    agents = {d["metadata"]["name"] for d in built if d["kind"] == "Agent"}
    instances = [d for d in built if d["kind"] == "AgentInstance"]
    assert len(agents) >= 2
    assert instances
    for instance in instances:
        assert instance["spec"]["agentRef"]["name"] in agents
        assert not instance["metadata"]["name"].endswith("-default"), (
            "default instances are the operator's, not Git's"
        )


def test_kustomize_custom_resources_pass_the_validation_contract(
    built: list[dict[str, Any]],
) -> None:
    resources = [d for d in built if d["apiVersion"] == API_VERSION]
    assert resources
    for resource in resources:
        validate_spec(Kind.parse(resource["kind"]), resource["spec"])


def test_kustomize_ships_configmaps_but_no_secrets(built: list[dict[str, Any]]) -> None:
    shipped = {(d["kind"], d["metadata"]["name"]) for d in built}
    assert not [d for d in built if d["kind"] == "Secret"], "no Secrets in Git"
    for instance in (d for d in built if d["kind"] == "AgentInstance"):
        for ref in instance["spec"].get("environmentRefs", []):
            if ref["kind"] == "ConfigMap":
                assert ("ConfigMap", ref["name"]) in shipped


# -- Flux and Argo CD --------------------------------------------------------------------


def test_flux_kustomization_waits_for_the_agents() -> None:
    source, kustomization = _docs(FLUX / "kustomization.yaml")
    assert source["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert source["kind"] == "GitRepository"
    assert source["spec"]["url"] in REPO_URLS
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    spec = kustomization["spec"]
    assert spec["wait"] is True
    assert spec["prune"] is True
    assert spec["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
    assert (REPO_ROOT / spec["path"]).resolve() == KUSTOMIZE
    kinds = {(e["apiVersion"], e["kind"]) for e in spec["healthCheckExprs"]}
    assert kinds == {(API_VERSION, "Agent"), (API_VERSION, "AgentInstance")}
    for expr in spec["healthCheckExprs"]:
        assert "metadata.generation" in expr["current"] and "'Ready'" in expr["current"]
        assert "'False'" in expr["failed"]


def test_flux_helmrelease_installs_the_chart() -> None:
    (release,) = _docs(FLUX / "helmrelease.yaml")
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    chart = release["spec"]["chart"]["spec"]
    assert (REPO_ROOT / chart["chart"] / "Chart.yaml").is_file()
    (source, _) = _docs(FLUX / "kustomization.yaml")
    assert chart["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
    assert release["spec"]["install"]["crds"] == "Create"
    assert release["spec"]["upgrade"]["crds"] == "CreateReplace"


def test_argocd_applications_point_at_this_repository() -> None:
    apps = {a["metadata"]["name"]: a for a in _docs(ARGOCD / "application.yaml")}
    assert set(apps) == {"stigmer-operator", "support-agents"}
    for app in apps.values():
        assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
        assert app["spec"]["source"]["repoURL"] in REPO_URLS
        assert (REPO_ROOT / app["spec"]["source"]["path"]).is_dir()
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    operator, agents = apps["stigmer-operator"], apps["support-agents"]
    assert (REPO_ROOT / operator["spec"]["source"]["path"] / "Chart.yaml").is_file()
    assert (REPO_ROOT / agents["spec"]["source"]["path"]).resolve() == KUSTOMIZE
    wave = "argocd.argoproj.io/sync-wave"
    assert int(operator["metadata"]["annotations"][wave]) < int(
        agents["metadata"]["annotations"][wave]
    )
    assert "SkipDryRunOnMissingResource=true" in agents["spec"]["syncPolicy"]["syncOptions"]
