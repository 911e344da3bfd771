"""A real, local Kubernetes control plane for tests and local runs.

Why this exists: the operator's integration and end-to-end tests must run
against the real thing (etcd, kube-apiserver with RBAC, kube-controller-manager
with the garbage collector), not a mock, on machines that reach only package
registries. The binaries are therefore compiled from Go modules by
``hack/controlplane/build.sh`` (``make controlplane``) into a cache directory
keyed by the pinned versions, and this module starts them as plain processes
on loopback ports: no Docker, no kind, no kubelet (pods never run, which the
operator does not need).

What :class:`ControlPlane` gives a test:

* etcd (``--unsafe-no-fsync``, data in a temporary directory),
* kube-apiserver bound to 127.0.0.1 only, serving a locally generated
  certificate, ``Node,RBAC`` authorization, an admin identity (client
  certificate in ``system:masters``) and service-account token signing, so the
  TokenRequest API can mint tokens that act as a least-privileged identity,
* kube-controller-manager running the garbage collector, namespace,
  serviceaccount and serviceaccount-token controllers (and the root CA
  publisher), so ownerReferences and namespace deletion behave as in a cluster,
* an admin kubeconfig, CRD application, tokens for ServiceAccounts, and
  restarts of etcd and the apiserver on the same ports and data (for outage
  tests).

Every process runs in its own process group and is stopped with SIGTERM then
SIGKILL by :meth:`ControlPlane.stop`, which also runs from ``atexit`` and from
the context manager's exit; on Linux each process is additionally asked to be
killed when the thread that started it dies, so even a SIGKILLed test runner
leaves nothing behind.

Run it by hand with ``python -m stigmer_testing.controlplane``.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import kubernetes
import yaml

__all__ = [
    "BUILD_HINT",
    "BinariesMissingError",
    "ControlPlane",
    "ControlPlaneError",
    "PinnedVersions",
    "default_bin_dir",
    "find_binaries",
    "pinned_versions",
]

#: testing/stigmer_testing/controlplane.py -> repository root.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where the Go modules that pin the control-plane versions live.
RECIPE_DIR = REPO_ROOT / "hack" / "controlplane"

BUILD_HINT = (
    "build them with `make controlplane` (runs hack/controlplane/build.sh; "
    "needs Go >= 1.26 and the Go module proxy, about 10 minutes cold on 2 cores), "
    "or point STIGMER_CONTROLPLANE_BIN at a directory holding them"
)

#: Binaries the control plane cannot start without.
REQUIRED_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")

#: ClusterIP range handed to the apiserver; its first address is the
#: ``kubernetes`` Service and is put in the serving certificate.
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
_KUBERNETES_SERVICE_IP = "10.0.0.1"
_SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

#: Controllers the operator's behaviour depends on: ownerReference garbage
#: collection, namespace deletion, default ServiceAccounts and their tokens,
#: the kube-root-ca.crt ConfigMap and aggregated ClusterRoles (admin/edit/view).
#: Nothing that needs a node or pods.
_KCM_CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, reached or used."""


class BinariesMissingError(ControlPlaneError):
    """The control-plane binaries have not been built yet."""


# --------------------------------------------------------------------------
# Pinned versions and binaries
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PinnedVersions:
    """Versions pinned by the go.mod files in ``hack/controlplane``."""

    kubernetes: str  # e.g. "v1.37.2"
    etcd: str  # e.g. "v3.6.16"
    helm: str  # e.g. "v3.22.0"

    @property
    def cache_key(self) -> str:
        """Directory name under the cache root; the same as build.sh uses."""
        return f"{self.kubernetes}-etcd{self.etcd.lstrip('v')}-helm{self.helm.lstrip('v')}"


def _gomod_version(gomod: Path, module: str) -> str:
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    try:
        text = gomod.read_text()
    except OSError as exc:
        raise ControlPlaneError(f"cannot read {gomod}: {exc}") from exc
    match = pattern.search(text)
    if match is None:
        raise ControlPlaneError(f"{module} is not required in {gomod}")
    return match.group(1)


