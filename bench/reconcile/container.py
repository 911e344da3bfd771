"""The operator as the chart's Pod: its image under the chart's memory limit (``--image``).

Why: a process on the host has no memory limit, so it cannot show whether the
chart's defaults survive a burst. Here the chart is rendered with ``helm
template`` (its default values, except that it watches the bench's namespaces
and serves its ports on free ones: the container shares the host's network),
and :mod:`stigmer_testing.pod_to_docker` turns its Deployment into ``docker
run`` flags, including ``--memory`` from ``resources.limits.memory``. The
chart's ServiceAccount and RBAC objects are applied, so the container has
exactly the chart's permissions. ``--restart=on-failure`` stands in for the
kubelet: an OOM-killed operator comes back, and the bench reports it.

:class:`ContainerOperator` offers what the phases use of
:class:`~stigmer_testing.operator_process.OperatorProcess` (pid, ports, log,
start, stop), plus the container's cgroup memory and OOM record.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcessError, free_port
from stigmer_testing.pod_to_docker import (
    PodEnvironment,
    docker_run_args,
    pod_spec,
    prepare_volume_dir,
    quantity_bytes,
    the_container,
    write_service_account,
)

from .common import REPO_ROOT, WATCHED, log

CHART = REPO_ROOT / "charts" / "stigmer-operator"
RELEASE, RELEASE_NAMESPACE = "stigmer-operator", "stigmer-system"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
#: The ServiceAccount token must outlive the longest bench run.
TOKEN_SECONDS = 12 * 3600
MB = 2**20


def docker(*args: str, check: bool = True, timeout: float = 180) -> str:
    binary = shutil.which("docker")
    if binary is None:
        raise OperatorProcessError("--image needs the docker CLI and a Docker engine")
    result = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise OperatorProcessError(f"docker {' '.join(args[:2])}: {result.stderr.strip()}")
    return result.stdout


def render_chart(plane: ControlPlane, values: list[str]) -> list[dict[str, Any]]:
    """``helm template`` of the chart with its default values and ``--set`` ``values``."""
    if plane.helm_path is None:
        raise OperatorProcessError(f"helm is not built in {plane.bin_dir}")
    sets = [f"--set={value}" for value in values]
    command = [str(plane.helm_path), "template", RELEASE, str(CHART)]
    out = subprocess.run(
        [*command, f"--namespace={RELEASE_NAMESPACE}", *sets],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [document for document in yaml.safe_load_all(out) if document]


@dataclass
class CgroupMemory:
    """One reading of the container's memory cgroup, in MiB."""

    usage: float  # what the limit is enforced on (includes page cache)
    working_set: float  # usage minus inactive file pages: what the kubelet reports
    rss: float  # anonymous memory


def _cgroup_dir(container_id: str) -> Path | None:
    for candidate in (
        Path("/sys/fs/cgroup/memory/docker") / container_id,  # v1, cgroupfs driver
        Path("/sys/fs/cgroup/docker") / container_id,  # v2, cgroupfs driver
        Path("/sys/fs/cgroup/system.slice") / f"docker-{container_id}.scope",  # v2, systemd
    ):
        if candidate.is_dir():
            return candidate
    return None


def read_cgroup(directory: Path | None) -> CgroupMemory | None:
    if directory is None:
        return None
    try:
        stat = dict(
            (key, int(value))
            for key, value in (
                line.split() for line in (directory / "memory.stat").read_text().splitlines()
            )
        )
        v1 = (directory / "memory.usage_in_bytes").exists()
        usage = int((directory / ("memory.usage_in_bytes" if v1 else "memory.current")).read_text())
    except (OSError, ValueError):
        return None
    inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    rss = stat.get("total_rss", stat.get("anon", 0))
    return CgroupMemory(usage / MB, max(0, usage - inactive) / MB, rss / MB)


