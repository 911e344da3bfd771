"""A Deployment's Pod spec as ``docker run`` flags: the image tests run the chart's Pod.

Why: there is no kubelet here, but the image must be proven to work the way
the chart's Pod runs it (user and fsGroup, read-only root, no capabilities,
no privilege escalation, its args and env, its volumes, its memory limit, a
ServiceAccount token at the in-cluster path). Every flag is derived from the
rendered Pod spec, so a chart change reaches the test without anyone
remembering to update it; whatever this translator cannot reproduce
faithfully raises :class:`UnsupportedPodSpec` instead of being dropped.

What the kubelet does that Docker does not, and how it is stood in for:

* The ServiceAccount volume: the caller writes ``token``, ``ca.crt`` and
  ``namespace`` into a directory (:func:`write_service_account`), mounted
  read-only at :data:`SERVICE_ACCOUNT_DIR`, and gives the API server's
  address (``KUBERNETES_SERVICE_HOST/PORT``).
* PersistentVolumeClaims: a host directory per claim, prepared the way the
  kubelet applies ``fsGroup`` (:func:`prepare_volume_dir`).
* ``emptyDir``: a tmpfs of the ``sizeLimit``, world-writable like the
  kubelet's.
* The network: the host's (``--network host``), so the operator reaches an
  API server bound to 127.0.0.1 and its ports are the Pod's ports.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where a Pod finds its ServiceAccount token, CA and namespace.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


class UnsupportedPodSpec(ValueError):
    """The Pod spec asks for something ``docker run`` cannot reproduce here."""


@dataclass(frozen=True)
class PodEnvironment:
    """What the kubelet and the cluster would supply to the Pod."""

    pod_name: str
    namespace: str
    #: Host directory with ``token``, ``ca.crt`` and ``namespace``.
    service_account_dir: Path
    api_host: str
    api_port: int
    #: PersistentVolumeClaim name -> host directory standing in for it.
    claims: Mapping[str, Path]


def quantity_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity (``512Mi``, ``1G``, ``1024``) in bytes."""
    match = _QUANTITY.match(str(quantity))
    if match is None:
        raise UnsupportedPodSpec(f"cannot read the quantity {quantity!r}")
    number, suffix = match.groups()
    factor = _BINARY.get(suffix) or _DECIMAL.get(suffix)
    if factor is None:
        raise UnsupportedPodSpec(f"unknown quantity suffix in {quantity!r}")
    return int(float(number) * factor)


