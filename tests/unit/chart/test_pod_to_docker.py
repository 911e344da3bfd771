"""The Pod-spec-to-``docker run`` translator the image tests rely on.

Against the chart's real rendering (a chart change shows here first) and
against small specs for what it must refuse rather than silently drop.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from chart_helpers import Render, one

from stigmer_testing.pod_to_docker import (
    SERVICE_ACCOUNT_DIR,
    PodEnvironment,
    UnsupportedPodSpec,
    docker_run_args,
    probe_url,
    quantity_bytes,
    the_container,
)

ENVIRONMENT = PodEnvironment(
    pod_name="stigmer-operator-abcde",
    namespace="stigmer-system",
    service_account_dir=Path("/sa"),
    api_host="127.0.0.1",
    api_port=6443,
    claims={"stigmer-operator-store": Path("/volumes/store")},
)


@pytest.fixture(scope="module")
def deployment(render: Render) -> dict[str, Any]:
    return one(render(), "Deployment")


def _flags(args: list[str], image: str = "img:1") -> tuple[list[str], list[str]]:
    at = args.index(image)
    return args[:at], args[at + 1 :]


def test_chart_pod_becomes_the_restricted_container(deployment: dict[str, Any]) -> None:
    flags, command = _flags(docker_run_args(deployment, "img:1", ENVIRONMENT))
    assert {
        "--user=10001:10001",
        "--group-add=10001",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        f"--memory={384 * 2**20}",
        f"--memory-swap={384 * 2**20}",
        "--network=host",
        "--env=POD_ID=stigmer-operator-abcde",
        "--env=POD_NAMESPACE=stigmer-system",
        "--env=KUBERNETES_SERVICE_HOST=127.0.0.1",
        "--env=KUBERNETES_SERVICE_PORT=6443",
        f"--tmpfs=/tmp:rw,mode=1777,size={64 * 2**20}",
        "--mount=type=bind,source=/volumes/store,target=/var/lib/stigmer",
        f"--mount=type=bind,source=/sa,target={SERVICE_ACCOUNT_DIR},readonly",
    } <= set(flags), flags
    assert not [f for f in flags if f.startswith("--cap-add")]
    assert command == the_container(deployment)["args"]
    assert command[0] == "run" and "--store-path=/var/lib/stigmer/store" in command


def test_chart_probes_resolve_named_ports(deployment: dict[str, Any]) -> None:
    container = the_container(deployment)
    assert probe_url(container, "livenessProbe") == "http://127.0.0.1:8081/healthz"
    assert probe_url(container, "readinessProbe") == "http://127.0.0.1:8081/healthz"


def test_a_chart_change_reaches_the_flags(render: Render) -> None:
    changed = one(render(set_values={"resources.limits.memory": "1Gi"}), "Deployment")
    flags, _ = _flags(docker_run_args(changed, "img:1", ENVIRONMENT))
    assert f"--memory={2**30}" in flags


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("128974848", 128974848)],
)
def test_quantities(quantity: str, expected: int) -> None:
    assert quantity_bytes(quantity) == expected


def _minimal() -> dict[str, Any]:
    return {
        "spec": {
            "template": {
                "spec": {
                    "securityContext": {"runAsUser": 10001},
                    "containers": [{"name": "c", "args": ["run"]}],
                }
            }
        }
    }


def _with(path: str, value: Any) -> dict[str, Any]:
    deployment = copy.deepcopy(_minimal())
    node = deployment["spec"]["template"]["spec"]
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[last] = value
    return deployment


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        ("containers.0.volumeMounts", [{"name": "x", "mountPath": "/x"}], "hostPath"),
        ("containers.0.env", [{"name": "S", "valueFrom": {"secretKeyRef": {}}}], "env S"),
        ("securityContext", {"runAsNonRoot": True, "runAsUser": 0}, "runAsNonRoot"),
        ("securityContext", {}, "no runAsUser"),
        ("initContainers", [{"name": "init"}], "init containers"),
    ],
)
def test_what_docker_cannot_reproduce_is_refused(path: str, value: Any, complaint: str) -> None:
    deployment = _with(path, value)
    deployment["spec"]["template"]["spec"]["volumes"] = [{"name": "x", "hostPath": {"path": "/"}}]
    with pytest.raises(UnsupportedPodSpec, match=complaint):
        docker_run_args(deployment, "img:1", ENVIRONMENT)


def test_command_becomes_the_entrypoint() -> None:
    deployment = _with("containers.0.command", ["python", "-m", "x"])
    flags, command = _flags(docker_run_args(deployment, "img:1", ENVIRONMENT))
    assert "--entrypoint=python" in flags
    assert command == ["-m", "x", "run"]
