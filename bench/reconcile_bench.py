"""End to end: how fast the operator turns Agents into Ready Agents, on a real control plane.

Starts its own control plane (etcd, kube-apiserver, kube-controller-manager
from ``testing/stigmer_testing/controlplane.py``, CRDs applied) and the operator as
a real process (``stigmer-operator run``), then measures, in one run:

1. **burst** -- N Agents created through the API as fast as ``--clients``
   threads can; time until every Agent is Ready (``Ready=True`` with
   ``status.observedGeneration == metadata.generation``) and so is its
   default AgentInstance; Agents/s; p50/p95/p99 create->Ready latency.
   Latency is client-side: from the moment the create request is sent to
   the first watch event (a watch per kind runs in a thread) showing both
   the Agent and its default instance Ready.
2. **baseline** -- the API-bound limit on this machine: the API writes the
   operator made per Agent during the burst (counted by the apiserver's own
   ``apiserver_request_total``, so kopf's annotation patches are included;
   the operator's ``stigmer_kubernetes_writes_total`` splits off the
   pipeline's share), replayed directly, without the operator, with the
   same client concurrency, into a namespace the operator does not watch.
   Operator throughput is printed as a fraction of that limit.
3. **steady** -- ``--steady-rate`` Agents/s for ``--steady-seconds``
   (open loop: a create is sent on schedule even when earlier ones are
   still pending); p50/p95/p99 create->Ready.
4. **scale** -- Agents created until the operator holds ``--scale-n``
   Agents (+ as many default instances); operator RSS (``VmRSS`` from
   ``/proc/<pid>/status``) idle and at scale.
5. **restart** -- the operator is stopped, ``--restart-delete`` Agents are
   deleted (the garbage collector removes their instances), the operator is
   started on the same store; time until it has re-mirrored every object
   (its ``stigmer_reconcile_total{operation="resume"}`` counts reach the
   live Agents and instances and stay still for ``--quiet`` seconds: the
   time reported is that of the last change) and swept the deleted ones;
   ``stigmer-operator store verify`` must then pass.

Usage::

    python bench/reconcile_bench.py                       # the targets' sizes
    python bench/reconcile_bench.py --quick               # ~1 min: n=100, steady 5 s, scale 500
    python bench/reconcile_bench.py --json out.json --png latency.png
    python bench/reconcile_bench.py --phases burst,baseline --n 300 \\
        --operator-arg=--max-workers=16                   # an experiment
    python bench/reconcile_bench.py --py-spy prof/        # py-spy record of the operator

A table, not a timed test: a shared 2-core machine is too noisy for a hard
gate. Targets are printed as PASS/FAIL; ``--strict`` turns a FAIL into exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.fixtures import realistic_agent
from stigmer_testing.operator_process import OperatorProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION = "agentic.stigmer.ai", "v1"
API = f"/apis/{GROUP}/{VERSION}"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
FIELD_MANAGER = "reconcile-bench"

#: Namespaces the operator watches, one per phase, and the one it does not.
NS_BURST, NS_STEADY, NS_SCALE, NS_BASELINE = "rb-burst", "rb-steady", "rb-scale", "rb-baseline"
WATCHED = (NS_BURST, NS_STEADY, NS_SCALE)

#: Resources whose writes make up the operator's work per Agent.
OUR_RESOURCES = (
    "agents",
    "agentinstances",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "events",
)
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")

PHASES = ("burst", "baseline", "steady", "scale", "restart")

# Targets on the 2-core reference machine (issue 7).
TARGET_BURST_RATE = 50.0  # 1,000 Agents all Ready in <= 20 s
TARGET_BASELINE_FRACTION = 0.5
TARGET_STEADY_P99 = 2.0
TARGET_RSS_MB = 250.0
TARGET_RESTART_S = 60.0


def agent_manifest(name: str) -> dict[str, Any]:
    """The shared realistic Agent, as in ``bench/pipeline_bench.py``."""
    return realistic_agent(name, f"Support {name}")


# -- statistics ---------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else math.nan,
        "mean": statistics.fmean(values) if values else math.nan,
    }


# -- a lean API client ----------------------------------------------------------------


class Api:
    """Admin HTTP access with no model decoding: the cheapest client Python has.

    The burst and the baseline both write through it, so the client's own
    cost is the same on both sides of the comparison.
    """

    def __init__(self, kubeconfig: Path, maxsize: int = 16) -> None:
        cfg = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.host = cfg.host.rstrip("/")
        self._pool_args: dict[str, Any] = {
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": cfg.ssl_ca_cert,
            "cert_file": cfg.cert_file,
            "key_file": cfg.key_file,
        }
        self._pool = self.new_pool(maxsize)

    def new_pool(self, maxsize: int) -> urllib3.PoolManager:
        return urllib3.PoolManager(num_pools=2, maxsize=maxsize, block=True, **self._pool_args)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        timeout: float = 60.0,
    ) -> tuple[int, bytes]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
        response = self._pool.request(
            method,
            self.host + path,
            body=data,
            headers={"Content-Type": content_type, "Accept": "application/json"},
            timeout=timeout,
            retries=False,
        )
        return response.status, response.data

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        status, data = self.call(method, path, body, **kwargs)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {status} {data[:300]!r}")
        result = json.loads(data)
        return result if isinstance(result, dict) else {}

    def ensure_namespace(self, name: str) -> None:
        status, data = self.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if status not in (201, 409):
            raise RuntimeError(f"create namespace {name}: HTTP {status} {data[:300]!r}")

    def apiserver_requests(self) -> Counter[tuple[str, str, str]]:
        """``apiserver_request_total`` summed by (verb, resource, subresource)."""
        status, data = self.call("GET", "/metrics")
        if status != 200:
            raise RuntimeError(f"GET /metrics: HTTP {status}")
        totals: Counter[tuple[str, str, str]] = Counter()
        for family in text_string_to_metric_families(data.decode()):
            if family.name != "apiserver_request":
                continue
            for sample in family.samples:
                if sample.name != "apiserver_request_total":
                    continue
                labels = sample.labels
                key = (
                    labels.get("verb", ""),
                    labels.get("resource", ""),
                    labels.get("subresource", ""),
                )
                totals[key] += int(sample.value)
        return totals


def ready(obj: Mapping[str, Any]) -> bool:
    """``Ready=True`` for the current generation (what ``kubectl wait`` and kstatus read)."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != (obj.get("metadata") or {}).get("generation"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def agent_of_instance(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Agent" and ref.get("controller"):
            return str(ref.get("name"))
    return None