class ContainerOperator:
    """The chart's Pod as a Docker container, on a store directory that outlives it."""

    def __init__(
        self,
        plane: ControlPlane,
        image: str,
        workdir: Path,
        *,
        extra_args: list[str],
        chart_values: list[str],
    ) -> None:
        self.plane = plane
        self.image = image
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.log_path = workdir / "operator.log"
        self._extra_args = extra_args
        self._chart_values = chart_values
        self.oom_at_stop: dict[str, Any] = {}
        self._container: str | None = None
        self._exit_code: int | None = None
        self._container_id = ""
        self._cgroup: Path | None = None
        self._run_args = self._prepare()

    # -- preparation: the chart's objects in the cluster, the Pod as flags
    def _prepare(self) -> list[str]:
        values = [
            f"rbac.namespaces={{{','.join(WATCHED)}}}",
            f"operator.metricsPort={self.metrics_port}",
            f"operator.healthPort={self.health_port}",
        ]
        values += [f"operator.extraArgs[{i}]={arg}" for i, arg in enumerate(self._extra_args)]
        values += self._chart_values
        rendered = render_chart(self.plane, values)
        (deployment,) = [o for o in rendered if o["kind"] == "Deployment"]
        spec = pod_spec(deployment)
        limit = ((the_container(deployment).get("resources") or {}).get("limits") or {}).get(
            "memory"
        )
        self.memory_limit_mb = quantity_bytes(limit) / MB if limit else None
        self.plane.kubectl(
            "apply", "--server-side", "-f", "-",
            input=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": RELEASE_NAMESPACE}}),
        )  # fmt: skip
        rbac = [o for o in rendered if o["kind"] in RBAC_KINDS]
        self.plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(rbac))
        token = self.plane.token_for(
            RELEASE_NAMESPACE, spec["serviceAccountName"], expiration_seconds=TOKEN_SECONDS
        )
        write_service_account(
            self.workdir / "serviceaccount",
            token=token,
            ca_cert=self.plane.ca_cert.read_bytes(),
            namespace=RELEASE_NAMESPACE,
        )
        claims = {}
        for volume in spec.get("volumes") or []:
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                claims[claim] = self.workdir / "volumes" / claim
                prepare_volume_dir(claims[claim], spec)
        self.store_path = next(iter(claims.values()), self.workdir / "volumes") / "store"
        api = urlsplit(self.plane.server)
        assert api.hostname and api.port
        self._environment = PodEnvironment(
            pod_name="reconcile-bench-operator",
            namespace=RELEASE_NAMESPACE,
            service_account_dir=self.workdir / "serviceaccount",
            api_host=api.hostname,
            api_port=api.port,
            claims=claims,
        )
        self._deployment = deployment
        return docker_run_args(deployment, self.image, self._environment)

    # -- lifecycle
    @property
    def pid(self) -> int | None:
        """The operator's host pid (it is the container's first process)."""
        if self._cgroup is None:
            return None
        try:
            procs = (self._cgroup / "cgroup.procs").read_text().split()
        except OSError:
            return None
        return min((int(pid) for pid in procs), default=None)

    @property
    def returncode(self) -> int | None:
        state = self.state()
        if not state:
            return self._exit_code
        if state.get("Running") or state.get("Restarting"):
            return None
        return int(state.get("ExitCode", 0))

    def state(self) -> dict[str, Any]:
        if self._container is None:
            return {}
        out = docker("inspect", "--format", "{{json .State}}", self._container, check=False)
        return dict(json.loads(out)) if out.strip() else {}

    def restart_count(self) -> int:
        if self._container is None:
            return 0
        out = docker("inspect", "--format", "{{.RestartCount}}", self._container, check=False)
        return int(out.strip() or 0)

    def start(self) -> None:
        name = f"reconcile-bench-{uuid.uuid4().hex[:6]}"
        args = [a for a in self._run_args if not a.startswith(("--name=", "--hostname="))]
        self._container_id = docker(
            "run", "--detach", f"--name={name}", f"--hostname={name}", "--restart=on-failure",
            *args,
        ).strip()  # fmt: skip
        self._container = name
        self._cgroup = _cgroup_dir(self._container_id)
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise OperatorProcessError(f"container not healthy in time:\n{self.log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        """``docker stop`` (SIGTERM, then SIGKILL after ``timeout``), the log kept, then removed."""
        if self._container is None:
            return
        docker("stop", f"--time={int(timeout)}", self._container, check=False, timeout=timeout + 60)
        self._save_log()
        self._exit_code = int(self.state().get("ExitCode", 0))
        self.oom_at_stop = self.oom_record()
        docker("rm", "--force", self._container, check=False)
        self._container = None
        self._cgroup = None

    def _save_log(self) -> None:
        if self._container is None:
            return
        result = subprocess.run(
            ["docker", "logs", self._container], capture_output=True, text=True, check=False
        )
        with self.log_path.open("a") as out:
            out.write(result.stdout + result.stderr)

    def log_tail(self, lines: int = 60) -> str:
        if self._container is not None:
            result = subprocess.run(
                ["docker", "logs", "--tail", str(lines), self._container],
                capture_output=True,
                text=True,
                check=False,
            )
            return result.stdout + result.stderr
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- memory
    def cgroup_memory(self) -> CgroupMemory | None:
        return read_cgroup(self._cgroup)

    def oom_record(self) -> dict[str, Any]:
        state = self.state()
        return {"oom_killed": bool(state.get("OOMKilled")), "restarts": self.restart_count()}


def announce(operator: ContainerOperator) -> None:
    limit = operator.memory_limit_mb
    log(f"operator image {operator.image}, memory limit {limit:g} MiB" if limit else "no limit")
