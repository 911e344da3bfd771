"""The control-plane fixture itself: real apiserver, RBAC, tokens, GC, clean stop.

Why: every e2e test of the operator relies on this fixture behaving like a
real cluster (pinned version, RBAC enforced for ServiceAccount tokens, the
garbage collector running) and on it leaving no processes behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import kubernetes
import pytest

from stigmer_testing.controlplane import ControlPlane, pid_alive

pytestmark = pytest.mark.e2e


def test_apiserver_and_kubectl_report_the_pinned_version(
    control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient
) -> None:
    pinned = control_plane.versions.kubernetes
    info = kubernetes.client.VersionApi(kube_api).get_code()
    assert info.git_version == pinned
    assert (info.major, info.minor) == ("1", pinned.split(".")[1])

    out = control_plane.kubectl("version", "--client", "-o", "json").stdout
    assert json.loads(out)["clientVersion"]["gitVersion"] == pinned


def test_serviceaccount_token_is_least_privileged(
    control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    token = control_plane.token_for(namespace, "reader")
    with control_plane.client(control_plane.kubeconfig_for_token(token)) as sa_client:
        review = kubernetes.client.AuthenticationV1Api(sa_client).create_self_subject_review(
            kubernetes.client.V1SelfSubjectReview()
        )
        assert review.status is not None
        assert review.status.user_info is not None
        assert review.status.user_info.username == f"system:serviceaccount:{namespace}:reader"

        with pytest.raises(kubernetes.client.ApiException) as denied:
            kubernetes.client.CoreV1Api(sa_client).list_secret_for_all_namespaces()
        assert denied.value.status == 403

    secrets = kubernetes.client.CoreV1Api(kube_api).list_secret_for_all_namespaces()
    assert secrets.items is not None


def test_garbage_collector_deletes_orphaned_dependent(
    kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    owner_meta = kubernetes.client.V1ObjectMeta(name="owner")
    owner = core.create_namespaced_config_map(
        namespace, kubernetes.client.V1ConfigMap(metadata=owner_meta)
    )
    assert owner.metadata is not None and owner.metadata.uid
    reference = kubernetes.client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        namespace,
        kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(name="dependent", owner_references=[reference])
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)

    deadline = time.monotonic() + 60
    while True:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except kubernetes.client.ApiException as exc:
            assert exc.status == 404
            break
        assert time.monotonic() < deadline, "garbage collector did not delete the dependent"
        time.sleep(0.5)


def test_apply_crds_skips_missing_or_empty_folder(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    assert control_plane.apply_crds(tmp_path / "absent") == []
    assert control_plane.apply_crds(tmp_path) == []


def test_separate_control_plane_restarts_and_leaves_no_process(tmp_path: Path) -> None:
    plane = ControlPlane()
    with plane:
        pids = plane.pids
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert all(pid_alive(pid) for pid in pids.values())

        # A tiny CRD goes through apply + Established.
        crds = tmp_path / "crds"
        crds.mkdir()
        (crds / "widget.yaml").write_text(_WIDGET_CRD)
        assert plane.apply_crds(crds) == ["widgets.example.stigmer.ai"]

        plane.kubectl("create", "configmap", "survivor", "--from-literal=k=v")
        plane.restart_etcd(kill=True)  # a crash: the data must survive
        plane.restart_apiserver()
        assert plane.pids["etcd"] != pids["etcd"]
        assert plane.pids["kube-apiserver"] != pids["kube-apiserver"]
        got = plane.kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}")
        assert got.stdout == "v"
        all_pids = set(pids.values()) | set(plane.pids.values())
        workdir = plane.workdir

    assert plane.pids == {}
    alive = [pid for pid in all_pids if pid_alive(pid)]
    assert alive == [], f"processes left behind: {alive}"
    assert not workdir.exists()


_WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.stigmer.ai
spec:
  group: example.stigmer.ai
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""