class ReadyWatch(threading.Thread):
    """Watches one kind in one namespace; records when each key is first seen Ready."""

    def __init__(
        self, api: Api, plural: str, namespace: str, key: Callable[[Mapping[str, Any]], str | None]
    ) -> None:
        super().__init__(name=f"watch-{plural}-{namespace}", daemon=True)
        self._api = api
        self._pool = api.new_pool(1)
        self._path = f"{API}/namespaces/{namespace}/{plural}"
        self._key = key
        self.ready: dict[str, float] = {}
        self.events = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._response: urllib3.BaseHTTPResponse | None = None

    def start_and_wait(self) -> ReadyWatch:
        self.start()
        if not self._started.wait(30):
            raise RuntimeError(f"watch {self._path} did not start: {self.error}")
        return self

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()
                response.release_conn()

    def _observe(self, obj: Mapping[str, Any], now: float) -> None:
        if ready(obj):
            key = self._key(obj)
            if key is not None and key not in self.ready:
                self.ready[key] = now

    def _list(self) -> str:
        listing = self._api.json("GET", self._path)
        now = time.monotonic()
        for item in listing.get("items") or []:
            self._observe(item, now)
        return str(listing["metadata"]["resourceVersion"])

    def run(self) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._list()
                query = f"?watch=1&allowWatchBookmarks=true&timeoutSeconds=600&resourceVersion={rv}"
                response = self._pool.request(
                    "GET",
                    self._api.host + self._path + query,
                    preload_content=False,
                    timeout=urllib3.Timeout(connect=10, read=700),
                    retries=False,
                )
                self._response = response
                self._started.set()
                buffer = b""
                for chunk in response.stream(1 << 16):
                    now = time.monotonic()
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            rv = None  # 410 Gone: list again
                            break
                        rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            self.events += 1
                            self._observe(obj, now)
                    if rv is None:
                        break
                response.release_conn()
            except Exception as exc:
                if self._stop.is_set():
                    return
                self.error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.2)


@contextlib.contextmanager
def watching(api: Api, namespace: str) -> Iterator[tuple[ReadyWatch, ReadyWatch]]:
    agents = ReadyWatch(api, "agents", namespace, lambda o: str(o["metadata"]["name"]))
    instances = ReadyWatch(api, "agentinstances", namespace, agent_of_instance)
    agents.start_and_wait()
    instances.start_and_wait()
    try:
        yield agents, instances
    finally:
        agents.stop()
        instances.stop()


# -- creating Agents ---------------------------------------------------------------------


@dataclass
class Created:
    sent: dict[str, float] = field(default_factory=dict)  # name -> create request sent
    failed: dict[str, str] = field(default_factory=dict)
    lag: list[float] = field(default_factory=list)  # steady: send time - scheduled time


def create_agents(
    api: Api,
    namespace: str,
    names: Sequence[str],
    clients: int,
    *,
    rate: float | None = None,
) -> Created:
    """Create ``names`` with ``clients`` threads; open-loop at ``rate`` per second if given."""
    created = Created()
    lock = threading.Lock()
    path = f"{API}/namespaces/{namespace}/agents?fieldManager={FIELD_MANAGER}"
    bodies = {name: json.dumps(agent_manifest(name)).encode() for name in names}
    start = time.monotonic()

    def one(index: int, name: str) -> None:
        if rate is not None:
            scheduled = start + index / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent = time.monotonic()
        try:
            status, data = api.call("POST", path, bodies[name])
            problem = None if status == 201 else f"HTTP {status} {data[:200]!r}"
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        with lock:
            created.sent[name] = sent
            if rate is not None:
                created.lag.append(sent - (start + index / rate))
            if problem:
                created.failed[name] = problem

    # Open loop needs enough threads that a slow create never delays the next one.
    workers = clients if rate is None else max(clients, int(rate * 2))
    with ThreadPoolExecutor(workers, thread_name_prefix="create") as pool:
        list(pool.map(one, range(len(names)), names))
    return created


def wait_ready(
    names: Iterable[str],
    agents: ReadyWatch,
    instances: ReadyWatch,
    timeout: float,
    progress: str = "",
) -> dict[str, float]:
    """Wait until every name has a Ready Agent and a Ready default instance; name -> when."""
    pending = set(names)
    done: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    last_print = time.monotonic()
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            a, i = agents.ready.get(name), instances.ready.get(name)
            if a is not None and i is not None:
                done[name] = max(a, i)
                pending.discard(name)
        if pending:
            time.sleep(0.05)
            if progress and time.monotonic() - last_print > 10:
                last_print = time.monotonic()
                log(f"  {progress}: {len(done)} Ready, {len(pending)} pending")
    return done


# -- the operator -----------------------------------------------------------------------


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


def scrape(process: OperatorProcess, attempts: int = 5) -> str:
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


