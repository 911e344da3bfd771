"""The bad-input corpus: every manifest in ``bad_inputs/`` is answered as it says.

Each YAML file is one case: a header comment saying what it is, optional
setup documents (annotation ``e2e.stigmer.ai/role: setup``, applied and
settled first), and one document whose annotation ``e2e.stigmer.ai/expect``
says what must happen when it is applied with ``kubectl apply``:

``refused: <text>``
    The API server refuses it (schema, CEL, size limits); ``<text>`` is part
    of the message ``kubectl`` prints. Nothing is created or changed.
``ready-false: <Reason>``
    Accepted by the API, refused by the operator's pipeline: ``Ready=False``
    and ``Accepted=False`` with that reason, one Warning Event, no default
    instance, no store entry, and exactly one reconcile attempt (no retry
    loop, per ``stigmer_reconcile_total{result="<Reason>"}``).
``ready`` (optionally ``ready: slug=<slug>`` or ``ready: secret=<value>``)
    Accepted and Ready; an Agent's slug is a DNS label (the given one, if
    any), its default instance is Ready and every name and label value the
    operator derived is valid; a ``secret`` never appears in the status,
    the Events or the operator's log.

Files may use ``${NS}``, ``${NS2}`` and ``${NS3}`` (fresh ``t-*``
namespaces: the case's own, its own org; the other two labelled by the
fixture, as a cluster admin would, with the org ``${ORG}-twins``),
``${ORG}`` (an org name unique to the run) and
``${REPEAT:<count>:<text>}`` (``<text>`` repeated, for the size cases: a
4 MB manifest does not belong in git).

Everything is applied in one batch to namespaces the shared operator
watches, then waited for together; the parametrized tests judge each file.
The shared operator must survive all of it (same PID), never log an
unexpected error, and never write the store for a refused object.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from stigmer_operator.api.kinds import DEFAULT_INSTANCE_LABEL, ORG_LABEL, Kind
from stigmer_operator.store import NotFoundError
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import FIELD_MANAGER, Cluster, condition, read_store, wait_for
from tests.e2e.test_refusals import reconcile_attempts

CORPUS_DIR = Path(__file__).parent / "bad_inputs"
CORPUS = sorted(CORPUS_DIR.glob("*.yaml"))
EXPECT = "e2e.stigmer.ai/expect"
ROLE = "e2e.stigmer.ai/role"
KINDS = {kind.value: kind for kind in Kind}

_REPEAT = re.compile(r"\$\{REPEAT:(\d+):([^}]*)\}")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: Log lines that mean the operator hit something it did not expect.
_UNEXPECTED = ("Traceback", "raised unexpectedly", "unexpected error", "Throttling for")
#: Reasons of failures that are the operator's or the cluster's, never the object's.
_INFRASTRUCTURE_FAILURES = ("InternalError", "KubernetesApiError", "StoreError")
#: Seconds a retry loop gets to show itself after everything settled.
RETRY_WINDOW = 3.0


@dataclass
class Case:
    path: Path
    setup: list[dict[str, Any]]
    doc: dict[str, Any]
    verdict: str  # refused | ready-false | ready
    detail: str
    namespace: str = ""
    # filled in by the run
    returncode: int | None = None
    stderr: str = ""
    before: dict[str, Any] | None = None  # the object as set up, for a refused update

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def options(self) -> dict[str, str]:
        """``slug=x`` / ``secret=y`` of a ``ready: ...`` expectation."""
        if self.verdict != "ready" or not self.detail:
            return {}
        key, _, value = self.detail.partition("=")
        return {key.strip(): value.strip()}


def load(path: Path, subs: Mapping[str, str]) -> Case:
    text = path.read_text()
    for key, value in subs.items():
        text = text.replace("${" + key + "}", value)
    text = _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    cases = [d for d in docs if EXPECT in (d.get("metadata", {}).get("annotations") or {})]
    assert len(cases) == 1, f"{path.name}: exactly one document must carry {EXPECT}"
    setup = [d for d in docs if d is not cases[0]]
    for doc in setup:
        assert doc["metadata"].get("annotations", {}).get(ROLE) == "setup", path.name
    verdict, _, detail = str(cases[0]["metadata"]["annotations"][EXPECT]).partition(":")
    assert verdict in ("refused", "ready-false", "ready"), f"{path.name}: {verdict!r}"
    return Case(path, setup, cases[0], verdict, detail.strip())


def _kubectl_apply(plane: ControlPlane, namespace: str, docs: list[dict[str, Any]]) -> Any:
    return plane.kubectl(
        "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-n", namespace, "-f", "-",
        input=yaml.safe_dump_all(docs, allow_unicode=True, width=1 << 30), check=False,
        timeout=180,
    )  # fmt: skip


def _get(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    if kind in KINDS:
        return cluster.get(KINDS[kind], namespace, name)
    return None


def _settled(cluster: Cluster, case: Case) -> bool:
    if case.verdict == "refused":
        return True
    obj = _get(cluster, case.kind, case.namespace, case.name)
    if obj is None or obj.get("status", {}).get("observedGeneration") != obj["metadata"].get(
        "generation"
    ):
        return False
    ready = condition(obj, "Ready").get("status")
    if case.verdict == "ready-false":
        return ready == "False"
    if ready != "True":
        return False
    if case.kind == Kind.AGENT.value:
        instance = cluster.get(Kind.AGENT_INSTANCE, case.namespace, obj["status"].get(
            "defaultInstanceName", ""))  # fmt: skip
        return instance is not None and condition(instance, "Ready").get("status") == "True"
    return True


@dataclass
class Run:
    cases: dict[str, Case]
    operator: OperatorProcess
    pid: int | None
    namespaces: tuple[str, ...]
    metrics: Counter[str] = field(default_factory=Counter)
    log: str = ""
    seconds: float = 0.0


@pytest.fixture(scope="module")
def run(
    control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient,
    operator_process: OperatorProcess,
) -> Iterator[Run]:  # fmt: skip
    cluster = Cluster(kube_api)
    suffix = uuid.uuid4().hex[:6]
    ns, ns2, ns3 = f"t-corpus-{suffix}", f"t-corpus2-{suffix}", f"t-corpus3-{suffix}"
    twins = {ORG_LABEL: f"org-{suffix}-twins"}
    for name in (ns, ns2, ns3):
        labels = twins if name != ns else {}
        cluster.core.create_namespace({"metadata": {"name": name, "labels": labels}})
    subs = {"NS": ns, "NS2": ns2, "NS3": ns3, "ORG": f"org-{suffix}"}
    cases = {path.name: load(path, subs) for path in CORPUS}
    for case in cases.values():
        case.namespace = case.doc["metadata"].get("namespace", ns)
    started = time.monotonic()
    try:
        # Setup first, settled: the cases build on it.
        setup = [doc for case in cases.values() for doc in case.setup]
        for where in (ns, ns2, ns3):
            docs = [d for d in setup if d["metadata"].get("namespace", ns) == where]
            if not docs:
                continue
            applied = _kubectl_apply(control_plane, where, docs)
            assert applied.returncode == 0, applied.stderr
        for doc in setup:
            if doc["kind"] == Kind.AGENT.value:
                cluster.wait_ready(Kind.AGENT, doc["metadata"].get("namespace", ns),
                                   doc["metadata"]["name"], timeout=60)  # fmt: skip
        for case in cases.values():
            case.before = _get(cluster, case.kind, case.namespace, case.name)

        reasons = {c.detail for c in cases.values() if c.verdict == "ready-false"}
        baseline = {r: reconcile_attempts(operator_process, r) for r in reasons}
        log_offset = operator_process.log_path.stat().st_size
        pid = operator_process.pid

        def apply(case: Case) -> None:
            result = _kubectl_apply(control_plane, case.namespace, [case.doc])
            case.returncode, case.stderr = result.returncode, result.stderr

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(apply, cases.values()))
        wait_for(lambda: all(_settled(cluster, c) for c in cases.values()), timeout=90,
                 interval=0.5, what="every accepted case to settle")  # fmt: skip
        time.sleep(RETRY_WINDOW)  # long enough for a retry loop to show itself
        result = Run(
            cases, operator_process, pid, (ns, ns2, ns3), seconds=time.monotonic() - started
        )
        for reason, before in baseline.items():
            result.metrics[reason] = int(reconcile_attempts(operator_process, reason) - before)
        with operator_process.log_path.open("rb") as log:
            log.seek(log_offset)
            result.log = log.read().decode(errors="replace")
        yield result
    finally:
        for name in (ns, ns2, ns3):
            cluster.core.delete_namespace(name)


def test_corpus_is_large_and_every_file_says_what_it_tests() -> None:
    assert len(CORPUS) >= 40
    verdicts: Counter[str] = Counter()
    for path in CORPUS:
        assert path.read_text().startswith("# "), f"{path.name}: header comment"
        case = load(path, {"NS": "ns", "NS2": "ns2", "NS3": "ns3", "ORG": "org"})
        verdicts[case.verdict] += 1
    assert set(verdicts) == {"refused", "ready-false", "ready"}, verdicts


def test_operator_survives_the_corpus(run: Run) -> None:
    print(f"corpus of {len(run.cases)} files settled in {run.seconds:.1f}s")
    assert run.operator.pid == run.pid and run.operator.returncode is None
    unexpected = [line for line in run.log.splitlines() if any(m in line for m in _UNEXPECTED)]
    assert not unexpected, "\n".join(unexpected[:20])
    # One reconcile per refused object: a permanent error is never retried.
    # Counted per object from its log lines: the operator-wide counters also
    # see other tests' namespaces draining (an Agent deleted there re-runs the
    # instances that reference it, which then fail with AgentNotFound).
    refused = [c for c in run.cases.values() if c.verdict == "ready-false"]
    attempts = {c.path.name: _failed_attempts(run.log, c) for c in refused}
    assert attempts == dict.fromkeys(attempts, 1)
    # ... and each was counted under its reason in stigmer_reconcile_total.
    expected = Counter(c.detail for c in refused)
    assert all(run.metrics[reason] >= count for reason, count in expected.items()), run.metrics
    # No infrastructure failure on a corpus object. Judged by the log lines of
    # the corpus namespaces, not by the operator-wide counters: a namespace an
    # earlier test deleted may still be draining through the same operator.
    ours = [
        line for line in run.log.splitlines() if any(f" {ns}/" in line for ns in run.namespaces)
    ]
    assert any("Handler 'agent_created' succeeded" in line for line in ours), "no object prefix?"
    failures = [line for line in ours if any(r in line for r in _INFRASTRUCTURE_FAILURES)]
    assert not failures, "\n".join(failures[:20])


def _failed_attempts(log: str, case: Case) -> int:
    """Reconciles of the case's own object that failed, per the operator's log."""
    where = f"{case.kind} {case.namespace}/{case.name}"
    kopf_line = f"[{where}] Handler '"  # a kopf handler run that raised
    quiet_line = f"handlers.common: {where} ("  # a re-run triggered by another object
    return sum(
        1
        for line in log.splitlines()
        if (kopf_line in line and " failed " in line) or quiet_line in line
    )


@pytest.mark.parametrize("file", [p.name for p in CORPUS])
def test_bad_input(run: Run, cluster: Cluster, file: str) -> None:
    case = run.cases[file]
    obj = _get(cluster, case.kind, case.namespace, case.name)
    if case.verdict == "refused":
        assert case.returncode != 0, f"{file} was accepted"
        assert case.detail in case.stderr, case.stderr[:2000]
        if case.before is None:
            assert obj is None, f"{file}: refused but created"
        else:  # a refused update leaves the object as it was
            assert obj is not None and obj["spec"] == case.before["spec"]
        _assert_not_mirrored(run, case)
        return

    assert case.returncode == 0, case.stderr[:2000]
    assert obj is not None
    ready = condition(obj, "Ready")
    events = cluster.events(case.namespace, case.name)
    if case.verdict == "ready-false":
        accepted = condition(obj, "Accepted")
        assert (ready["status"], ready["reason"]) == ("False", case.detail), ready
        if case.detail in BLOCKED:
            assert (accepted["status"], accepted["reason"]) == ("True", "Accepted"), accepted
        else:
            assert (accepted["status"], accepted["reason"]) == ("False", case.detail), accepted
        assert ready["message"], "a refusal says why"
        warnings = [e.reason for e in events if e.type == "Warning"]
        assert warnings == [case.detail], warnings
        if case.kind == Kind.AGENT.value:
            owned = [i for i in cluster.list(Kind.AGENT_INSTANCE, case.namespace)
                     if any(r.get("uid") == obj["metadata"]["uid"]
                            for r in i["metadata"].get("ownerReferences", []))]  # fmt: skip
            assert not owned, "a refused Agent gets no default instance"
        _assert_not_mirrored(run, case)
        return

    assert ready["status"] == "True", ready
    assert not [e for e in events if e.type == "Warning"]
    texts = [json.dumps(obj["status"], ensure_ascii=False)] + [e.message or "" for e in events]
    if case.kind == Kind.AGENT.value:
        slug = obj["status"]["slug"]
        assert _DNS_LABEL.match(slug) and len(slug) <= 63, slug
        if "slug" in case.options:
            assert slug == case.options["slug"]
        instance = cluster.get(Kind.AGENT_INSTANCE, case.namespace,
                               obj["status"]["defaultInstanceName"])  # fmt: skip
        assert instance is not None and condition(instance, "Ready")["status"] == "True"
        _assert_valid_names(instance)
        assert instance["metadata"]["labels"][DEFAULT_INSTANCE_LABEL] == "true"
        texts.append(json.dumps(instance["status"], ensure_ascii=False))
        texts += [
            e.message or "" for e in cluster.events(case.namespace, instance["metadata"]["name"])
        ]
    if "secret" in case.options:
        secret = case.options["secret"]
        assert not [t for t in texts if secret in t], "the secret leaked into status or Events"
        assert secret not in run.log, "the secret leaked into the operator's log"
    with read_store(run.operator.store_path) as store:
        mirrored = store.get_by_name(KINDS[case.kind], case.namespace, case.name)
        assert len(store.history(KINDS[case.kind], mirrored.metadata.id)) == 1


def _assert_valid_names(obj: Mapping[str, Any]) -> None:
    name = obj["metadata"]["name"]
    assert len(name) <= 253 and _DNS_SUBDOMAIN.match(name), name
    for key, value in obj["metadata"].get("labels", {}).items():
        assert len(value) <= 63 and _LABEL_VALUE.match(value), (key, value)
    account = obj["status"].get("serviceAccountName")
    if account:
        assert len(account) <= 253 and _DNS_SUBDOMAIN.match(account), account


#: Another object stands in the way: the spec is accepted and mirrored
#: (``Accepted=True``), the object is not Ready, and it is retried slowly.
BLOCKED = frozenset({"DefaultInstanceConflict", "IamConflict"})


def _assert_not_mirrored(run: Run, case: Case) -> None:
    if case.kind not in KINDS:
        return
    with read_store(run.operator.store_path) as store:
        if case.detail in BLOCKED:
            store.get_by_name(KINDS[case.kind], case.namespace, case.name)  # mirrored
            return
        try:
            mirrored = store.get_by_name(KINDS[case.kind], case.namespace, case.name)
        except NotFoundError:
            return
    assert case.before is not None, f"{case.path.name}: refused but mirrored"
    assert mirrored.metadata.generation == case.before["metadata"]["generation"]