def pod_spec(deployment: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def the_container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The Pod's one container (sidecars and init containers are not supported)."""
    spec = pod_spec(deployment)
    if spec.get("initContainers"):
        raise UnsupportedPodSpec("init containers")
    containers: list[dict[str, Any]] = spec["containers"]
    if len(containers) != 1:
        raise UnsupportedPodSpec(f"{len(containers)} containers (one is supported)")
    return containers[0]


def container_port(container: Mapping[str, Any], port: str | int) -> int:
    """A probe's ``port``: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise UnsupportedPodSpec(f"the container declares no port named {port!r}")


def probe_url(container: Mapping[str, Any], probe: str, host: str = "127.0.0.1") -> str:
    """``http://host:port/path`` of the container's ``livenessProbe``/``readinessProbe``."""
    http_get = (container.get(probe) or {}).get("httpGet")
    if http_get is None:
        raise UnsupportedPodSpec(f"{probe} is not an httpGet probe")
    scheme = str(http_get.get("scheme", "HTTP")).lower()
    port = container_port(container, http_get["port"])
    return f"{scheme}://{host}:{port}{http_get.get('path', '/')}"


def effective_security(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The container's securityContext over the Pod's (the container's wins)."""
    pod_level = pod_spec(deployment).get("securityContext") or {}
    container_level = the_container(deployment).get("securityContext") or {}
    inherited = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
    merged = {key: pod_level[key] for key in inherited if key in pod_level}
    merged.update(container_level)
    return merged


def docker_run_args(
    deployment: Mapping[str, Any], image: str, environment: PodEnvironment
) -> list[str]:
    """``docker run`` arguments (without ``docker run`` itself) for the Deployment's Pod.

    ``image`` replaces the chart's image reference: the chart names a
    registry image, the test runs the image it has just built.
    """
    spec = pod_spec(deployment)
    container = the_container(deployment)
    args = [
        f"--name={environment.pod_name}",
        f"--hostname={environment.pod_name}",
        "--network=host",
        *_security_flags(spec, effective_security(deployment)),
        *_resource_flags(container.get("resources") or {}),
        *_env_flags(container, environment),
        *_volume_flags(spec, container, environment),
    ]
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None:
        args.append(f"--stop-timeout={int(grace)}")
    if container.get("workingDir"):
        args.append(f"--workdir={container['workingDir']}")
    command: list[str] = list(container.get("command") or [])
    if command:
        args.append(f"--entrypoint={command[0]}")
    return [*args, image, *command[1:], *(str(a) for a in container.get("args") or [])]


def _security_flags(spec: Mapping[str, Any], security: Mapping[str, Any]) -> list[str]:
    uid, gid = security.get("runAsUser"), security.get("runAsGroup")
    if uid is None:
        raise UnsupportedPodSpec("no runAsUser: the image's USER would decide")
    if security.get("runAsNonRoot") and int(uid) == 0:
        raise UnsupportedPodSpec("runAsNonRoot with runAsUser 0 would not start")
    if security.get("privileged"):
        raise UnsupportedPodSpec("privileged containers")
    user = f"{int(uid)}:{int(gid)}" if gid is not None else str(int(uid))
    flags = [f"--user={user}"]
    pod_security = spec.get("securityContext") or {}
    if "fsGroup" in pod_security:
        flags.append(f"--group-add={int(pod_security['fsGroup'])}")
    for group in pod_security.get("supplementalGroups") or []:
        flags.append(f"--group-add={int(group)}")
    if security.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    capabilities = security.get("capabilities") or {}
    flags += [f"--cap-drop={cap}" for cap in capabilities.get("drop") or []]
    flags += [f"--cap-add={cap}" for cap in capabilities.get("add") or []]
    if security.get("allowPrivilegeEscalation") is False:
        flags.append("--security-opt=no-new-privileges")
    seccomp = (security.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        flags.append("--security-opt=seccomp=unconfined")
    elif seccomp != "RuntimeDefault":  # Docker's default profile is the runtime default
        raise UnsupportedPodSpec(f"seccompProfile {seccomp}")
    return flags


def _resource_flags(resources: Mapping[str, Any]) -> list[str]:
    limits = resources.get("limits") or {}
    flags = []
    if "memory" in limits:
        memory = quantity_bytes(limits["memory"])
        # No swap, as on a kubelet node: the limit is the container's memory.
        flags += [f"--memory={memory}", f"--memory-swap={memory}"]
    if "cpu" in limits:
        cpu = str(limits["cpu"])
        cpus = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
        flags.append(f"--cpus={cpus:g}")
    return flags


def _env_flags(container: Mapping[str, Any], environment: PodEnvironment) -> list[str]:
    fields = {
        "metadata.name": environment.pod_name,
        "metadata.namespace": environment.namespace,
    }
    env = {
        # What the kubelet sets for the `kubernetes` Service (in-cluster config).
        "KUBERNETES_SERVICE_HOST": environment.api_host,
        "KUBERNETES_SERVICE_PORT": str(environment.api_port),
    }
    if container.get("envFrom"):
        raise UnsupportedPodSpec("envFrom")
    for variable in container.get("env") or []:
        name = variable["name"]
        if "value" in variable:
            env[name] = str(variable["value"])
            continue
        field_path = ((variable.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field_path not in fields:
            raise UnsupportedPodSpec(f"env {name}: only value and {sorted(fields)} fieldRefs")
        env[name] = fields[field_path]
    return [f"--env={name}={value}" for name, value in env.items()]


def _volume_flags(
    spec: Mapping[str, Any], container: Mapping[str, Any], environment: PodEnvironment
) -> list[str]:
    volumes = {volume["name"]: volume for volume in spec.get("volumes") or []}
    flags = []
    for mount in container.get("volumeMounts") or []:
        if mount.get("subPath") or mount.get("subPathExpr"):
            raise UnsupportedPodSpec(f"subPath on {mount['name']}")
        volume = volumes[mount["name"]]
        target = mount["mountPath"]
        read_only = ",readonly" if mount.get("readOnly") else ""
        if "emptyDir" in volume:
            options = ["rw", "mode=1777"]  # the kubelet's emptyDir is world-writable
            size = (volume["emptyDir"] or {}).get("sizeLimit")
            if size is not None:
                options.append(f"size={quantity_bytes(size)}")
            flags.append(f"--tmpfs={target}:{','.join(options)}")
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim not in environment.claims:
                raise UnsupportedPodSpec(f"no host directory for the claim {claim}")
            source = environment.claims[claim]
            flags.append(f"--mount=type=bind,source={source},target={target}{read_only}")
        else:
            kinds = sorted(set(volume) - {"name"})
            raise UnsupportedPodSpec(f"volume {mount['name']} of type {kinds}")
    if spec.get("automountServiceAccountToken", True):
        flags.append(
            f"--mount=type=bind,source={environment.service_account_dir},"
            f"target={SERVICE_ACCOUNT_DIR},readonly"
        )
    return flags


def prepare_volume_dir(path: Path, spec: Mapping[str, Any]) -> None:
    """Make ``path`` look like a fresh volume the kubelet mounted for this Pod.

    A new volume is root's; with ``fsGroup`` the kubelet gives it to that
    group, group-writable and set-group-ID, so the non-root user can write.
    """
    path.mkdir(parents=True, exist_ok=True)
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    if fs_group is None:
        return
    os.chown(path, 0, int(fs_group))
    path.chmod(0o775 | stat.S_ISGID)


def write_service_account(directory: Path, *, token: str, ca_cert: bytes, namespace: str) -> None:
    """The projected ServiceAccount volume's three files (readable by any UID, as 0644)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for name, content in (
        ("token", token.encode()),
        ("ca.crt", ca_cert),
        ("namespace", namespace.encode()),
    ):
        file = directory / name
        file.write_bytes(content)
        file.chmod(0o644)