def operator_counters(process: OperatorProcess) -> dict[str, Counter[tuple[str, ...]]]:
    """The operator's writes by (verb, resource) and reconciles by (kind, operation, result)."""
    writes: Counter[tuple[str, ...]] = Counter()
    reconciles: Counter[tuple[str, ...]] = Counter()
    for family in text_string_to_metric_families(scrape(process)):
        for sample in family.samples:
            if sample.name == "stigmer_kubernetes_writes_total":
                writes[(sample.labels["verb"], sample.labels["resource"])] += int(sample.value)
            elif sample.name == "stigmer_reconcile_total":
                labels = sample.labels
                reconciles[(labels["kind"], labels["operation"], labels["result"])] += int(
                    sample.value
                )
    return {"writes": writes, "reconciles": reconciles}


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


# -- the baseline: the operator's writes without the operator --------------------------


#: The order in which one Agent's writes can happen (each needs the ones before it).
WRITE_ORDER = (
    ("POST", "agents", ""),
    ("PATCH", "agents", "status"),
    ("PATCH", "agents", ""),
    ("POST", "agentinstances", ""),
    ("PATCH", "agentinstances", "status"),
    ("PATCH", "agentinstances", ""),
    ("POST", "serviceaccounts", ""),
    ("POST", "roles", ""),
    ("POST", "rolebindings", ""),
    ("PATCH", "serviceaccounts", ""),
    ("PATCH", "roles", ""),
    ("PATCH", "rolebindings", ""),
    ("POST", "events", ""),
)
#: Reads the baseline can replay (``--baseline-reads``).
READ_ORDER = (
    ("GET", "agents", ""),
    ("GET", "agentinstances", ""),
    ("GET", "serviceaccounts", ""),
    ("GET", "roles", ""),
    ("GET", "rolebindings", ""),
)


def operator_requests(
    before: Counter[tuple[str, str, str]], after: Counter[tuple[str, str, str]], bench_creates: int
) -> Counter[tuple[str, str, str]]:
    """Requests to our resources between two snapshots, minus the bench's own creates."""
    delta: Counter[tuple[str, str, str]] = Counter()
    for key, value in after.items():
        if key[1] in OUR_RESOURCES and value - before.get(key, 0) > 0:
            delta[key] = value - before.get(key, 0)
    delta[("POST", "agents", "")] -= bench_creates
    return +delta


@dataclass
class Templates:
    """Bodies taken from a real reconciled Agent and its default instance."""

    agent_status: dict[str, Any]
    agent_annotations: dict[str, str]
    instance_status: dict[str, Any]
    instance_annotations: dict[str, str]


def templates_from(api: Api, namespace: str, name: str) -> Templates:
    agent = api.json("GET", f"{API}/namespaces/{namespace}/agents/{name}")
    instance_name = agent["status"]["defaultInstanceName"]
    instance = api.json("GET", f"{API}/namespaces/{namespace}/agentinstances/{instance_name}")

    def ours(obj: Mapping[str, Any]) -> dict[str, str]:
        annotations = obj["metadata"].get("annotations") or {}
        return {k: v for k, v in annotations.items() if k.startswith(GROUP)}

    return Templates(agent["status"], ours(agent), instance["status"], ours(instance))


def _varied_status(status: Mapping[str, Any], round_: int) -> dict[str, Any]:
    """The status with a message that differs per patch, so no patch is a no-op."""
    varied = json.loads(json.dumps(status))
    for condition in varied.get("conditions") or []:
        condition["message"] = f"{condition.get('message', '')} ({round_})"
    return {"status": varied}


def _varied_annotations(annotations: Mapping[str, str], round_: int) -> dict[str, Any]:
    return {"metadata": {"annotations": {k: v + " " * round_ for k, v in annotations.items()}}}


