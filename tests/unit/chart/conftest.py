"""Helm for the chart tests: the binary pinned and built by hack/controlplane.

The chart tests run the real ``helm`` (``lint``, ``template``), the one
``hack/controlplane/build.sh`` compiles into the same bin directory the
control-plane fixture uses. When it has not been built the tests fail (never
skip) and say how to build it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, NAMESPACE, RELEASE, HelmError, Render

from stigmer_testing.controlplane import BUILD_HINT, default_bin_dir, pinned_versions


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    path = default_bin_dir() / "helm"
    if not os.access(path, os.X_OK):
        pytest.fail(f"helm is not built ({path} missing); {BUILD_HINT}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def helm(helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """Run helm with isolated config/cache dirs; return stdout or raise HelmError."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str) -> str:
        result = subprocess.run(
            [str(helm_bin), *args], capture_output=True, text=True, env=env, timeout=120
        )
        if result.returncode != 0:
            raise HelmError(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result.stdout

    return run


@pytest.fixture(scope="session")
def kube_version() -> str:
    """The Kubernetes version of the test control plane, e.g. ``1.37.2``."""
    return pinned_versions().kubernetes.lstrip("v")


@pytest.fixture(scope="session")
def render(helm: Callable[..., str], kube_version: str) -> Render:
    """``helm template`` the chart; return the rendered objects."""

    def run(
        values: Sequence[Path] = (),
        set_values: Mapping[str, str] | None = None,
        *,
        namespace: str = NAMESPACE,
        include_crds: bool = False,
    ) -> list[dict[str, Any]]:
        args = [
            "template",
            RELEASE,
            str(CHART),
            f"--namespace={namespace}",
            f"--kube-version={kube_version}",
        ]
        if include_crds:
            args.append("--include-crds")
        for file in values:
            args.append(f"--values={file}")
        for key, value in (set_values or {}).items():
            args.append(f"--set={key}={value}")
        return [d for d in yaml.safe_load_all(helm(*args)) if d]

    return run
