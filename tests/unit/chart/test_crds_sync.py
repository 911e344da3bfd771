"""The chart ships the very CRDs in the top-level crds/ directory, byte for byte.

crds/ is generated from the pydantic models (and drift-tested there); the
chart's crds/ directory is a copy Helm installs on first install, and
templates/crds.yaml renders the same files when crds.install=true. When the
models change, regenerate crds/ and copy them:

    cp crds/*.yaml charts/stigmer-operator/crds/
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
TOP_LEVEL = REPO_ROOT / "crds"
CHART_CRDS = REPO_ROOT / "charts" / "stigmer-operator" / "crds"
FIX = "run: cp crds/*.yaml charts/stigmer-operator/crds/"

#: Not generated from the models: kopf's peering CRDs, used when peering is on.
KOPF_PEERING = "kopf-peering.yaml"


def _yaml_files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.glob("*.y*ml"))}


def test_top_level_crds_exist() -> None:
    names = set(_yaml_files(TOP_LEVEL))
    assert {"agents.agentic.stigmer.ai.yaml", "agentinstances.agentic.stigmer.ai.yaml"} <= names


@pytest.mark.parametrize("name", sorted(_yaml_files(TOP_LEVEL)))
def test_chart_crd_is_identical_to_top_level(name: str) -> None:
    chart_copy = CHART_CRDS / name
    assert chart_copy.is_file(), f"charts/stigmer-operator/crds/{name} is missing; {FIX}"
    assert chart_copy.read_bytes() == (TOP_LEVEL / name).read_bytes(), (
        f"charts/stigmer-operator/crds/{name} differs from crds/{name}; {FIX}"
    )


def test_chart_has_no_other_crds() -> None:
    extra = set(_yaml_files(CHART_CRDS)) - set(_yaml_files(TOP_LEVEL)) - {KOPF_PEERING}
    assert not extra, f"chart CRDs not in crds/: {sorted(extra)}; remove them or add them to crds/"


def test_kopf_peering_crds_are_kopf_dev_status_only() -> None:
    docs = [d for d in yaml.safe_load_all((CHART_CRDS / KOPF_PEERING).read_text()) if d]
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert set(by_name) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert by_name["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert by_name["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    for doc in docs:
        assert doc["kind"] == "CustomResourceDefinition"
        assert doc["spec"]["group"] == "kopf.dev"
        (version,) = doc["spec"]["versions"]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        schema = version["schema"]["openAPIV3Schema"]
        assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
