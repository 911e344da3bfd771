"""Talking to the API server: a lean client, watches that time Readiness, creating Agents."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from .common import API, FIELD_MANAGER, agent_manifest, log


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