def pinned_versions(recipe_dir: Path = RECIPE_DIR) -> PinnedVersions:
    """Read the pinned versions from the build recipe's go.mod files."""
    return PinnedVersions(
        kubernetes=_gomod_version(recipe_dir / "kubernetes" / "go.mod", "k8s.io/kubernetes"),
        etcd=_gomod_version(recipe_dir / "etcd" / "go.mod", "go.etcd.io/etcd/server/v3"),
        helm=_gomod_version(recipe_dir / "helm" / "go.mod", "helm.sh/helm/v3"),
    )


def default_bin_dir() -> Path:
    """``$STIGMER_CONTROLPLANE_BIN``, else the cache directory build.sh fills."""
    explicit = os.environ.get("STIGMER_CONTROLPLANE_BIN")
    if explicit:
        return Path(explicit)
    cache_root = os.environ.get("STIGMER_CONTROLPLANE_CACHE") or str(
        Path.home() / ".cache" / "stigmer-operator" / "controlplane"
    )
    return Path(cache_root) / pinned_versions().cache_key / "bin"


def find_binaries(bin_dir: Path | None = None) -> Path:
    """Return the directory holding the control-plane binaries.

    Raises :class:`BinariesMissingError`, saying how to build them, when any
    required binary is absent.
    """
    directory = bin_dir if bin_dir is not None else default_bin_dir()
    missing = [name for name in REQUIRED_BINARIES if not os.access(directory / name, os.X_OK)]
    if missing:
        raise BinariesMissingError(
            f"control-plane binaries missing in {directory}: {', '.join(missing)}; " + BUILD_HINT
        )
    return directory


# --------------------------------------------------------------------------
# Certificates and keys
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pki:
    ca_cert: Path
    apiserver_cert: Path
    apiserver_key: Path
    admin_cert: Path
    admin_key: Path
    kcm_cert: Path
    kcm_key: Path
    sa_key: Path
    sa_pub: Path


def _make_pki(directory: Path) -> _Pki:
    """Generate a throw-away CA, serving/client certificates and SA keys.

    ``cryptography`` is imported here, not at module level, so that importing
    this module (e.g. from conftest.py in a unit-test-only run) never needs it.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ControlPlaneError(
            f"the control plane needs the 'cryptography' package to make its certificates: {exc}"
        ) from exc

    def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def _pem_cert(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=7)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stigmer-controlplane-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        common_name: str,
        organizations: Sequence[str],
        usage: x509.ObjectIdentifier,
        sans: Sequence[x509.GeneralName] = (),
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return _pem_cert(cert), _pem_key(key)

    serving_sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address(_KUBERNETES_SERVICE_IP)),
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
    ]
    apiserver = leaf("kube-apiserver", (), ExtendedKeyUsageOID.SERVER_AUTH, serving_sans)
    admin = leaf("stigmer-admin", ("system:masters",), ExtendedKeyUsageOID.CLIENT_AUTH)
    kcm = leaf("system:kube-controller-manager", (), ExtendedKeyUsageOID.CLIENT_AUTH)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_pub = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    pki = _Pki(
        ca_cert=directory / "ca.crt",
        apiserver_cert=directory / "apiserver.crt",
        apiserver_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        kcm_cert=directory / "kube-controller-manager.crt",
        kcm_key=directory / "kube-controller-manager.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )
    files: dict[Path, bytes] = {
        pki.ca_cert: _pem_cert(ca_cert),
        pki.apiserver_cert: apiserver[0],
        pki.apiserver_key: apiserver[1],
        pki.admin_cert: admin[0],
        pki.admin_key: admin[1],
        pki.kcm_cert: kcm[0],
        pki.kcm_key: kcm[1],
        pki.sa_key: _pem_key(sa_key),
        pki.sa_pub: sa_pub,
    }
    for path, data in files.items():
        path.write_bytes(data)
        path.chmod(0o600)
    return pki


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    user: str,
    credentials: Mapping[str, str],
) -> Path:
    """Write a self-contained kubeconfig (all certificates embedded)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "stigmer",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": dict(credentials)}],
        "contexts": [{"name": user, "context": {"cluster": "stigmer", "user": user}}],
        "current-context": user,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Child-side hook: get SIGKILL when the parent thread dies (Linux only)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # state is the field after the parenthesised command name
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


