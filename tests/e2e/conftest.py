"""e2e fixtures: the operator as a real process against the real control plane.

``operator_process`` is shared by the session (starting kopf costs seconds);
tests isolate themselves with their own namespace. Tests that kill, restart
or stop the operator start their own :class:`OperatorProcess` instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import kubernetes
import pytest

from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import Cluster

PLATFORM_NAMESPACE = "stigmer-system"
#: The shared operator watches the per-test namespaces (``t-*``) and the platform
#: namespace; tests that run an operator of their own use ``p-*`` namespaces, so
#: no object is ever reconciled by two operators at once.
#: (Two patterns, not one "a,b": in kopf's syntax a later inclusive glob of the
#: same pattern only re-includes what an earlier exclusion removed.)
SHARED_NAMESPACES = ("t-*", PLATFORM_NAMESPACE)


@pytest.fixture(scope="session")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stores")


@pytest.fixture(scope="session")
def operator_process(control_plane: ControlPlane, store_root: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        control_plane.admin_kubeconfig,
        store_root / "shared",
        args=[
            f"--platform-namespace={PLATFORM_NAMESPACE}",
            *(f"--namespace={pattern}" for pattern in SHARED_NAMESPACES),
        ],
    )
    with process:
        yield process
    assert process.returncode == 0, f"operator did not exit cleanly:\n{process.log_tail()}"


@pytest.fixture(scope="session")
def cluster(kube_api: kubernetes.client.ApiClient) -> Cluster:
    return Cluster(kube_api)


@pytest.fixture
def private_namespace(kube_api: kubernetes.client.ApiClient) -> Iterator[str]:
    """A ``p-*`` namespace the shared operator does not watch (for a private operator)."""
    core = kubernetes.client.CoreV1Api(kube_api)
    name = f"p-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def private_operator(
    control_plane: ControlPlane, private_namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """An operator of the test's own, watching only ``private_namespace``; not started."""
    process = OperatorProcess(
        control_plane.admin_kubeconfig,
        tmp_path / "store",
        args=[f"--namespace={private_namespace}"],
    )
    yield process
    process.stop()


@pytest.fixture
def namespace_factory(kube_api: kubernetes.client.ApiClient) -> Iterator[Callable[[], str]]:
    """Extra namespaces for tests that need more than one; deleted afterwards."""
    core = kubernetes.client.CoreV1Api(kube_api)
    created: list[str] = []

    def make() -> str:
        name = f"t-extra-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name}})
        created.append(name)
        return name

    yield make
    for name in created:
        core.delete_namespace(name)


@pytest.fixture(autouse=True)
def _operator_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Attach the shared operator's log tail to a failing e2e test's report."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "operator_process" in request.fixturenames:
        process: OperatorProcess = request.getfixturevalue("operator_process")
        report.sections.append(("operator log", process.log_tail(120)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
