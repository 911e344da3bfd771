"""Store faults: the operator either keeps the cluster reconciled or stops cleanly, losing nothing.

A store that is locked by another writer or corrupted stops the operator:
it must exit non-zero with one line that names the store path and says
what is wrong -- no traceback -- and must leave the files exactly as they
were: the version history in them is the one thing the cluster cannot give
back. A store that cannot *write* -- a full disk, a read-only filesystem,
at start or while running -- is not an outage: the operator starts and
keeps reconciling the cluster (default instance, IAM, status), says so in
``/healthz``, ``stigmer_store_writable`` and the object's ``Mirrored``
condition, and mirrors what it missed once there is room again.

Recovery is checked the way an administrator would do it: once the fault is
gone (lock released, filesystem writable, space freed) the same store
mirrors the cluster with its history intact; a corrupted store is rebuilt
from the cluster with ``--rebuild-store`` (``store verify`` exits 0, and the
log says that history was dropped). ``--rebuild-store`` itself must not
wipe a store that is in use by another process, nor crash on a read-only one.

The faults are real: a RocksDB handle held open by this test process (the
same fcntl lock a second operator would hold), a read-only bind mount, a
2 MiB tmpfs filled to the last byte, and random bytes over the database
files. Mounting needs root (or CAP_SYS_ADMIN), which the test machines have.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes
import pytest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.runtime import EXIT_STORE
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import Cluster, condition, read_store, wait_for
from tests.e2e.test_restart import verify

EDITED = "Edited once, so the history has two versions to lose."


@dataclass
class Seed:
    """A namespace with two Agents and a store that mirrors them (operator stopped)."""

    namespace: str
    store: Path
    plane: ControlPlane
    #: Agent name -> generations in its history, newest first.
    history: dict[str, list[int]]


@pytest.fixture(scope="module")
def seed(
    control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Seed]:  # fmt: skip
    cluster = Cluster(kube_api)
    ns = f"p-store-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace({"metadata": {"name": ns}})
    store = tmp_path_factory.mktemp("seed") / "store"
    with OperatorProcess(control_plane.admin_kubeconfig, store, args=[f"--namespace={ns}"]):
        for name in ("kept", "edited"):
            cluster.create_agent(ns, name)
        cluster.wait_ready(Kind.AGENT, ns, "edited")
        cluster.patch_spec(Kind.AGENT, ns, "edited", {"instructions": EDITED})
        cluster.wait_ready(Kind.AGENT, ns, "kept")
        cluster.wait_ready(Kind.AGENT, ns, "edited")
        wait_for(lambda: _history(store, ns).get("edited") == [2, 1], timeout=20,
                 what="the edit in the store's history")  # fmt: skip
    yield Seed(ns, store, control_plane, _history(store, ns))
    cluster.core.delete_namespace(ns)


def _history(store: Path, namespace: str) -> dict[str, list[int]]:
    with read_store(store) as view:
        return {
            agent.metadata.name: [h.generation for h in view.history(Kind.AGENT, agent.metadata.id)]
            for agent in view.list(Kind.AGENT)
            if agent.metadata.namespace == namespace
        }


def _copy(seed: Seed, where: Path) -> Path:
    shutil.copytree(seed.store, where)
    return where


def _snapshot(directory: Path) -> dict[str, str]:
    """Digest of every database file.

    RocksDB's diagnostic log (``LOG``, ``LOG.old.*``) is left out: every open
    attempt, even a read-only one that fails, starts a new one and renames
    the previous one. It holds no data.
    """
    return {
        entry.name: hashlib.sha256(entry.read_bytes()).hexdigest()
        for entry in sorted(directory.iterdir())
        if entry.is_file() and not entry.name.startswith("LOG")
    }


def _operator(seed: Seed, store: Path, *args: str) -> OperatorProcess:
    return OperatorProcess(
        seed.plane.admin_kubeconfig,
        store,
        args=[f"--namespace={seed.namespace}", *args],
        # Logs beside the seed, never on the volume under test (it may be read-only or full).
        log_path=seed.store.parent / f"operator-{uuid.uuid4().hex[:8]}.log",
    )


def _refused(seed: Seed, store: Path, *args: str) -> str:
    """Run the operator on ``store``; it must exit 3 with one clean line. Returns the line."""
    operator = _operator(seed, store, *args)
    operator.start(wait=False)
    try:
        returncode = operator.wait_exit(timeout=60)
    finally:
        operator.stop()  # only if it is still running: it should not be
    log = operator.log_path.read_text(errors="replace")
    assert returncode == EXIT_STORE, f"exit {returncode}:\n{log}"
    assert "Traceback" not in log, log
    errors = [line for line in log.splitlines() if line.startswith("stigmer-operator: ")]
    assert len(errors) == 1, log
    assert str(store) in errors[0], errors[0]
    return errors[0]


def _recovers(seed: Seed, store: Path, *args: str) -> OperatorProcess:
    """Run the operator on ``store`` until the mirror equals the cluster; return it stopped."""
    operator = _operator(seed, store, *args)
    with operator:
        wait_for(lambda: verify(seed.plane, operator, seed.namespace) == 0, timeout=30,
                 what="store verify to report no drift")  # fmt: skip
    assert operator.returncode == 0, operator.log_tail()
    return operator


# -- (a) locked ------------------------------------------------------------------


HOLDER = """
import sys
from stigmer_operator.store.rocks import OpenMode, RocksStore
store = RocksStore.open(sys.argv[1], OpenMode.READ_WRITE)
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
store.close()
"""


def test_locked_store_is_refused_and_untouched(seed: Seed, tmp_path: Path) -> None:
    store = _copy(seed, tmp_path / "store")
    # Another process holds the store read-write, as a running operator does.
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(store)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        before = _snapshot(store)
        assert "is locked by another writer" in _refused(seed, store)
        # --rebuild-store must not delete the files of a store another process writes to.
        line = _refused(seed, store, "--rebuild-store")
        assert "is locked by another writer" in line and "--rebuild-store" in line
        assert _snapshot(store) == before
    finally:
        holder.communicate(timeout=30)  # closes stdin: the holder closes the store and exits
    assert holder.returncode == 0
    _recovers(seed, store)
    assert _history(store, seed.namespace) == seed.history


# -- (b) read-only -----------------------------------------------------------------


@pytest.fixture
def bind_mount(tmp_path: Path) -> Iterator[Path]:
    """A directory bind-mounted onto itself, so it can be remounted read-only.

    Root ignores file permissions, so a read-only mount is the honest way to
    make a store unwritable for a process running as root.
    """
    directory = tmp_path / "volume"
    directory.mkdir()
    _mount("--bind", str(directory), str(directory))
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"mount {' '.join(args)} failed (needs root): {result.stderr}", pytrace=False)


def _remount(directory: Path, mode: str) -> None:
    _mount("-o", f"remount,bind,{mode}", str(directory))
    assert bool(os.statvfs(directory).f_flag & os.ST_RDONLY) == (mode == "ro")


def test_read_only_store_keeps_the_operator_running_and_is_untouched(
    seed: Seed, bind_mount: Path
) -> None:
    store = _copy(seed, bind_mount / "store")
    _remount(bind_mount, "ro")
    before = _snapshot(store)
    with _operator(seed, store) as operator:
        assert _unwritable(operator)
    assert operator.returncode == 0, operator.log_tail()
    line = _refused(seed, store, "--rebuild-store")
    assert "Read-only file system" in line and "--rebuild-store" in line
    assert _snapshot(store) == before

    _remount(bind_mount, "rw")  # the administrator fixes the volume; history is intact
    _recovers(seed, store)
    assert _history(store, seed.namespace) == seed.history


# -- (c) full disk -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs."""
    directory = tmp_path / "disk"
    directory.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(directory))
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: nothing left to flush on close
        try:
            while out.write(b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    assert os.statvfs(disk).f_bavail == 0
    return filler


def test_full_disk_at_start_is_not_an_outage(
    seed: Seed, small_disk: Path, kube_api: kubernetes.client.ApiClient
) -> None:
    """RocksDB cannot open read-write on a full disk: the operator reads the store as it is."""
    store = _copy(seed, small_disk / "store")
    filler = _fill(small_disk)
    before = _snapshot(store)
    cluster = Cluster(kube_api)
    with _operator(seed, store) as operator:
        assert _unwritable(operator)
        _reconciled_without_the_store(cluster, seed.namespace, "late")
        after = _snapshot(store)
        assert {name: after.get(name) for name in before} == before, "history untouched"

        filler.unlink()  # the administrator frees space
        _mirror_catches_up(cluster, operator, store, seed.namespace, "late")
    _stopped_with_history_intact(seed, store, operator)


# -- (d) corrupted -------------------------------------------------------------------


@pytest.mark.parametrize("victim", ["CURRENT", "MANIFEST-", ".sst"])
def test_corrupted_store_is_refused_untouched_and_rebuilt_on_request(
    seed: Seed, tmp_path: Path, victim: str
) -> None:
    store = _copy(seed, tmp_path / "store")
    victims = [p for p in store.iterdir() if p.name.startswith(victim) or p.name.endswith(victim)]
    assert victims, sorted(p.name for p in store.iterdir())
    for path in victims:  # same size, random bytes: only checksums and magic numbers can tell
        path.write_bytes(os.urandom(path.stat().st_size))
    before = _snapshot(store)
    line = _refused(seed, store)
    assert "is corrupt" in line, line
    assert _snapshot(store) == before, "a failed start must not touch a corrupted store"

    operator = _recovers(seed, store, "--rebuild-store")
    log = operator.log_path.read_text()
    assert "--rebuild-store" in log and "version history is lost" in log, "never silently"
    rebuilt = _history(store, seed.namespace)
    assert set(rebuilt) == set(seed.history)
    assert rebuilt["edited"] == [2], "the rebuilt mirror starts history at the current version"


def test_rebuild_refuses_a_directory_that_is_not_a_store(seed: Seed, tmp_path: Path) -> None:
    """A mistyped ``--store-path`` with ``--rebuild-store`` must not delete someone's files."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("precious")
    line = _refused(seed, home, "--rebuild-store")
    assert "not a store's (notes.txt)" in line, line
    assert (home / "notes.txt").read_text() == "precious"


def _health(operator: OperatorProcess) -> tuple[int, str]:
    url = f"http://127.0.0.1:{operator.health_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def _unwritable(operator: OperatorProcess) -> bool:
    """Liveness passes and says the store is unwritable; so does the metric."""

    def says_unwritable() -> tuple[int, str] | None:
        status, body = _health(operator)
        return (status, body) if "unwritable" in body else None

    # kopf caches probe results for 10 s: wait for a fresh one.
    status, body = wait_for(says_unwritable, timeout=30, interval=1,
                            what="/healthz to say the store is unwritable")  # fmt: skip
    assert status == 200, body
    assert "stigmer_store_writable 0.0" in operator.metrics()
    return True


def _reconciled_without_the_store(cluster: Cluster, namespace: str, name: str) -> None:
    """A new Agent becomes Ready with its default instance and IAM; its mirror is behind."""
    cluster.create_agent(namespace, name, {"instructions": "x" * 100_000})  # more than fits
    agent = cluster.wait_ready(Kind.AGENT, namespace, name, timeout=60)
    instance = agent["status"]["defaultInstanceName"]
    cluster.wait_ready(Kind.AGENT_INSTANCE, namespace, instance)
    account = f"{instance}-agent"
    cluster.core.read_namespaced_service_account(account, namespace)
    cluster.rbac.read_namespaced_role(account, namespace)
    cluster.rbac.read_namespaced_role_binding(account, namespace)
    mirrored = condition(agent, "Mirrored")
    assert (mirrored.get("status"), mirrored.get("reason")) == ("False", "StoreUnwritable"), agent
    warnings = [e for e in cluster.events(namespace, name) if e.reason == "StoreUnwritable"]
    assert len(warnings) == 1 and warnings[0].type == "Warning", warnings


def _mirrored_agents(store: Path, namespace: str) -> set[str]:
    with read_store(store) as view:
        return {a.metadata.name for a in view.list(Kind.AGENT) if a.metadata.namespace == namespace}


def _mirror_catches_up(
    cluster: Cluster, operator: OperatorProcess, store: Path, namespace: str, name: str
) -> None:
    """kopf retries the object every 30 s; the first retry with room reopens the store.

    Then the Agent is deleted again, and that reaches the mirror too.
    """
    agent = cluster.wait_condition(Kind.AGENT, namespace, name, "Mirrored", "True", timeout=120)
    assert condition(agent, "Ready").get("status") == "True", condition(agent, "Ready")
    assert "stigmer_store_writable 1.0" in operator.metrics()
    assert _health(operator)[0] == 200
    wait_for(lambda: name in _mirrored_agents(store, namespace), timeout=30,
             what=f"{name} in the store")  # fmt: skip
    cluster.delete(Kind.AGENT, namespace, name)  # the tiny volume is not for big Agents
    wait_for(lambda: name not in _mirrored_agents(store, namespace), timeout=30,
             what="the deletion in the mirror")  # fmt: skip


def _stopped_with_history_intact(seed: Seed, store: Path, operator: OperatorProcess) -> None:
    assert operator.returncode == 0, operator.log_tail()
    history = _history(store, seed.namespace)
    assert {name: history[name] for name in seed.history} == seed.history


def test_disk_filling_up_while_running_is_not_an_outage(
    seed: Seed, small_disk: Path, kube_api: kubernetes.client.ApiClient
) -> None:
    """RocksDB's write error is sticky: the operator goes on without it, then reopens the store."""
    store = _copy(seed, small_disk / "store")
    cluster = Cluster(kube_api)
    with _operator(seed, store) as operator:
        assert _health(operator)[0] == 200
        filler = _fill(small_disk)
        _reconciled_without_the_store(cluster, seed.namespace, "overflow")
        assert _unwritable(operator)

        filler.unlink()  # the administrator frees space
        _mirror_catches_up(cluster, operator, store, seed.namespace, "overflow")
    _stopped_with_history_intact(seed, store, operator)