class _Component:
    """One control-plane process, restartable with the same arguments."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"\n==== start {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so killpg reaches it all
            preexec_fn=_die_with_parent,  # only calls prctl, safe after fork
        )

    def stop(self, timeout: float = 10.0, *, kill: bool = False) -> None:
        """SIGTERM (or, with ``kill``, SIGKILL at once), then SIGKILL after ``timeout``."""
        proc = self.proc
        if proc is not None:
            try:
                if proc.poll() is None:
                    self._signal(proc, signal.SIGKILL if kill else signal.SIGTERM)
                    try:
                        proc.wait(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        self._signal(proc, signal.SIGKILL)
                        proc.wait(timeout=10)
                # The group may hold stragglers even when the leader is gone.
                self._signal(proc, signal.SIGKILL)
            finally:
                self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                if proc.poll() is None:
                    proc.send_signal(sig)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open until all are chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# The control plane
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiResponse:
    """Result of :meth:`ControlPlane.api_request`."""

    status: int
    body: dict[str, Any]


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on loopback.

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with ControlPlane() as cp:
            cp.apply_crds("crds")
            token = cp.token_for("default", "reader")
            kubeconfig = cp.kubeconfig_for_token(token)

    Attributes worth knowing: :attr:`admin_kubeconfig`, :attr:`server`,
    :attr:`versions`, :attr:`pids`, :attr:`startup_seconds`, :attr:`workdir`,
    :attr:`audit_log` (with ``audit_policy``).
    """

    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        workdir: Path | None = None,
        keep_workdir: bool = False,
        startup_timeout: float = 120.0,
        stop_timeout: float = 10.0,
        crds: Path | None = None,
        audit_policy: Path | None = None,
    ) -> None:
        self.bin_dir = find_binaries(bin_dir)
        #: CRDs applied *before* kube-controller-manager starts, so its garbage
        #: collector knows the custom kinds from the first moment (it only
        #: re-reads discovery every 30 s).
        self.crds = crds
        self.versions = pinned_versions()
        self._own_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="stigmer-controlplane-")) if workdir is None else workdir
        )
        self.keep_workdir = keep_workdir
        #: The API server's audit policy, and the log it writes by it
        #: (``None`` without a policy): which client sent which request.
        self.audit_policy = audit_policy
        self.audit_log = self.workdir / "audit.log" if audit_policy is not None else None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.startup_seconds: float | None = None

        etcd_client, etcd_peer, api_port, kcm_port = _free_ports(4)
        self.etcd_url = f"http://127.0.0.1:{etcd_client}"
        self.server = f"https://127.0.0.1:{api_port}"
        self._kcm_port = kcm_port
        self._etcd_peer_url = f"http://127.0.0.1:{etcd_peer}"

        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
        self._pki: _Pki | None = None
        self._ssl: ssl.SSLContext | None = None
        self._components: dict[str, _Component] = {}
        self._token_kubeconfigs = 0
        self._started = False
        self._atexit_registered = False

    # -- context manager ---------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- public properties -------------------------------------------------

    @property
    def pids(self) -> dict[str, int]:
        """Pids of the processes currently running, by component name."""
        return {
            name: comp.pid
            for name, comp in self._components.items()
            if comp.running and comp.pid is not None
        }

    @property
    def ca_cert(self) -> Path:
        """CA certificate that signed the apiserver's serving certificate."""
        return self._require_pki().ca_cert

    @property
    def kubectl_path(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def helm_path(self) -> Path | None:
        """The pinned helm binary, if it has been built."""
        path = self.bin_dir / "helm"
        return path if os.access(path, os.X_OK) else None

    def log_path(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        """Start etcd, kube-apiserver and kube-controller-manager; wait until ready."""
        if self._started:
            return
        self._started = True
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        began = time.monotonic()
        try:
            self._pki = _make_pki(self.workdir / "pki")
            self._ssl = self._admin_ssl_context()
            self._write_admin_kubeconfigs()
            self._components = {
                "etcd": _Component("etcd", self._etcd_argv(), self.log_path("etcd")),
                "kube-apiserver": _Component(
                    "kube-apiserver", self._apiserver_argv(), self.log_path("kube-apiserver")
                ),
                "kube-controller-manager": _Component(
                    "kube-controller-manager",
                    self._kcm_argv(),
                    self.log_path("kube-controller-manager"),
                ),
            }
            deadline = began + self.startup_timeout
            self.start_etcd(deadline=deadline)
            self.start_apiserver(deadline=deadline)
            if self.crds is not None:
                self.apply_crds(self.crds)
            self._components["kube-controller-manager"].start()
            self._wait_controller_manager(deadline)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and remove the workdir.

        Safe to call more than once, and from atexit.
        """
        errors: list[str] = []
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            comp = self._components.get(name)
            if comp is None:
                continue
            try:
                comp.stop(self.stop_timeout)
            except Exception as exc:  # keep stopping the others
                errors.append(f"{name}: {exc}")
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._started = False
        if errors:
            raise ControlPlaneError("failed to stop: " + "; ".join(errors))

    def stop_etcd(self, *, kill: bool = False) -> None:
        """Stop etcd: SIGTERM (a graceful stop takes ~7 s while the apiserver
        holds watches), or SIGKILL with ``kill`` (a crash; no data is lost,
        as the page cache outlives the process)."""
        self._components["etcd"].stop(self.stop_timeout, kill=kill)

    def start_etcd(self, *, deadline: float | None = None) -> None:
        """Start etcd (again) on the same ports and data dir; wait for /health."""
        self._components["etcd"].start()
        self._wait(
            "etcd",
            lambda: self._http_ok(f"{self.etcd_url}/health", None),
            deadline,
        )

    def stop_apiserver(self, *, kill: bool = False) -> None:
        """Stop kube-apiserver: SIGTERM, or SIGKILL with ``kill``."""
        self._components["kube-apiserver"].stop(self.stop_timeout, kill=kill)

    def start_apiserver(self, *, deadline: float | None = None) -> None:
        """Start kube-apiserver (again) on the same port; wait for /readyz."""
        self._components["kube-apiserver"].start()
        self.wait_ready(deadline=deadline)

    def restart_etcd(self, downtime: float = 0.0, *, kill: bool = False) -> None:
        """Stop etcd, stay down ``downtime`` seconds, start it on the same data.

        Returns once etcd is healthy and the apiserver is ready again.
        """
        self.stop_etcd(kill=kill)
        time.sleep(downtime)
        deadline = time.monotonic() + self.startup_timeout
        self.start_etcd(deadline=deadline)
        self.wait_ready(deadline=deadline)

    def restart_apiserver(self, downtime: float = 0.0, *, kill: bool = False) -> None:
        """Stop kube-apiserver, stay down ``downtime`` seconds, start it again."""
        self.stop_apiserver(kill=kill)
        time.sleep(downtime)
        self.start_apiserver()

    def wait_ready(self, *, deadline: float | None = None) -> None:
        """Wait until the apiserver's /readyz answers 200."""
        self._wait(
            "kube-apiserver",
            lambda: self._http_ok(f"{self.server}/readyz", self._ssl),
            deadline,
        )

    # -- using the cluster ---------------------------------------------------

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl (admin kubeconfig unless another is given)."""
        argv = [
            str(self.kubectl_path),
            f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
            f"--cache-dir={self.workdir / 'kubectl-cache'}",
            *args,
        ]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def api_client(self, kubeconfig: Path | None = None) -> kubernetes.client.ApiClient:
        """A ``kubernetes`` ApiClient for the admin (or the given kubeconfig).

        The caller closes it (``client.close()``).
        """
        client = kubernetes.config.new_client_from_config(
            config_file=str(kubeconfig or self.admin_kubeconfig)
        )
        if not isinstance(client, kubernetes.client.ApiClient):
            raise ControlPlaneError(f"unexpected client type {type(client)!r}")
        return client

    @contextlib.contextmanager
    def client(self, kubeconfig: Path | None = None) -> Iterator[kubernetes.client.ApiClient]:
        """:meth:`api_client` as a context manager that closes it."""
        client = self.api_client(kubeconfig)
        try:
            yield client
        finally:
            client.close()

    def apply_crds(self, path: Path | str, timeout: float = 60.0) -> list[str]:
        """Apply every YAML file in ``path`` and wait for its CRDs to be Established.

        A missing or empty folder is not an error: nothing is applied and an
        empty list is returned. Returns the names of the CRDs found.
        """
        folder = Path(path)
        if not folder.is_dir():
            return []
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
        docs: list[Any] = []
        for file in files:
            docs.extend(d for d in yaml.safe_load_all(file.read_text()) if d)
        if not docs:
            return []
        file_args = [arg for f in files for arg in ("-f", str(f))]
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=stigmer-controlplane",
            *file_args,
        )
        crds = [
            str(d["metadata"]["name"])
            for d in docs
            if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
        ]
        if crds:
            self.kubectl(
                "wait",
                "--for=condition=Established",
                f"--timeout={int(timeout)}s",
                *(f"customresourcedefinition/{name}" for name in crds),
                timeout=timeout + 30,
            )
        return crds

    def api_request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> ApiResponse:
        """One admin request to the apiserver; the JSON body of the answer."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.server}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=30) as resp:
                status = int(resp.status)
                raw = resp.read()
        except urllib.error.HTTPError as err:
            status = err.code
            raw = err.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"raw": raw.decode(errors="replace")}
        return ApiResponse(status, parsed if isinstance(parsed, dict) else {"items": parsed})

    def token_for(
        self,
        namespace: str,
        serviceaccount: str,
        *,
        expiration_seconds: int = 3600,
        audiences: Sequence[str] = (),
    ) -> str:
        """Mint a token for a ServiceAccount through the TokenRequest API.

        The ServiceAccount is created if it does not exist (the namespace
        must). The token authenticates as
        ``system:serviceaccount:<namespace>:<serviceaccount>``, which has no
        permissions beyond what RBAC objects grant it.
        """
        sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
        created = self.api_request(
            "POST",
            sa_path,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": serviceaccount}},
        )
        if created.status not in (200, 201, 409):
            raise ControlPlaneError(
                f"cannot create ServiceAccount {namespace}/{serviceaccount}: "
                f"{created.status} {created.body.get('message', created.body)}"
            )
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        answer = self.api_request(
            "POST",
            f"{sa_path}/{serviceaccount}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        token = answer.body.get("status", {}).get("token")
        if answer.status != 201 or not isinstance(token, str):
            raise ControlPlaneError(
                f"TokenRequest for {namespace}/{serviceaccount} failed: "
                f"{answer.status} {answer.body.get('message', answer.body)}"
            )
        return token

    def kubeconfig_for_token(self, token: str, *, name: str | None = None) -> Path:
        """Write a kubeconfig that authenticates with ``token``; return its path."""
        self._token_kubeconfigs += 1
        user = name or f"token-{self._token_kubeconfigs}"
        return _write_kubeconfig(
            self.workdir / "kubeconfigs" / f"{user}.kubeconfig",
            server=self.server,
            ca_cert=self._require_pki().ca_cert,
            user=user,
            credentials={"token": token},
        )

    # -- internals -----------------------------------------------------------

    def _require_pki(self) -> _Pki:
        if self._pki is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._pki

    def _admin_ssl_context(self) -> ssl.SSLContext:
        pki = self._require_pki()
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return ctx

    def _write_admin_kubeconfigs(self) -> None:
        pki = self._require_pki()
        _write_kubeconfig(
            self.admin_kubeconfig,
            server=self.server,
            ca_cert=pki.ca_cert,
            user="admin",
            credentials={
                "client-certificate-data": _b64(pki.admin_cert),
                "client-key-data": _b64(pki.admin_key),
            },
        )
        _write_kubeconfig(
            self.workdir / "kube-controller-manager.kubeconfig",
            server=self.server,
            ca_cert=pki.ca_cert,
            user="kube-controller-manager",
            credentials={
                "client-certificate-data": _b64(pki.kcm_cert),
                "client-key-data": _b64(pki.kcm_key),
            },
        )

    def _etcd_argv(self) -> list[str]:
        return [
            str(self.bin_dir / "etcd"),
            "--name=stigmer",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={self._etcd_peer_url}",
            f"--initial-advertise-peer-urls={self._etcd_peer_url}",
            f"--initial-cluster=stigmer={self._etcd_peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def _apiserver_argv(self) -> list[str]:
        pki = self._require_pki()
        port = self.server.rsplit(":", 1)[1]
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.apiserver_cert}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={_SA_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # The lease reconciler refuses a loopback advertise address; no
            # pod ever dials the `kubernetes` Service here, so none is needed.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=0",
            *self._audit_args(),
        ]

    def _audit_args(self) -> list[str]:
        if self.audit_policy is None or self.audit_log is None:
            return []
        return [f"--audit-policy-file={self.audit_policy}", f"--audit-log-path={self.audit_log}"]

    def _kcm_argv(self) -> list[str]:
        pki = self._require_pki()
        return [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={self.workdir / 'kube-controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self._kcm_port}",
            f"--cert-dir={self.workdir / 'kcm-certs'}",
            "--leader-elect=false",
            f"--controllers={','.join(_KCM_CONTROLLERS)}",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            "--use-service-account-credentials=true",  # kubeadm-style: a role per controller
            "--profiling=false",
            "--v=1",
        ]

    def _wait_controller_manager(self, deadline: float) -> None:
        """Ready once the serviceaccount controller made default/default."""

        def ready() -> bool:
            answer = self.api_request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
            return answer.status == 200

        self._wait("kube-controller-manager", ready, deadline)

    @staticmethod
    def _http_ok(url: str, ctx: ssl.SSLContext | None) -> bool:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
                return int(resp.status) == 200
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False

    def _wait(
        self,
        component: str,
        check: Callable[[], bool],
        deadline: float | None,
    ) -> None:
        if deadline is None:
            deadline = time.monotonic() + self.startup_timeout
        comp = self._components[component]
        delay = 0.05
        while True:
            if not comp.running:
                raise ControlPlaneError(
                    f"{component} exited during start-up; last log lines "
                    f"({comp.log_path}):\n{comp.log_tail()}"
                )
            try:
                if check():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{component} not ready after {self.startup_timeout:.0f}s; "
                    f"last log lines ({comp.log_path}):\n{comp.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a control plane in the foreground until Ctrl-C (for local work)."""
    parser = argparse.ArgumentParser(
        prog="python -m stigmer_testing.controlplane",
        description="Start etcd, kube-apiserver and kube-controller-manager on loopback.",
    )
    parser.add_argument("--crds", type=Path, default=REPO_ROOT / "crds", help="CRD folder")
    parser.add_argument("--workdir", type=Path, default=None, help="keep state here")
    parser.add_argument("--bin-dir", type=Path, default=None, help="control-plane binaries")
    args = parser.parse_args(argv)

    def raise_exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_exit)
    try:
        plane = ControlPlane(
            bin_dir=args.bin_dir,
            workdir=args.workdir,
            keep_workdir=args.workdir is not None,
        )
    except BinariesMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with plane:
        crds = plane.apply_crds(args.crds)
        print(f"control plane {plane.versions.kubernetes} ready in {plane.startup_seconds:.1f}s")
        print(f"CRDs applied: {', '.join(crds) or '(none)'}")
        print(f"pids: {plane.pids}")
        print(f"export KUBECONFIG={plane.admin_kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while all(pid_alive(pid) for pid in plane.pids.values()):
                time.sleep(1)
            print("a control-plane process exited; stopping", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