def replay_agent(
    api: Api, namespace: str, name: str, plan: Mapping[tuple[str, str, str], int], t: Templates
) -> int:
    """The operator's writes (and optionally reads) for one Agent, in causal order."""
    requests = 0
    ns = f"/namespaces/{namespace}"
    merge = "application/merge-patch+json"
    agent_path, instance_name = f"{API}{ns}/agents/{name}", f"{name}-default"
    instance_path = f"{API}{ns}/agentinstances/{instance_name}"
    sa_name = f"{instance_name}-agent"
    uid = {"agent": "", "instance": ""}

    def check(status: int, data: bytes, what: str) -> bytes:
        if status >= 300 and status != 409:
            raise RuntimeError(f"baseline {what}: HTTP {status} {data[:200]!r}")
        return data

    def owner(kind: str) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": kind,
                "name": name if kind == "Agent" else instance_name,
                "uid": uid["agent" if kind == "Agent" else "instance"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]

    def meta(obj_name: str) -> dict[str, Any]:
        return {
            "name": obj_name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "stigmer-operator"},
            "ownerReferences": owner("AgentInstance"),
        }

    body: dict[str, Any]
    for key in (*WRITE_ORDER, *READ_ORDER):
        for round_ in range(plan.get(key, 0)):
            verb, resource, sub = key
            fm = f"?fieldManager={FIELD_MANAGER}"
            if key == ("POST", "agents", ""):
                data = check(
                    *api.call("POST", f"{API}{ns}/agents{fm}", agent_manifest(name)), "agent"
                )
                uid["agent"] = json.loads(data)["metadata"]["uid"] if data else ""
            elif key == ("POST", "agentinstances", ""):
                body = {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "AgentInstance",
                    "metadata": {
                        "name": instance_name,
                        "ownerReferences": owner("Agent"),
                        "labels": {f"{GROUP}/agent": name, f"{GROUP}/default-instance": "true"},
                    },
                    "spec": {"agentRef": {"name": name}},
                }
                data = check(*api.call("POST", f"{API}{ns}/agentinstances{fm}", body), "instance")
                uid["instance"] = json.loads(data)["metadata"]["uid"] if data else ""
            elif verb == "PATCH" and resource in ("agents", "agentinstances"):
                path = agent_path if resource == "agents" else instance_path
                if sub == "status":
                    tmpl = t.agent_status if resource == "agents" else t.instance_status
                    body = _varied_status(tmpl, round_)
                    path += "/status"
                else:
                    tmpl = t.agent_annotations if resource == "agents" else t.instance_annotations
                    body = _varied_annotations(tmpl, round_)
                check(*api.call("PATCH", path + fm, body, content_type=merge), f"patch {resource}")
            elif key == ("POST", "serviceaccounts", ""):
                body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(sa_name)}
                check(*api.call("POST", f"/api/v1{ns}/serviceaccounts{fm}", body), "sa")
            elif key == ("POST", "roles", ""):
                body = {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": meta(sa_name),
                    "rules": [],
                }
                check(
                    *api.call("POST", f"{RBAC}{ns}/roles{fm}", body),
                    "role",
                )
            elif key == ("POST", "rolebindings", ""):
                body = {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": meta(sa_name),
                    "subjects": [
                        {"kind": "ServiceAccount", "name": sa_name, "namespace": namespace}
                    ],
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": sa_name,
                    },
                }
                check(
                    *api.call("POST", f"{RBAC}{ns}/rolebindings{fm}", body),
                    "rb",
                )
            elif verb == "PATCH" and resource in ("serviceaccounts", "roles", "rolebindings"):
                group = "/api/v1" if resource == "serviceaccounts" else RBAC
                body = {"metadata": {"labels": {f"{GROUP}/bench-round": str(round_)}}}
                check(
                    *api.call(
                        "PATCH", f"{group}{ns}/{resource}/{sa_name}{fm}", body, content_type=merge
                    ),
                    f"patch {resource}",
                )
            elif key == ("POST", "events", ""):
                target = (
                    (name, "Agent", uid["agent"])
                    if round_ % 2
                    else (instance_name, "AgentInstance", uid["instance"])
                )
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                body = {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": f"{target[0]}.{round_}.bench", "namespace": namespace},
                    "involvedObject": {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": target[1],
                        "name": target[0],
                        "namespace": namespace,
                        "uid": target[2],
                    },
                    "type": "Normal",
                    "reason": "Created",
                    "action": "Created",
                    "message": f"{target[1]} {namespace}/{target[0]} created",
                    "source": {"component": "stigmer-operator"},
                    "reportingComponent": "stigmer-operator",
                    "reportingInstance": "stigmer-operator",
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                }
                check(*api.call("POST", f"/api/v1{ns}/events{fm}", body), "event")
            elif verb == "GET":
                paths = {
                    "agents": agent_path,
                    "agentinstances": instance_path,
                    "serviceaccounts": f"/api/v1{ns}/serviceaccounts/{sa_name}",
                    "roles": f"{RBAC}{ns}/roles/{sa_name}",
                    "rolebindings": f"{RBAC}{ns}/rolebindings/{sa_name}",
                }
                api.call("GET", paths[resource])
            else:
                continue
            requests += 1
    return requests


def per_agent_plans(
    totals: Mapping[tuple[str, str, str], int], n: int
) -> list[dict[tuple[str, str, str], int]]:
    """Spread ``totals`` over ``n`` Agents so the sums match exactly."""
    plans: list[dict[tuple[str, str, str], int]] = [{} for _ in range(n)]
    for key, total in totals.items():
        base, extra = divmod(total, n)
        for i in range(n):
            plans[i][key] = base + (1 if i < extra else 0)
    for plan in plans:
        plan[("POST", "agents", "")] = 1
    return plans


# -- phases -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


