"""Small helpers the e2e tests share: API access the way a user sees objects."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import yaml

from stigmer_operator.api.kinds import GROUP, VERSION, Kind
from stigmer_operator.store.rocks import OpenMode, RocksStore

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"

#: The field manager of every write the tests make.
FIELD_MANAGER = "e2e-test"

VALID_SPEC: dict[str, Any] = {
    "instructions": "You answer questions about the weather, briefly.",
    "mcpServers": [{"name": "weather", "http": {"url": "https://weather.example.com/mcp"}}],
}


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Cluster:
    """CustomObjects/Core access for tests, returning plain dicts."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)

    def create(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        spec: Mapping[str, Any],
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind.value,
            "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": dict(spec),
        }
        return dict(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, body, field_manager=FIELD_MANAGER
            )
        )

    def create_agent(
        self,
        namespace: str,
        name: str,
        spec: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return self.create(Kind.AGENT, namespace, name, spec or VALID_SPEC, labels)

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, kind.plural, name
                )
            )
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str) -> list[dict[str, Any]]:
        listing = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural)
        return list(listing["items"])

    def patch_spec(self, kind: Kind, namespace: str, name: str, spec: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            kind.plural,
            name,
            {"spec": dict(spec)},
            field_manager=FIELD_MANAGER,
        )

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)

    def events(self, namespace: str, name: str) -> list[Any]:
        listing = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        return list(listing.items)

    def wait_ready(
        self, kind: Kind, namespace: str, name: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        return wait_for(
            lambda: _ready(self.get(kind, namespace, name)),
            timeout=timeout,
            what=f"{kind.value} {namespace}/{name} Ready=True",
        )

    def wait_condition(
        self, kind: Kind, namespace: str, name: str, type_: str, status: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = self.get(kind, namespace, name)
            return obj if obj and condition(obj, type_).get("status") == status else None

        return wait_for(
            probe, timeout=timeout, what=f"{kind.value} {namespace}/{name} {type_}={status}"
        )


def condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for item in obj.get("status", {}).get("conditions", []) or []:
        if item.get("type") == type_:
            return dict(item)
    return {}


def _ready(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    ready = condition(obj, "Ready")
    generation = obj["metadata"].get("generation")
    if (
        ready.get("status") == "True"
        and obj.get("status", {}).get("observedGeneration") == generation
    ):
        return obj
    return None


def read_store(path: Path) -> RocksStore:
    """A read-only view of a store another process holds open for writing."""
    return RocksStore.open(path, OpenMode.READ_ONLY)


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
