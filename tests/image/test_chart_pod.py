"""The image runs as the chart's Pod runs it, against a real API server.

``helm template`` with the default values gives the Deployment; its Pod spec
becomes ``docker run`` flags (``stigmer_testing.pod_to_docker``: user and
fsGroup, read-only root, all capabilities dropped, no privilege escalation,
args, env, a tmpfs for the ``/tmp`` emptyDir, a host directory prepared like
a fresh PVC for the store, the memory limit, the chart ServiceAccount's
TokenRequest token, CA and namespace at the in-cluster path). The chart's
ServiceAccount, ClusterRole and ClusterRoleBinding come from the same
rendering, so the container has exactly the chart's permissions.

Then, as a user would see it: every example becomes Ready, the probes and
``/metrics`` answer on the chart's ports, the process really is UID 10001 with
no capabilities, nothing is written outside the store volume and ``/tmp``,
and after the container is replaced (``strategy: Recreate``) the store still
has the Agent's history.

A control plane of its own: the container serves the whole cluster (the
chart's default), which must not race the session's shared operator.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from stigmer_testing.controlplane import BUILD_HINT, BinariesMissingError, ControlPlane
from stigmer_testing.pod_to_docker import (
    PodEnvironment,
    container_port,
    docker_run_args,
    pod_spec,
    prepare_volume_dir,
    probe_url,
    the_container,
    write_service_account,
)
from tests.image.conftest import Docker

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "stigmer-operator"
EXAMPLES = REPO_ROOT / "examples"
RELEASE, RELEASE_NAMESPACE = "stigmer-operator", "stigmer-system"
EXAMPLES_NAMESPACE = "examples"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
#: What every example becomes, by namespace.
READY = {
    EXAMPLES_NAMESPACE: [
        "agent/code-reviewer",
        "agentinstance/code-reviewer-default",
        "agentinstance/code-reviewer-prod",
    ],
    RELEASE_NAMESPACE: ["agent/docs-assistant", "agentinstance/docs-assistant-default"],
}


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    try:
        control_plane = ControlPlane(crds=REPO_ROOT / "crds")
    except BinariesMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    with control_plane:
        yield control_plane


@pytest.fixture(scope="module")
def rendered(plane: ControlPlane) -> list[dict[str, Any]]:
    """The chart with its default values, as ``helm template`` renders it."""
    if plane.helm_path is None:
        pytest.fail(f"helm is not built in {plane.bin_dir}; {BUILD_HINT}", pytrace=False)
    out = subprocess.run(
        [str(plane.helm_path), "template", RELEASE, str(CHART), f"--namespace={RELEASE_NAMESPACE}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _one_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    return deployment


def _apply(plane: ControlPlane, manifest: str, namespace: str | None = None) -> None:
    where = ["-n", namespace] if namespace else []
    plane.kubectl("apply", "--server-side", *where, "-f", "-", input=manifest)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As servers bind (aiohttp too): connections in TIME_WAIT do not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _http(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _wait_http_ok(url: str, container: str, docker: Docker, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _http(url)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        state = docker("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        assert state == "running", f"container {state}:\n{_logs(docker, container)}"
        time.sleep(0.5)
    raise AssertionError(f"{url} not 200 within {timeout}s:\n{_logs(docker, container)}")


def _logs(docker: Docker, container: str) -> str:
    result = docker("logs", "--tail", "60", container, check=False)
    return result.stdout + result.stderr


def _wait_ready(plane: ControlPlane, timeout: float = 150) -> None:
    """Every example Ready (default instances appear only once the operator made them)."""
    deadline = time.monotonic() + timeout
    for namespace, objects in READY.items():
        for ref in objects:
            while True:
                left = max(1, int(deadline - time.monotonic()))
                result = plane.kubectl(
                    "wait",
                    "-n",
                    namespace,
                    "--for=condition=Ready",
                    f"--timeout={left}s",
                    ref,
                    check=False,
                    timeout=left + 30,
                )
                if result.returncode == 0:
                    break
                assert "NotFound" in result.stderr and time.monotonic() < deadline, (
                    f"{namespace}/{ref} not Ready: {result.stderr}"
                )
                time.sleep(0.5)


def _history(docker: Docker, container: str, ref: str) -> list[dict[str, Any]]:
    """``stigmer-operator store history`` inside the running container (like kubectl exec)."""
    out = docker(
        "exec", container, "stigmer-operator", "store", "history", "agent", ref, "-o", "json"
    ).stdout
    entries: list[dict[str, Any]] = json.loads(out)
    return entries


def _process_status(docker: Docker, container: str) -> dict[str, str]:
    out = docker("exec", container, "cat", "/proc/1/status").stdout
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def _mount_points(docker: Docker, container: str) -> set[str]:
    """Where the runtime mounted volumes, and every parent: the only paths it may add.

    Resolved inside the running container (``/var/run`` is a link to ``/run``).
    """
    inspected = json.loads(docker("inspect", container).stdout)[0]
    targets = [m["Destination"] for m in inspected["Mounts"]]
    targets += list((inspected["HostConfig"].get("Tmpfs") or {}).keys())
    resolved = docker("exec", container, "readlink", "-f", *targets).stdout.split()
    return {str(parent) for path in resolved for parent in (Path(path), *Path(path).parents)}


def _set_description(plane: ControlPlane, text: str) -> None:
    patch = json.dumps({"spec": {"description": text}})
    plane.kubectl(
        "patch", "agent", "code-reviewer", "-n", EXAMPLES_NAMESPACE, "--type=merge", "-p", patch
    )


def _wait_history(docker: Docker, container: str, length: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        entries = _history(docker, container, f"{EXAMPLES_NAMESPACE}/code-reviewer")
        if len(entries) >= length:
            return entries
        time.sleep(0.5)
    raise AssertionError(f"history has {len(entries)} versions, expected {length}: {entries}")


def test_image_runs_as_the_chart_pod(
    plane: ControlPlane,
    rendered: list[dict[str, Any]],
    docker: Docker,
    image: str,
    tmp_path: Path,
) -> None:
    deployment = _one_deployment(rendered)
    spec, container = pod_spec(deployment), the_container(deployment)
    # --network host: the Pod's ports are the host's, so they must be free.
    ports = [int(p["containerPort"]) for p in container.get("ports") or []]
    busy = [port for port in ports if not _port_free(port)]
    if busy:
        pytest.fail(f"ports {busy} of the chart's Pod are in use on this host", pytrace=False)

    # The chart's identity and permissions, from the same rendering.
    _apply(
        plane,
        json.dumps(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NAMESPACE}}
        ),
    )
    _apply(
        plane,
        json.dumps(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": EXAMPLES_NAMESPACE}}
        ),
    )
    rbac = [o for o in rendered if o["kind"] in RBAC_KINDS]
    assert {o["kind"] for o in rbac} >= {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    _apply(plane, yaml.safe_dump_all(rbac))
    token = plane.token_for(RELEASE_NAMESPACE, spec["serviceAccountName"])
    write_service_account(
        tmp_path / "serviceaccount",
        token=token,
        ca_cert=plane.ca_cert.read_bytes(),
        namespace=RELEASE_NAMESPACE,
    )
    claims = {}
    for volume in spec["volumes"]:
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            claims[claim] = tmp_path / "volumes" / claim
            prepare_volume_dir(claims[claim], spec)
    api = urlsplit(plane.server)
    assert api.hostname and api.port
    environment = PodEnvironment(
        pod_name=f"{deployment['metadata']['name']}-{uuid.uuid4().hex[:5]}",
        namespace=RELEASE_NAMESPACE,
        service_account_dir=tmp_path / "serviceaccount",
        api_host=api.hostname,
        api_port=api.port,
        claims=claims,
    )
    run_args = docker_run_args(deployment, image, environment)

    # The examples first, so that start -> Ready is what a restarted Pod costs.
    _apply(plane, (EXAMPLES / "agent.yaml").read_text(), EXAMPLES_NAMESPACE)
    _apply(plane, (EXAMPLES / "agent-instance.yaml").read_text(), EXAMPLES_NAMESPACE)
    _apply(plane, (EXAMPLES / "platform-agent.yaml").read_text())

    name = environment.pod_name
    try:
        started = time.monotonic()
        docker("run", "--detach", *run_args)
        _wait_ready(plane)
        print(f"\ncontainer start -> examples Ready: {time.monotonic() - started:.1f} s")

        for probe in ("livenessProbe", "readinessProbe"):
            _wait_http_ok(probe_url(container, probe), name, docker)
        status, metrics = _http(f"http://127.0.0.1:{container_port(container, 'metrics')}/metrics")
        assert status == 200 and "stigmer_reconcile_total" in metrics
        # The process and garbage-collector metrics every Python exporter has.
        assert "process_resident_memory_bytes" in metrics
        assert 'python_gc_collections_total{generation="2"}' in metrics

        # The flags took effect in the process itself.
        process = _process_status(docker, name)
        assert process["Uid"].split()[0] == "10001" and process["Gid"].split()[0] == "10001"
        assert int(process["CapEff"], 16) == 0 and int(process["CapBnd"], 16) == 0
        assert process["NoNewPrivs"].strip() == "1"

        _set_description(plane, "Reviews pull requests (second version).")
        before = _wait_history(docker, name, 2)
        mount_points = _mount_points(docker, name)

        docker("stop", name, timeout=180)
        exit_code = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert exit_code == "0", _logs(docker, name)
        # Nothing written outside the store volume and /tmp: the container's own
        # layer holds only the directories the runtime made to mount volumes on.
        changed = [line.split(maxsplit=1) for line in docker("diff", name).stdout.splitlines()]
        assert [path for _, path in changed if path not in mount_points] == [], changed
        docker("rm", name)

        # strategy: Recreate: a new container on the same volume keeps the store.
        docker("run", "--detach", *run_args)
        _wait_http_ok(probe_url(container, "readinessProbe"), name, docker)
        kept = _history(docker, name, f"{EXAMPLES_NAMESPACE}/code-reviewer")
        assert kept[len(kept) - len(before) :] == before, "history (newest first) lost on restart"
        _set_description(plane, "Reviews pull requests (third version).")
        after = _wait_history(docker, name, len(kept) + 1)
        assert after[len(after) - len(before) :] == before
        assert "third version" in json.dumps(after[0])
    except BaseException:
        print(_logs(docker, name))
        raise
    finally:
        docker("rm", "--force", name, check=False)
