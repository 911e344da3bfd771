"""The operator as a real subprocess, for e2e tests and ``make run``.

Tests run ``stigmer-operator run`` exactly as a user would, in its own
process: that is the only way to SIGKILL it mid-pipeline, restart it on the
same store, or run two of them with peering. The helper waits for kopf's
liveness endpoint before returning, keeps the log in a file (shown when a
test fails), and never leaves the process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType


class OperatorProcessError(RuntimeError):
    """The operator did not start, or exited when it should not have."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """``stigmer-operator run`` against a kubeconfig, with its own store and log."""

    def __init__(
        self,
        kubeconfig: Path,
        store_path: Path,
        *,
        log_path: Path | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.store_path = store_path
        self.log_path = log_path or store_path.parent / f"{store_path.name}-operator.log"
        self.args = list(args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.health_port = free_port()
        self.metrics_port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OperatorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def argv(self) -> list[str]:
        return [
            sys.executable, "-P", "-m", "stigmer_operator", "run",
            f"--store-path={self.store_path}",
            f"--health-port={self.health_port}",
            f"--metrics-port={self.metrics_port}",
            "--log-level=INFO",
            *self.args,
        ]  # fmt: skip

    def start(self, *, wait: bool = True) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.argv(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        if wait:
            self.wait_healthy()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        while time.monotonic() < deadline:
            if self.returncode is not None:
                raise OperatorProcessError(
                    f"operator exited with {self.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise OperatorProcessError(f"operator not healthy in time:\n{self.log_tail()}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        if self._proc is None:
            raise OperatorProcessError("operator was never started")
        return self._proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like an OOM kill."""
        self._signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful: kopf stops, the store is closed), then SIGKILL."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)
