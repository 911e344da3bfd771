"""Shared pytest fixtures: a real Kubernetes control plane for e2e tests.

Why: integration and e2e tests run against real etcd, kube-apiserver and
kube-controller-manager (see ``stigmer_testing.controlplane``), not
mocks. The control plane is started once per session and only when a test asks
for it, so unit tests need no binaries. When the binaries have not been built,
tests that need them fail (never skip) with a message saying how to build them.

Fixtures:

* ``control_plane`` (session): a started :class:`ControlPlane` with the CRDs
  in ``crds/`` applied and Established.
* ``kube_api`` (session): a ``kubernetes.client.ApiClient`` acting as admin.
* ``namespace`` (per test): a fresh namespace, deleted afterwards.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from stigmer_testing.controlplane import (
    BinariesMissingError,
    ControlPlane,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CRDS_DIR = REPO_ROOT / "crds"


def pytest_configure(config: pytest.Config) -> None:
    markers = config.getini("markers")
    if not any(str(m).startswith("e2e:") for m in markers):
        config.addinivalue_line(
            "markers",
            "e2e: needs the real control plane (etcd, kube-apiserver, kube-controller-manager)",
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the control plane is an e2e test (``-m 'not e2e'``)."""
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    try:
        plane = ControlPlane(crds=CRDS_DIR)
    except BinariesMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    with plane:
        yield plane


@pytest.fixture(scope="session")
def kube_api(control_plane: ControlPlane) -> Iterator[kubernetes.client.ApiClient]:
    with control_plane.client() as client:
        yield client


@pytest.fixture
def namespace(
    request: pytest.FixtureRequest, kube_api: kubernetes.client.ApiClient
) -> Iterator[str]:
    """A namespace named after the test, deleted (without waiting) afterwards."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:6]}"
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespace(
        kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name))
    )
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
