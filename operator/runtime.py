"""``stigmer-operator run``: open the store, configure kopf, run until signalled.

Everything that lives for the whole process is built here once (settings,
store, Kubernetes client, metrics) and handed to the handlers through kopf's
``memo``, so the handlers stay thin and tests can build the same objects.
The store is closed on every exit path: kopf returns on SIGTERM/SIGINT, and
the ``finally`` flushes RocksDB before the process ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import kubernetes

from stigmer_operator import logs, metrics
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.pipeline.deps import Deps, PipelineSettings
from stigmer_operator.pipeline.kube_api import ApiKubeEffects
from stigmer_operator.settings import LogFormat, OperatorSettings
from stigmer_operator.store import Store, StoreLockedError, StoreOpenError
from stigmer_operator.store.rocks import OpenMode, RocksStore

logger = logging.getLogger(__name__)

FIELD_MANAGER = "stigmer-operator"
EXIT_STORE = 3


def register(subparsers: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser("run", help="run the operator against the current cluster")
    parser.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        help="namespace to watch (repeatable); default: all namespaces",
    )
    parser.add_argument("--store-path", help="RocksDB store directory (default .stigmer/store)")
    parser.add_argument(
        "--platform-namespace",
        dest="platform_namespaces",
        action="append",
        help="namespace whose Agents may use scope: platform (repeatable)",
    )
    parser.add_argument("--log-format", choices=[f.value for f in LogFormat])
    parser.add_argument("--log-level")
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--health-port", type=int)
    parser.add_argument("--peering", help="kopf peering name; empty = standalone")
    parser.add_argument("--priority", type=int)
    parser.add_argument("--max-workers", type=int)
    parser.add_argument("--sweep-interval", type=float, help="seconds; 0: only at start-up")
    parser.add_argument(
        "--rebuild-store",
        action="store_true",
        default=None,
        help="wipe the store and rebuild it from the cluster (history is lost)",
    )
    parser.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    fields = (
        "namespaces",
        "store_path",
        "platform_namespaces",
        "log_format",
        "log_level",
        "metrics_port",
        "health_port",
        "peering",
        "priority",
        "max_workers",
        "sweep_interval",
        "rebuild_store",
    )
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    return run(OperatorSettings(**overrides))


def run(settings: OperatorSettings) -> int:
    """Run the operator until it is told to stop; returns the process exit code."""
    logs.configure(settings.log_format, settings.log_level)
    try:
        store = open_store(settings)
    except StoreOpenError as error:
        print(f"stigmer-operator: {error}", file=sys.stderr)
        return EXIT_STORE
    exit_code = 0
    try:
        # Every sync handler runs in one of max_workers threads, each holding
        # at most one connection at a time.
        api_client = load_api_client(pool_maxsize=settings.max_workers)
        deps = build_deps(settings, store, api_client)
        metrics.serve(settings.metrics_port, store)
        _import_handlers()
        asyncio.run(_operate(settings, deps, api_client))
    finally:
        try:
            store.close()
        except Exception as error:  # e.g. the disk filled up and the final flush fails
            detail = " ".join(str(error).split()) or type(error).__name__
            print(
                f"stigmer-operator: closing the store at {settings.store_path} failed: {detail}",
                file=sys.stderr,
            )
            exit_code = EXIT_STORE
        else:
            logger.info("store closed")
    return exit_code


def open_store(settings: OperatorSettings) -> Store:
    """Open (or create) the store read-write; ``--rebuild-store`` starts it empty.

    Every failure is a :class:`StoreOpenError` with one line naming the path.
    """
    path = settings.store_path
    if settings.rebuild_store and path.is_dir():
        logger.warning(
            "--rebuild-store: removing the contents of %s; the mirror is rebuilt from "
            "the cluster and version history is lost",
            path,
        )
        _empty_for_rebuild(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreOpenError(
            f"cannot create the store's parent directory {path.parent}: {exc.strerror or exc}"
        ) from exc
    return RocksStore.open(path, OpenMode.READ_WRITE, create=True)


#: What RocksDB (and rocksdict) keep in a database directory.
_STORE_FILE = re.compile(
    r"^(CURRENT|IDENTITY|LOCK|LOG(\.old\.\d+)?|(MANIFEST|OPTIONS)-\d+(\.dbtmp)?"
    r"|\d+\.(log|sst|blob|dbtmp)|rocksdict-config\.json)$"
)


def _empty_for_rebuild(path: Path) -> None:
    """Delete what is in the store directory -- never while another process writes to it.

    RocksDB holds a POSIX (fcntl) lock on ``<store>/LOCK`` while a process has
    the store open for writing. Deleting the files under such a process would
    leave it writing into unlinked files while this one creates a second store
    at the same path, so the same lock is taken first, and held while deleting.
    The directory itself stays (it may be a volume's mount point), and a
    directory holding anything but RocksDB's files is refused: a mistyped
    ``--store-path`` must not delete someone's home directory.
    """
    try:
        foreign = sorted(p.name for p in path.iterdir() if not _STORE_FILE.match(p.name))
        if foreign:
            raise StoreOpenError(
                f"--rebuild-store: {path} holds files that are not a store's ({foreign[0]}"
                f"{', ...' if len(foreign) > 1 else ''}); refusing to delete them: check "
                "--store-path"
            )
        with _store_lock(path):
            for entry in sorted(path.iterdir()):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    except OSError as exc:
        raise StoreOpenError(
            f"--rebuild-store: cannot empty the store directory {path}: {exc.strerror or exc}"
        ) from exc


@contextlib.contextmanager
def _store_lock(path: Path) -> Iterator[None]:
    lock_file = path / "LOCK"
    if not lock_file.exists():
        yield
        return
    fd = os.open(lock_file, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise StoreLockedError(
                f"the store at {path} is locked by another writer (the operator is probably "
                "running): stop it before using --rebuild-store"
            ) from exc
        yield
    finally:
        os.close(fd)


def build_deps(
    settings: OperatorSettings, store: Store, api_client: kubernetes.client.ApiClient
) -> Deps:
    """The objects every pipeline run needs, built once per process."""
    pipeline_settings = PipelineSettings(
        platform_namespaces=frozenset(settings.platform_namespaces),
        field_manager=FIELD_MANAGER,
    )
    return Deps(
        store=store,
        kube=ApiKubeEffects.from_settings(pipeline_settings, api_client),
        settings=pipeline_settings,
    )


def load_api_client(pool_maxsize: int = 0) -> kubernetes.client.ApiClient:
    """In-cluster credentials when present, else ``$KUBECONFIG`` / ``~/.kube/config``.

    ``pool_maxsize``: keep at least this many connections to the API server
    open. The client's default is 5 per CPU the *host* has; below the number
    of handler threads, urllib3 drops a connection after each request
    ("Connection pool is full, discarding connection") and the next request
    pays a new TLS handshake. Never lowered: idle slots cost nothing.
    """
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = max(
        configuration.connection_pool_maxsize or 0, pool_maxsize
    )
    return kubernetes.client.ApiClient(configuration)


def _import_handlers() -> None:
    """Importing the handler modules registers them with kopf's default registry."""
    import stigmer_operator.handlers  # noqa: F401


async def _operate(
    settings: OperatorSettings, deps: Deps, api_client: kubernetes.client.ApiClient
) -> None:
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    await kopf.operator(
        clusterwide=settings.clusterwide,
        namespaces=settings.namespaces,
        standalone=not settings.peering,
        peering_name=settings.peering or None,
        priority=settings.priority,
        liveness_endpoint=liveness,
        memo=OperatorMemo(deps=deps, settings=settings, api_client=api_client),
    )
