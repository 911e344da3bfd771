"""The operator process under load: memory, CPU, its own metrics, py-spy, its store and log."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

from .common import log


class Scrapable(Protocol):
    """An operator whose ``/metrics`` answers on 127.0.0.1 (a process or the chart's Pod)."""

    @property
    def metrics_port(self) -> int: ...


def _proc_mb(path: Path, keys: frozenset[str] | None = None) -> dict[str, float]:
    """The ``key: N kB`` lines of a /proc file in MB (only ``keys``, if given)."""
    result: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            if (keys is None or key in keys) and value.strip().endswith("kB"):
                result[key] = int(value.split()[0]) / 1024
    return result


def smaps_mb(pid: int | None) -> dict[str, float]:
    """``/proc/<pid>/smaps_rollup`` in MB: what the RSS is made of (anonymous vs file)."""
    return {} if pid is None else _proc_mb(Path(f"/proc/{pid}/smaps_rollup"))


def rss_mb(pid: int | None) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of ``pid`` in MB."""
    keys = frozenset({"VmRSS", "VmHWM"})
    return {} if pid is None else _proc_mb(Path(f"/proc/{pid}/status"), keys)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of ``pid`` (threads included)."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float, float]:
    """The whole machine's (busy, stolen, total) CPU seconds since boot, all cores.

    From ``/proc/stat``. Busy is what ran here (user, nice, system, irq,
    softirq; guest time is already in user); stolen is the time a virtual
    machine's hypervisor ran someone else while this machine had work.
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq
    return busy / tick, steal / tick, (busy + idle + iowait + steal) / tick


class CpuMeter:
    """Who used the machine's CPU during a phase: the operator, the control plane, the bench.

    The burst is measured against a baseline on the same two cores, so
    whether the operator could go faster depends on what the API server and
    etcd need for the same requests, and on how much of the machine sat idle.
    """

    def __init__(self, pids: Callable[[], dict[str, int | None]]) -> None:
        self._pids = pids
        self._start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        busy, stolen, total = machine_cpu_seconds()
        sample = {name: cpu_seconds(pid) for name, pid in self._pids().items()}
        return sample | {
            "bench": cpu_seconds(os.getpid()),
            "_busy": busy,
            "_stolen": stolen,
            "_total": total,
        }

    def start(self) -> None:
        self._start = self._now()

    def _since(self, name: str) -> float:
        """Where ``name``'s count started: 0 for a process that was not running at
        :meth:`start` (a restarted operator: all its CPU is the phase's)."""
        before = self._start.get(name, math.nan)
        return 0.0 if math.isnan(before) else before

    def take(self) -> dict[str, float]:
        """CPU seconds per process since :meth:`start`; ``other`` is the rest of the busy
        time; ``busy_fraction`` the share of all cores that was busy, ``stolen_fraction``
        the share the hypervisor gave to someone else (a noisy neighbour slows a run)."""
        now = self._now()
        used = {k: now[k] - self._since(k) for k in now if not k.startswith("_")}
        busy, stolen, total = (now[k] - self._start[k] for k in ("_busy", "_stolen", "_total"))
        used["other"] = busy - sum(v for v in used.values() if not math.isnan(v))
        used["busy"] = busy
        used["busy_fraction"] = busy / total if total > 0 else math.nan
        used["stolen_fraction"] = stolen / total if total > 0 else math.nan
        return used


def scrape(process: Scrapable, attempts: int = 5) -> str:
    """``/metrics`` with a patient timeout: a busy operator (or a store of 20,000
    entries counted at every scrape) can take longer than the helper's 5 s."""
    url = f"http://127.0.0.1:{process.metrics_port}/metrics"
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return str(response.read().decode())
        except (OSError, urllib.error.URLError):
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def operator_counters(process: Scrapable) -> dict[str, Counter[tuple[str, ...]]]:
    """The operator's writes by (verb, resource), reconciles by (kind, operation, result)
    and garbage collections by (generation,)."""
    writes: Counter[tuple[str, ...]] = Counter()
    reconciles: Counter[tuple[str, ...]] = Counter()
    collections: Counter[tuple[str, ...]] = Counter()
    for family in text_string_to_metric_families(scrape(process)):
        for sample in family.samples:
            if sample.name == "stigmer_kubernetes_writes_total":
                writes[(sample.labels["verb"], sample.labels["resource"])] += int(sample.value)
            elif sample.name == "stigmer_reconcile_total":
                labels = sample.labels
                reconciles[(labels["kind"], labels["operation"], labels["result"])] += int(
                    sample.value
                )
            elif sample.name == "python_gc_collections_total":
                collections[(sample.labels["generation"],)] += int(sample.value)
    return {"writes": writes, "reconciles": reconciles, "collections": collections}


#: The oldest generation: a collection of it walks every tracked object.
FULL_COLLECTION = ("2",)


def wait_quiet(probe: Callable[[], Any], quiet: float, timeout: float) -> float:
    """Poll ``probe`` until its value stays the same for ``quiet`` seconds; when it last changed."""
    last_value = probe()
    last_change = time.monotonic()
    deadline = last_change + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        value = probe()
        if value != last_value:
            last_value, last_change = value, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
    return last_change


class PySpy:
    """``py-spy record`` of the operator for one phase (optional; ``--py-spy DIR``)."""

    def __init__(
        self, directory: Path | None, pid: int | None, phase: str, *, gil: bool = False
    ) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        if directory is None or pid is None:
            return
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not os.access(exe, os.X_OK):
            log("  --py-spy: py-spy not found (pip install -e '.[bench]'); not profiling")
            return
        directory.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "100",
                "--format",
                "raw",
                "--output",
                str(directory / f"{phase}.txt"),
                "--nonblocking",
                *(["--gil"] if gil else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> PySpy:
        return self

    def __exit__(self, *_: object) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def sweep_count(log: str) -> int | None:
    """The number the start-up sweep logged in ``log`` (the last time), if it has yet."""
    for line in reversed(log.splitlines()):
        if "start-up sweep removed" in line:
            with contextlib.suppress(ValueError, IndexError):
                return int(line.split("start-up sweep removed", 1)[1].split()[0])
    return None


class MemorySampler:
    """Samples the operator's memory in the background; the peak per phase, not per process.

    ``read`` returns named readings in MiB (VmRSS, and the container's
    cgroup figures under ``--image``); :meth:`take` returns the peak of each
    since the previous call and the current values. Sampling every
    ``interval`` seconds can miss a spike shorter than that; VmHWM (the
    kernel's own peak) is reported beside it for the whole process.
    """

    def __init__(self, read: Callable[[], dict[str, float]], interval: float = 0.5) -> None:
        self._read = read
        self._interval = interval
        self._peaks: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> dict[str, float]:
        try:
            values = self._read()
        except Exception:  # the operator may be between containers or processes
            values = {}
        with self._lock:
            for name, value in values.items():
                self._peaks[name] = max(value, self._peaks.get(name, 0.0))
        return values

    def take(self) -> dict[str, dict[str, float]]:
        current = self._sample()
        with self._lock:
            peaks, self._peaks = self._peaks, dict(current)
        return {"peak": peaks, "now": current}