@dataclass
class Bench:
    args: argparse.Namespace
    plane: ControlPlane
    api: Api
    store_path: Path
    operator: OperatorProcess | None = None
    results: dict[str, Any] = field(default_factory=dict)
    agents_created: dict[str, int] = field(default_factory=dict)  # namespace -> count

    # -- operator lifecycle
    def start_operator(self) -> OperatorProcess:
        args = [f"--namespace={ns}" for ns in WATCHED] + list(self.args.operator_arg)
        env = dict(item.split("=", 1) for item in self.args.operator_env)
        process = OperatorProcess(
            self.plane.admin_kubeconfig,
            self.store_path,
            log_path=self.store_path.parent / "operator.log",
            args=args,
            env=env,
            startup_timeout=300,
        )
        self.operator = process  # before start: an interrupted start is still stopped
        process.start()
        return process

    def quiet_operator(self, timeout: float = 120.0) -> float:
        """Wait until the operator stops writing and reconciling."""
        assert self.operator is not None
        operator = self.operator

        def probe() -> tuple[int, int]:
            counters = operator_counters(operator)
            return sum(counters["writes"].values()), sum(counters["reconciles"].values())

        return wait_quiet(probe, self.args.quiet, timeout)

    # -- 1. burst
    def burst(self) -> None:
        n, clients = self.args.n, self.args.clients
        log(f"burst: {n} Agents, {clients} clients (load {loadavg()})")
        assert self.operator is not None
        names = [f"burst-{i:05d}" for i in range(n)]
        api_before = self.api.apiserver_requests()
        op_before = operator_counters(self.operator)
        cpu_before = cpu_seconds(self.operator.pid)
        with (
            watching(self.api, NS_BURST) as (agents, instances),
            PySpy(self.args.py_spy, self.operator.pid, "burst", gil=self.args.py_spy_gil),
        ):
            created = create_agents(self.api, NS_BURST, names, clients)
            create_done = time.monotonic()
            ok = [name for name in names if name not in created.failed]
            done = wait_ready(ok, agents, instances, self.args.timeout, "burst")
            watch_events = agents.events + instances.events
        self.agents_created[NS_BURST] = len(ok)
        first = min(created.sent.values())
        last = max(done.values()) if done else math.nan
        latencies = [done[name] - created.sent[name] for name in done]
        elapsed = last - first
        self.quiet_operator()
        cpu = cpu_seconds(self.operator.pid) - cpu_before
        api_after = self.api.apiserver_requests()
        op_after = operator_counters(self.operator)
        requests = operator_requests(api_before, api_after, len(ok))
        pipeline_writes = op_after["writes"] - op_before["writes"]
        self.results["burst"] = {
            "n": n,
            "clients": clients,
            "failed_creates": len(created.failed),
            "ready": len(done),
            "create_seconds": create_done - first,
            "all_ready_seconds": elapsed,
            "agents_per_second": len(done) / elapsed if elapsed > 0 else math.nan,
            "latency": latency_summary(latencies),
            "latencies": latencies,
            "operator_cpu_seconds": cpu,
            "watch_events": watch_events,
            "requests": {" ".join(k).strip(): v for k, v in sorted(requests.items())},
            "pipeline_writes": {" ".join(k): v for k, v in sorted(pipeline_writes.items())},
            "reconciles": {
                " ".join(k): v
                for k, v in sorted((op_after["reconciles"] - op_before["reconciles"]).items())
            },
            "load": loadavg(),
        }
        self._requests = requests
        if created.failed:
            log(f"  {len(created.failed)} creates failed, e.g. {min(created.failed.values())}")
        if len(done) < len(ok):
            log(f"  TIMEOUT: {len(ok) - len(done)} Agents not Ready after {self.args.timeout}s")

    # -- 2. baseline
    def baseline(self) -> None:
        requests = getattr(self, "_requests", None)
        if requests is None:
            log("baseline: needs the burst phase; skipped")
            return
        n, clients = self.args.n, self.args.clients
        verbs = WRITE_VERBS + (("GET",) if self.args.baseline_reads else ())
        replayable = set(WRITE_ORDER) | (set(READ_ORDER) if self.args.baseline_reads else set())
        totals = {k: v for k, v in requests.items() if k[0] in verbs}
        skipped = {" ".join(k): v for k, v in totals.items() if k not in replayable}
        totals = {k: v for k, v in totals.items() if k in replayable}
        log(
            f"baseline: {sum(totals.values()) + n} requests for {n} Agents, {clients} clients "
            f"(load {loadavg()})"
        )
        if skipped:
            log(f"  not replayable, left out: {skipped}")
        templates = templates_from(self.api, NS_BURST, "burst-00000")
        plans = per_agent_plans(totals, n)
        self.api.ensure_namespace(NS_BASELINE)
        names = [f"base-{i:05d}" for i in range(n)]
        started = time.monotonic()
        with ThreadPoolExecutor(clients, thread_name_prefix="baseline") as pool:
            sent = sum(
                pool.map(
                    lambda i: replay_agent(self.api, NS_BASELINE, names[i], plans[i], templates),
                    range(n),
                )
            )
        elapsed = time.monotonic() - started
        burst = self.results.get("burst", {})
        rate = n / elapsed
        self.results["baseline"] = {
            "n": n,
            "clients": clients,
            "requests": sent,
            "requests_per_agent": sent / n,
            "includes_reads": self.args.baseline_reads,
            "not_replayed": skipped,
            "seconds": elapsed,
            "agents_per_second": rate,
            "requests_per_second": sent / elapsed,
            "operator_fraction": burst.get("agents_per_second", math.nan) / rate,
            "load": loadavg(),
        }

    # -- 3. steady
    def steady(self) -> None:
        rate, seconds = self.args.steady_rate, self.args.steady_seconds
        count = int(rate * seconds)
        log(f"steady: {rate:g} Agents/s for {seconds:g} s ({count}) (load {loadavg()})")
        assert self.operator is not None
        names = [f"steady-{i:05d}" for i in range(count)]
        with (
            watching(self.api, NS_STEADY) as (agents, instances),
            PySpy(self.args.py_spy, self.operator.pid, "steady", gil=self.args.py_spy_gil),
        ):
            created = create_agents(self.api, NS_STEADY, names, self.args.clients, rate=rate)
            ok = [name for name in names if name not in created.failed]
            done = wait_ready(ok, agents, instances, self.args.timeout, "steady")
        self.agents_created[NS_STEADY] = len(ok)
        latencies = [done[name] - created.sent[name] for name in done]
        self.results["steady"] = {
            "rate": rate,
            "seconds": seconds,
            "created": len(ok),
            "failed_creates": len(created.failed),
            "ready": len(done),
            "latency": latency_summary(latencies),
            "latencies": latencies,
            "schedule_lag_p99": percentile(created.lag, 0.99),
            "load": loadavg(),
        }
        self.quiet_operator()

    # -- 4. scale
    def scale(self) -> None:
        assert self.operator is not None
        have = sum(self.agents_created.values())
        more = max(0, self.args.scale_n - have)
        log(f"scale: {more} more Agents to reach {self.args.scale_n} (load {loadavg()})")
        names = [f"scale-{i:05d}" for i in range(more)]
        started = time.monotonic()
        with watching(self.api, NS_SCALE) as (agents, instances):
            created = create_agents(self.api, NS_SCALE, names, self.args.clients)
            ok = [name for name in names if name not in created.failed]
            done = wait_ready(ok, agents, instances, self.args.timeout + more / 10, "scale")
        elapsed = time.monotonic() - started
        self.agents_created[NS_SCALE] = len(ok)
        self.quiet_operator()
        total = sum(self.agents_created.values())
        memory = rss_mb(self.operator.pid)
        self.results["scale"] = {
            "agents": total,
            "instances": total,
            "created": len(ok),
            "ready": len(done),
            "seconds": elapsed,
            "agents_per_second": len(done) / elapsed if elapsed > 0 else math.nan,
            "rss_mb": memory.get("VmRSS", math.nan),
            "peak_rss_mb": memory.get("VmHWM", math.nan),
            "idle_rss_mb": self.results.get("idle_rss_mb", math.nan),
            "store_bytes": _store_bytes(self.store_path),
            "smaps_mb": smaps_mb(self.operator.pid),
            "load": loadavg(),
        }

    # -- 5. restart
    def restart(self) -> None:
        assert self.operator is not None
        self.operator.stop(timeout=60)
        victims_ns = NS_SCALE if self.agents_created.get(NS_SCALE) else NS_BURST
        victims = self._names(victims_ns)[: self.args.restart_delete]
        log(
            f"restart: operator stopped; deleting {len(victims)} Agents in {victims_ns} "
            f"(load {loadavg()})"
        )
        for name in victims:
            self.api.call("DELETE", f"{API}/namespaces/{victims_ns}/agents/{name}")
        # The garbage collector removes the default instances: wait, so the sweep has both kinds.
        deadline = time.monotonic() + 120
        for name in victims:
            path = f"{API}/namespaces/{victims_ns}/agentinstances/{name}-default"
            while self.api.call("GET", path)[0] != 404 and time.monotonic() < deadline:
                time.sleep(0.2)
        live_agents = sum(self._count(ns, "agents") for ns in WATCHED)
        live_instances = sum(self._count(ns, "agentinstances") for ns in WATCHED)
        api_before = self.api.apiserver_requests()
        started = time.monotonic()
        process = self.start_operator()
        healthy = time.monotonic() - started
        idle_mark = self.args.quiet

        def probe() -> tuple[int, int, int]:
            counters = operator_counters(process)["reconciles"]
            agents = sum(v for (k, op, _), v in counters.items() if k == "Agent" and op == "resume")
            instances = sum(
                v for (k, op, _), v in counters.items() if k == "AgentInstance" and op == "resume"
            )
            deletes = sum(v for (_, op, _), v in counters.items() if op == "delete")
            return agents, instances, deletes

        with PySpy(self.args.py_spy, process.pid, "restart", gil=self.args.py_spy_gil):
            # Every scrape makes the operator count its store: poll gently.
            deadline = started + self.args.restart_timeout
            finished = False
            while time.monotonic() < deadline:
                agents, instances, _ = probe()
                if agents >= live_agents and instances >= live_instances:
                    finished = True
                    break
                time.sleep(1.0)
            last_change = wait_quiet(probe, idle_mark, 120) if finished else time.monotonic()
        remirror = last_change - started
        agents, instances, _ = probe()
        requests = operator_requests(api_before, self.api.apiserver_requests(), 0)
        sweep = _sweep_count(process.log_path)
        verify = subprocess.run(
            [
                sys.executable,
                "-P",
                "-m",
                "stigmer_operator",
                "store",
                "verify",
                f"--path={self.store_path}",
                *(f"--namespace={ns}" for ns in WATCHED),
            ],
            env={**os.environ, "KUBECONFIG": str(self.plane.admin_kubeconfig)},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        memory = rss_mb(process.pid)
        self.results["restart"] = {
            "live_agents": live_agents,
            "live_instances": live_instances,
            "deleted_while_down": len(victims),
            "healthy_seconds": healthy,
            "remirror_seconds": remirror,
            "finished": finished,
            "resumes_agent": agents,
            "resumes_instance": instances,
            "swept": sweep,
            "requests": {" ".join(k).strip(): v for k, v in sorted(requests.items())},
            "verify_exit": verify.returncode,
            "verify_tail": (verify.stdout + verify.stderr)[-400:],
            "rss_mb": memory.get("VmRSS", math.nan),
            "peak_rss_mb": memory.get("VmHWM", math.nan),
            "load": loadavg(),
        }

    def _names(self, namespace: str) -> list[str]:
        listing = self.api.json("GET", f"{API}/namespaces/{namespace}/agents")
        return sorted(item["metadata"]["name"] for item in listing.get("items") or [])

    def _count(self, namespace: str, plural: str) -> int:
        listing = self.api.json("GET", f"{API}/namespaces/{namespace}/{plural}")
        return len(listing.get("items") or [])


def _store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _sweep_count(log_path: Path) -> int | None:
    """The number the start-up sweep logged in the *last* run of the operator."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if "start-up sweep removed" in line:
            with contextlib.suppress(ValueError, IndexError):
                return int(line.split("start-up sweep removed", 1)[1].split()[0])
    return None


# -- report -----------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".2f") -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def report(results: Mapping[str, Any], args: argparse.Namespace) -> list[tuple[bool, str]]:
    checks: list[tuple[bool, str]] = []
    print(
        f"\nreconcile bench: {results['environment']['cpus']} CPUs, load at start "
        f"{results['environment']['load_start']}, kubernetes {results['environment']['kubernetes']}"
    )
    burst = results.get("burst")
    if burst:
        lat = burst["latency"]
        n = max(1, burst["n"])
        print(f"\nburst: {burst['n']} Agents, {burst['clients']} clients")
        print(f"  {'created in':<28}{_fmt(burst['create_seconds'])} s")
        print(
            f"  {'all Ready in':<28}{_fmt(burst['all_ready_seconds'])} s "
            f"({burst['ready']}/{burst['n']} Ready)"
        )
        print(f"  {'throughput':<28}{_fmt(burst['agents_per_second'], '.1f')} Agents/s")
        print(
            f"  {'create->Ready p50/p95/p99':<28}{_fmt(lat['p50'])} / {_fmt(lat['p95'])} / "
            f"{_fmt(lat['p99'])} s (max {_fmt(lat['max'])})"
        )
        print(
            f"  {'operator CPU':<28}{_fmt(burst['operator_cpu_seconds'], '.1f')} s "
            f"({_fmt(1000 * burst['operator_cpu_seconds'] / n, '.1f')} ms/Agent)"
        )
        print("  API requests per Agent (apiserver_request_total; bench's own creates excluded):")
        pipeline = burst["pipeline_writes"]
        verb_of = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}
        for key, count in burst["requests"].items():
            verb, resource, *sub = key.split(" ")
            label = f"{resource}/{sub[0]}" if sub else resource
            mine = pipeline.get(f"{verb_of.get(verb, verb.lower())} {label}")
            source = (
                ""
                if mine is None
                else f"  (pipeline {mine / n:.2f}, kopf/other {(count - mine) / n:.2f})"
            )
            print(f"    {verb:<7}{label:<24}{count / n:6.2f}{source}")
        writes = sum(v for k, v in burst["requests"].items() if k.split(" ")[0] in WRITE_VERBS)
        print(f"    {'writes':<31}{writes / n:6.2f}")
        recon = ", ".join(f"{k}={v}" for k, v in burst["reconciles"].items())
        print(f"  reconciles: {recon}")
        checks.append(
            (
                burst["agents_per_second"] >= TARGET_BURST_RATE * 0.999,
                f"burst: {_fmt(burst['agents_per_second'], '.1f')} Agents/s "
                f"(target >= {TARGET_BURST_RATE:g}/s, i.e. 1,000 in <= 20 s)",
            )
        )
    base = results.get("baseline")
    if base:
        print(
            f"\nbaseline (API-bound limit: the same writes, no operator, {base['clients']} clients)"
        )
        print(
            f"  {'requests':<28}{base['requests']} ({_fmt(base['requests_per_agent'])} per Agent"
            f"{', reads included' if base['includes_reads'] else ', writes only'})"
        )
        print(f"  {'time':<28}{_fmt(base['seconds'])} s")
        print(
            f"  {'limit':<28}{_fmt(base['agents_per_second'], '.1f')} Agents/s "
            f"({_fmt(base['requests_per_second'], '.0f')} requests/s)"
        )
        print(f"  {'operator / limit':<28}{_fmt(100 * base['operator_fraction'], '.0f')} %")
        checks.append(
            (
                base["operator_fraction"] >= TARGET_BASELINE_FRACTION,
                f"burst at {_fmt(100 * base['operator_fraction'], '.0f')} % of the API-bound limit "
                f"(target >= {100 * TARGET_BASELINE_FRACTION:.0f} %)",
            )
        )
    steady = results.get("steady")
    if steady:
        lat = steady["latency"]
        print(
            f"\nsteady: {steady['rate']:g} Agents/s for {steady['seconds']:g} s "
            f"({steady['ready']}/{steady['created']} Ready)"
        )
        print(
            f"  {'create->Ready p50/p95/p99':<28}{_fmt(lat['p50'])} / {_fmt(lat['p95'])} / "
            f"{_fmt(lat['p99'])} s (max {_fmt(lat['max'])})"
        )
        print(
            f"  {'client schedule lag p99':<28}{_fmt(1000 * steady['schedule_lag_p99'], '.0f')} ms"
        )
        checks.append(
            (
                lat["p99"] <= TARGET_STEADY_P99 and steady["ready"] == steady["created"],
                f"steady {steady['rate']:g}/s: p99 {_fmt(lat['p99'])} s "
                f"(target <= {TARGET_STEADY_P99:g} s)",
            )
        )
    scale = results.get("scale")
    if scale:
        print(f"\nscale: {scale['agents']} Agents + {scale['instances']} AgentInstances")
        print(
            f"  {'last batch':<28}{scale['created']} in {_fmt(scale['seconds'], '.1f')} s "
            f"({_fmt(scale['agents_per_second'], '.1f')} Agents/s)"
        )
        print(f"  {'RSS idle':<28}{_fmt(scale['idle_rss_mb'], '.0f')} MB")
        print(
            f"  {'RSS at scale (peak)':<28}{_fmt(scale['rss_mb'], '.0f')} MB "
            f"({_fmt(scale['peak_rss_mb'], '.0f')} MB)"
        )
        print(f"  {'store on disk':<28}{scale['store_bytes'] / 1e6:.1f} MB")
        checks.append(
            (
                scale["rss_mb"] <= TARGET_RSS_MB,
                f"RSS {_fmt(scale['rss_mb'], '.0f')} MB at {scale['agents']} Agents "
                f"(target <= {TARGET_RSS_MB:g} MB at 10,000)",
            )
        )
    restart = results.get("restart")
    if restart:
        print(
            f"\nrestart: {restart['live_agents']} Agents + {restart['live_instances']} "
            f"AgentInstances, {restart['deleted_while_down']} Agents deleted while down"
        )
        print(f"  {'healthy after':<28}{_fmt(restart['healthy_seconds'])} s")
        done = "" if restart.get("finished", True) else "NOT FINISHED after "
        print(
            f"  {'re-mirrored + swept in':<28}{done}{_fmt(restart['remirror_seconds'])} s "
            f"(resumes: {restart['resumes_agent']} Agent, {restart['resumes_instance']} "
            f"AgentInstance; swept {restart['swept']})"
        )
        objects = max(1, restart["live_agents"] + restart["live_instances"])
        print("  API requests per object (Agent or AgentInstance):")
        for key, count in restart["requests"].items():
            verb, resource, *sub = key.split(" ")
            label = f"{resource}/{sub[0]}" if sub else resource
            print(f"    {verb:<7}{label:<24}{count / objects:6.2f}")
        print(
            f"  {'store verify':<28}{'ok' if restart['verify_exit'] == 0 else 'DRIFT'} "
            f"(exit {restart['verify_exit']})"
        )
        print(
            f"  {'RSS after restart (peak)':<28}{_fmt(restart['rss_mb'], '.0f')} MB "
            f"({_fmt(restart['peak_rss_mb'], '.0f')} MB)"
        )
        checks.append(
            (
                restart["remirror_seconds"] <= TARGET_RESTART_S
                and restart.get("finished", True)
                and restart["verify_exit"] == 0,
                f"restart re-mirror of {objects} objects: "
                f"{_fmt(restart['remirror_seconds'], '.1f')} s (target <= {TARGET_RESTART_S:g} s "
                "for 10,000 Agents)",
            )
        )
    if checks:
        print("\ntargets (2-core reference machine):")
        for ok, text in checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return checks


def plot(results: Mapping[str, Any], path: Path) -> None:
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        log("--png: matplotlib is not installed; no plot")
        return
    phases = [(p, results[p]["latencies"]) for p in ("burst", "steady") if results.get(p)]
    if not phases:
        return
    fig, axes = plt.subplots(1, len(phases), figsize=(6 * len(phases), 4), squeeze=False)
    for ax, (phase, values) in zip(axes[0], phases, strict=True):
        ax.hist(values, bins=50)
        ax.set_title(f"{phase}: create->Ready (n={len(values)})")
        ax.set_xlabel("seconds")
        for q, style in ((0.5, "--"), (0.99, ":")):
            ax.axvline(percentile(values, q), linestyle=style, color="k", label=f"p{int(q * 100)}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    log(f"latency histogram: {path}")


# -- main ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, help="Agents in the burst and baseline (1000)")
    parser.add_argument("--clients", type=int, default=16, help="client threads creating Agents")
    parser.add_argument("--steady-rate", type=float, default=20.0, help="Agents/s")
    parser.add_argument("--steady-seconds", type=float, help="(60)")
    parser.add_argument("--scale-n", type=int, help="Agents held at the scale phase (10000)")
    parser.add_argument("--restart-delete", type=int, default=10, help="Agents deleted while down")
    parser.add_argument(
        "--quick", action="store_true", help="n=100, steady 5 s, scale 500 (explicit sizes win)"
    )
    parser.add_argument("--phases", default=",".join(PHASES), help=f"subset of {','.join(PHASES)}")
    parser.add_argument(
        "--baseline-reads",
        action="store_true",
        help="replay the operator's GETs in the baseline too",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per-phase wait for Ready")
    parser.add_argument(
        "--quiet",
        type=float,
        default=3.0,
        help="seconds without operator activity that count as done",
    )
    parser.add_argument(
        "--restart-timeout",
        type=float,
        default=900.0,
        help="give up waiting for the restarted operator to resume everything after this",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--png", type=Path, help="latency histogram (needs matplotlib)")
    parser.add_argument("--py-spy", type=Path, help="py-spy record each phase into this folder")
    parser.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="py-spy samples only the thread holding the GIL (CPU, not waiting)",
    )
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        help="extra argument for stigmer-operator run (repeatable)",
    )
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        help="NAME=VALUE for the operator's environment (repeatable)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the control plane and store here")
    parser.add_argument(
        "--hold", type=float, default=0, help="keep everything running this long at the end"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    sizes = {"n": (1000, 100), "steady_seconds": (60.0, 5.0), "scale_n": (10000, 500)}
    for name, (full, quick) in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return args


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM, and SIGINT even when a non-interactive shell started us in the
    # background with it ignored: unwind, so the operator and the control
    # plane are stopped by the context managers instead of left behind.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": {"cpus": os.cpu_count(), "load_start": loadavg()},
    }
    failed = False
    started = time.monotonic()
    try:
        log(f"control plane starting (workdir {workdir}, load {loadavg()})")
        plane = ControlPlane(
            crds=REPO_ROOT / "crds",
            workdir=workdir / "controlplane",
            keep_workdir=args.workdir is not None,
        )
        with plane:
            results["environment"]["kubernetes"] = plane.versions.kubernetes
            api = Api(plane.admin_kubeconfig, maxsize=max(args.clients, 2 * int(args.steady_rate)))
            for namespace in WATCHED:
                api.ensure_namespace(namespace)
            bench = Bench(args, plane, api, workdir / "store", results=results)
            results["controlplane_seconds"] = plane.startup_seconds
            process = bench.start_operator()
            try:
                time.sleep(args.quiet)  # let kopf settle after its initial listings
                results["idle_rss_mb"] = rss_mb(process.pid).get("VmRSS", math.nan)
                for phase in PHASES:
                    if phase in args.phases:
                        began = time.monotonic()
                        getattr(bench, phase)()
                        results.setdefault("phase_seconds", {})[phase] = time.monotonic() - began
                if args.hold:
                    log(
                        f"--hold: operator pid {bench.operator.pid if bench.operator else '-'}, "
                        f"KUBECONFIG={plane.admin_kubeconfig}; holding {args.hold:g} s"
                    )
                    time.sleep(args.hold)
            finally:
                if bench.operator is not None:
                    bench.operator.stop(timeout=60)
                    if bench.operator.returncode not in (0, None):
                        log(
                            f"operator exited with {bench.operator.returncode}:\n"
                            f"{bench.operator.log_tail(40)}"
                        )
                        failed = True
    except Exception:
        failed = True
        raise
    finally:
        results["wall_seconds"] = time.monotonic() - started
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2, default=str))
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    checks = report(results, args)
    if args.png:
        plot(results, args.png)
    incomplete = any(
        results.get(p, {}).get("ready", 0)
        < results.get(p, {}).get("created", results.get(p, {}).get("n", 0))
        for p in ("burst", "steady", "scale")
        if p in results
    )
    if failed or incomplete:
        return 2
    return 1 if args.strict and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
