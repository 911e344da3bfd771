"""Converge under churn: random concurrent edits, crashes and API restarts, then invariants.

Workers create, edit and delete Agents and AgentInstances in random order --
an instance before its Agent, two Agents with one display name applied
together, sharing granted and revoked, envRefs added and removed, default
instances deleted, labels and annotations edited -- while the operator is
SIGKILLed and restarted and the kube-apiserver restarted. Once the churn
stops, everything must settle within a bounded time into a state that
satisfies the invariants in :func:`violations`.

Sizes: ``STIGMER_CHURN_OPS`` operations (default 150, across 3 workers),
at most ``STIGMER_CHURN_SECONDS`` of churn (default 30), seed
``STIGMER_CHURN_SEED`` (default: a fresh one, printed). A failure prints the
seed and the operation log; the same seed replays the same operations per
worker (their interleaving still depends on timing). ``make test`` runs
the default size; ``docs/reliability.md`` says how to run a larger one.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import urllib3

from stigmer_operator.api.kinds import GROUP, VERSION, Kind
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.pipeline.consent import ALLOWED_INSTANCES_ANNOTATION
from stigmer_testing.controlplane import ControlPlane
from stigmer_testing.operator_process import OperatorProcess
from tests.e2e.helpers import REPO_ROOT, VALID_SPEC, Cluster, condition, read_store
from tests.e2e.test_restart import verify_run
from tests.e2e.test_survival_outage import _retrying

OPS = int(os.environ.get("STIGMER_CHURN_OPS", "150"))
CHURN_SECONDS = float(os.environ.get("STIGMER_CHURN_SECONDS", "30"))
SEED = int(os.environ.get("STIGMER_CHURN_SEED") or random.SystemRandom().randrange(1_000_000))
WORKERS = 3
#: From the end of the churn until every invariant holds. Above kopf's 30 s
#: consistency timeout (a watch cut by a restart holds handlers that long).
SETTLE_SECONDS = 75.0

AGENTS = [f"a{i}" for i in range(6)]
INSTANCES = [f"i{i}" for i in range(6)]
DISPLAY_NAMES = ["Alpha", "Beta", "Gamma"]
REFS = [("Secret", "s0"), ("Secret", "s1"), ("ConfigMap", "c0")]


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own: restarting it disturbs no other test."""
    with ControlPlane(crds=REPO_ROOT / "crds") as control_plane:
        yield control_plane


@pytest.fixture(scope="module")
def cluster(plane: ControlPlane) -> Iterator[Cluster]:
    with plane.client() as client:
        yield Cluster(client)


@dataclass
class World:
    """The namespaces of one churn run: Agents live in ``home``; instances in both."""

    cluster: Cluster
    home: str
    guest: str
    log: list[str] = field(default_factory=list)
    chaos_done: int = 0
    started: float = field(default_factory=time.monotonic)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def note(self, worker: str, what: str) -> None:
        with self._guard:
            self.log.append(f"{time.monotonic() - self.started:7.2f}s {worker:>7} {what}")

    # -- API calls, retried through outages like a user's client ----------------
    def create(self, kind: Kind, namespace: str, name: str, spec: Mapping[str, Any]) -> bool:
        """Create; False if it exists already (or the API refused it).

        ``_retrying`` answers a conflict with ``None``: on a retry it is the
        earlier attempt that went through, but on the first attempt the
        object existed before, and an apply must then edit it.
        """
        attempts = 0

        def attempt() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            return self.cluster.create(kind, namespace, name, spec)

        try:
            created = _retrying(attempt, timeout=60)
        except kubernetes.client.ApiException as error:
            if error.status == 422:  # immutable agentRef / CEL refusal
                return False
            raise
        return created is not None or attempts > 1

    def apply_agent(self, name: str, spec: Mapping[str, Any]) -> None:
        """What ``kubectl apply`` does: create the Agent, or edit the one that exists."""
        if not self.create(Kind.AGENT, self.home, name, spec):
            self.patch(Kind.AGENT, self.home, name, {"spec": dict(spec)})

    def patch(self, kind: Kind, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        custom = self.cluster.custom
        try:
            _retrying(lambda: custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, name, dict(patch)), timeout=60)  # fmt: skip
        except kubernetes.client.ApiException as error:
            if error.status not in (404, 422):
                raise

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        try:
            _retrying(lambda: self.cluster.delete(kind, namespace, name), timeout=60)
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise


def agent_spec(rng: random.Random, world: World) -> dict[str, Any]:
    return {
        **VALID_SPEC,
        "displayName": rng.choice(DISPLAY_NAMES),
        "instructions": f"You answer questions, variant {rng.randrange(3)}; be brief.",
        "sharing": [world.guest] if rng.random() < 0.5 else [],
    }


def instance_spec(rng: random.Random, world: World, agent: str) -> dict[str, Any]:
    refs = rng.sample(REFS, rng.randrange(len(REFS) + 1))
    return {
        "agentRef": {"name": agent, "namespace": world.home},
        "environmentRefs": [{"kind": kind, "name": name} for kind, name in refs],
    }


# -- operations: each picks its arguments from ``rng`` and does one user action ------


def apply_agent(rng: random.Random, world: World, worker: str) -> None:
    name, spec = rng.choice(AGENTS), agent_spec(rng, world)
    world.note(worker, f"apply Agent {name} displayName={spec['displayName']} "
                       f"sharing={spec['sharing']}")  # fmt: skip
    world.apply_agent(name, spec)


def twin_agents(rng: random.Random, world: World, worker: str) -> None:
    """Two Agents with one display name in one apply (concurrently)."""
    names, display = rng.sample(AGENTS, 2), rng.choice(DISPLAY_NAMES)
    world.note(worker, f"apply twins {names} displayName={display}")
    spec = {**agent_spec(rng, world), "displayName": display}
    threads = [threading.Thread(target=world.apply_agent, args=(name, spec)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def toggle_sharing(rng: random.Random, world: World, worker: str) -> None:
    name, share = rng.choice(AGENTS), rng.random() < 0.5
    world.note(worker, f"sharing of Agent {name} with guest: {share}")
    world.patch(Kind.AGENT, world.home, name, {"spec": {"sharing": [world.guest] if share else []}})


def delete_agent(rng: random.Random, world: World, worker: str) -> None:
    name = rng.choice(AGENTS)
    world.note(worker, f"delete Agent {name}")
    world.delete(Kind.AGENT, world.home, name)


def apply_instance(rng: random.Random, world: World, worker: str) -> None:
    namespace = rng.choice([world.home, world.guest])
    name, agent = rng.choice(INSTANCES), rng.choice(AGENTS)
    spec = instance_spec(rng, world, agent)
    refs = [r["name"] for r in spec["environmentRefs"]]
    world.note(worker, f"apply AgentInstance {namespace}/{name} -> {agent} refs={refs}")
    if not world.create(Kind.AGENT_INSTANCE, namespace, name, spec):
        world.patch(Kind.AGENT_INSTANCE, namespace, name,
                    {"spec": {"environmentRefs": spec["environmentRefs"]}})  # fmt: skip


def delete_instance(rng: random.Random, world: World, worker: str) -> None:
    namespace, name = rng.choice([world.home, world.guest]), rng.choice(INSTANCES)
    world.note(worker, f"delete AgentInstance {namespace}/{name}")
    world.delete(Kind.AGENT_INSTANCE, namespace, name)


def delete_default_instance(rng: random.Random, world: World, worker: str) -> None:
    name = f"{rng.choice(AGENTS)}-default"
    world.note(worker, f"delete default AgentInstance {name}")
    world.delete(Kind.AGENT_INSTANCE, world.home, name)


def edit_metadata(rng: random.Random, world: World, worker: str) -> None:
    kind = rng.choice(list(Kind))
    namespace = world.home if kind is Kind.AGENT else rng.choice([world.home, world.guest])
    name = rng.choice(AGENTS if kind is Kind.AGENT else INSTANCES)
    value = str(rng.randrange(4)) if rng.random() < 0.75 else None
    where = rng.choice(["labels", "annotations"])
    world.note(worker, f"{where} of {kind.value} {namespace}/{name}: churn.example.com/v={value}")
    world.patch(kind, namespace, name, {"metadata": {where: {"churn.example.com/v": value}}})


OPERATIONS: list[tuple[Callable[[random.Random, World, str], None], int]] = [
    (apply_agent, 6),
    (twin_agents, 1),
    (toggle_sharing, 2),
    (delete_agent, 2),
    (apply_instance, 6),
    (delete_instance, 2),
    (delete_default_instance, 1),
    (edit_metadata, 3),
]


def worker(world: World, number: int, ops: int, deadline: float, errors: list[str]) -> None:
    rng = random.Random(SEED * 100 + number)
    name = f"w{number}"
    actions, weights = zip(*OPERATIONS, strict=True)
    try:
        done = 0
        while done < ops or (world.chaos_done < 2 and time.monotonic() < deadline):
            if time.monotonic() > deadline:
                world.note(name, "churn time is up")
                return
            rng.choices(actions, weights)[0](rng, world, name)
            done += 1
            time.sleep(rng.random() * 0.2)
    except Exception as error:  # reported by the test with the log
        errors.append(f"{name}: {error!r}")


def chaos(plane: ControlPlane, operator: OperatorProcess, world: World,
          workers: list[threading.Thread], period: float) -> None:  # fmt: skip
    """Until the workers are done: SIGKILL + restart the operator, restart the kube-apiserver.

    Runs in the test's main thread: the control plane's processes die with
    the thread that started them. The first restart comes early, so even a
    short churn sees both at least once (the workers go on until two were done).
    """
    rng = random.Random(SEED)
    turn = 0
    while _sleep_while_alive(workers, period * (0.2 + rng.random()) if turn else 1.0):
        if turn % 2 == 0:
            world.note("chaos", "SIGKILL the operator, start it again")
            operator.kill()
            operator.start()
        else:
            world.note("chaos", "restart the kube-apiserver (2 s down)")
            _restart_apiserver(plane, world)
        turn += 1
        world.chaos_done = turn


def _sleep_while_alive(threads: list[threading.Thread], seconds: float) -> bool:
    """Sleep ``seconds`` or until every thread ended; True if some thread still runs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(thread.is_alive() for thread in threads):
            return False
        time.sleep(0.1)
    return True


def _restart_apiserver(plane: ControlPlane, world: World) -> None:
    """Stop and start the kube-apiserver; a failed start is noted and tried again."""
    plane.stop_apiserver()
    time.sleep(2)
    for attempt in range(3):
        try:
            plane.start_apiserver()
            return
        except Exception as error:  # noted in the operation log
            world.note("chaos", f"kube-apiserver start {attempt + 1} failed: {error!r}")
            plane.stop_apiserver(kill=True)
    raise AssertionError("the kube-apiserver did not come back")


# -- invariants -------------------------------------------------------------------


def accepted_refs(instance: Mapping[str, Any]) -> set[str]:
    """The Secrets/ConfigMaps the operator accepted for a Ready instance: what its Role grants.

    The one place that decides it: today every ref of a Ready instance's spec.
    """
    return {ref["name"] for ref in instance["spec"].get("environmentRefs") or []}


def _is(obj: Mapping[str, Any], type_: str, status: str) -> bool:
    return condition(obj, type_).get("status") == status


def violations(plane: ControlPlane, operator: OperatorProcess, world: World) -> list[str]:
    """Every way the cluster, its status and the mirror disagree with the truth."""
    cluster, home = world.cluster, world.home
    agents = {a["metadata"]["name"]: a for a in cluster.list(Kind.AGENT, home)}
    instances = {
        (ns, i["metadata"]["name"]): i
        for ns in (home, world.guest)
        for i in cluster.list(Kind.AGENT_INSTANCE, ns)
    }
    found: list[str] = []
    for obj in [*agents.values(), *instances.values()]:
        meta = obj["metadata"]
        where = f"{obj['kind']} {meta['namespace']}/{meta['name']}"
        if obj.get("status", {}).get("observedGeneration") != meta["generation"]:
            found.append(f"{where}: status not at generation {meta['generation']}")
        elif _is(obj, "Ready", "Unknown"):
            found.append(f"{where}: Ready=Unknown ({condition(obj, 'Ready').get('reason')})")
    found += _agent_violations(agents, instances, home)
    found += _instance_violations(cluster, agents, instances, world)
    verified = verify_run(plane, operator, home, world.guest)
    drifts = json.loads(verified.stdout).get("drift", []) if verified.returncode else []
    found += [f"store verify: {drift}" for drift in drifts]
    found += _history_violations(operator)
    return found


def _agent_violations(
    agents: dict[str, Any], instances: dict[tuple[str, str], Any], home: str
) -> list[str]:
    found: list[str] = []
    slugs: dict[str, str] = {}
    for name, agent in agents.items():
        uid = agent["metadata"]["uid"]
        if not _is(agent, "Accepted", "True"):
            refusal = condition(agent, "Accepted")
            holder = re.search(r"by Agent \S+/(\S+);", refusal.get("message", ""))
            if refusal.get("reason") != "DuplicateSlug" or holder is None:
                found.append(f"Agent {name}: refused with {refusal.get('reason')}")
            elif holder.group(1) not in agents or not _is(
                agents[holder.group(1)], "Accepted", "True"
            ):
                found.append(f"Agent {name}: DuplicateSlug names {holder.group(1)}, "
                             "which is gone or not accepted")  # fmt: skip
            continue
        slug = agent["status"].get("slug", "")
        if slug in slugs:
            found.append(f"Agents {slugs[slug]} and {name} both accepted with slug {slug!r}")
        slugs[slug] = name
        owned = [
            key for key, inst in instances.items()
            if any(ref.get("uid") == uid and ref.get("controller")
                   for ref in inst["metadata"].get("ownerReferences") or [])
        ]  # fmt: skip
        if owned != [(home, f"{name}-default")]:
            found.append(f"Agent {name}: default instances {owned}")
        if not _is(agent, "Ready", "True"):
            found.append(f"Agent {name}: accepted but Ready={condition(agent, 'Ready')}")
    return found


def _instance_violations(
    cluster: Cluster, agents: dict[str, Any], instances: dict[tuple[str, str], Any], world: World
) -> list[str]:
    found: list[str] = []
    for (namespace, name), instance in instances.items():
        where = f"AgentInstance {namespace}/{name}"
        agent = agents.get(instance["spec"]["agentRef"]["name"])
        reason = condition(instance, "Ready").get("reason")
        if agent is None and reason != "AgentNotFound":
            found.append(f"{where}: its Agent is gone, but Ready reason is {reason}")
        sharing = (agent or {}).get("spec", {}).get("sharing", [])
        shared = namespace == world.home or world.guest in sharing
        accepted = agent is not None and _is(agent, "Accepted", "True")
        if accepted and shared and not _is(instance, "Ready", "True"):
            found.append(f"{where}: its Agent is accepted and shared, but Ready is {reason}")
        # Not shared reads as not found (no disclosure across namespaces, docs/security.md).
        if accepted and not shared and reason != "AgentNotFound":
            found.append(f"{where}: its Agent is not shared, but Ready reason is {reason}")
        if _is(instance, "Ready", "True"):
            granted = _granted(cluster, namespace, f"{name}-agent")
            if granted != accepted_refs(instance):
                found.append(f"{where}: Role grants {sorted(granted)}, "
                             f"accepted {sorted(accepted_refs(instance))}")  # fmt: skip
    return found


def _granted(cluster: Cluster, namespace: str, role: str) -> set[str]:
    try:
        found = cluster.rbac.read_namespaced_role(role, namespace)
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return set()
        raise
    return {name for rule in found.rules or [] for name in rule.resource_names or []}


def _history_violations(operator: OperatorProcess) -> list[str]:
    """One history entry per generation, newest first, never a roll-back.

    A generation may appear again only as a CREATED entry: a refused object
    leaves the mirror (docs/security.md), and its re-acceptance re-creates it.
    """
    found: list[str] = []
    with read_store(operator.store_path) as store:
        for kind in Kind:
            for resource in store.list(kind):
                history = store.history(kind, resource.metadata.id)
                if not all(
                    newer.generation > older.generation
                    or (
                        newer.generation == older.generation
                        and newer.change == store_pb2.CHANGE_TYPE_CREATED
                    )
                    for newer, older in itertools.pairwise(history)
                ):
                    entries = [(h.generation, store_pb2.ChangeType.Name(h.change)) for h in history]
                    found.append(f"{kind.value} {resource.metadata.name} "
                                 f"(uid {resource.metadata.uid}): history {entries}")  # fmt: skip
    return found


def test_churn_converges(plane: ControlPlane, cluster: Cluster, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    world = World(cluster, f"churn-{suffix}", f"guest-{suffix}")
    for namespace in (world.home, world.guest):
        cluster.core.create_namespace({"metadata": {"name": namespace}})
        consenting = {"annotations": {ALLOWED_INSTANCES_ANNOTATION: "*"}}
        cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": "s0", **consenting}})
        cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": "s1", **consenting}})
        cluster.core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "c0", **consenting}}
        )
    operator = OperatorProcess(
        plane.admin_kubeconfig, tmp_path / "store",
        args=[f"--namespace={world.home}", f"--namespace={world.guest}", "--sweep-interval=20"],
    )  # fmt: skip
    print(f"churn: seed {SEED}, {OPS} operations, at most {CHURN_SECONDS:.0f} s")
    with operator:
        errors: list[str] = []
        deadline = time.monotonic() + CHURN_SECONDS
        workers = [
            threading.Thread(target=worker, args=(world, n, OPS // WORKERS, deadline, errors))
            for n in range(WORKERS)
        ]
        for thread in workers:
            thread.start()
        chaos(plane, operator, world, workers, CHURN_SECONDS / 4)
        for thread in workers:
            thread.join()
        ops = sum(1 for line in world.log if " w" in line[:20] and "time is up" not in line)
        world.note("test", f"churn over after {ops} operations; settling")
        settled_after = _settle(plane, operator, world)
        log = "\n".join(world.log)
        report = f"seed {SEED} (STIGMER_CHURN_SEED={SEED} replays it); operations:\n{log}"
        assert not errors, f"{errors}\n{report}"
        assert world.chaos_done >= 2, f"only {world.chaos_done} restarts during the churn\n{report}"
        assert settled_after is not None, f"{report}\noperator log:\n{operator.log_tail(150)}"
        print(f"churn: {ops} operations, {world.chaos_done} restarts, "
              f"settled {settled_after:.1f} s after the churn")  # fmt: skip


def _settle(plane: ControlPlane, operator: OperatorProcess, world: World) -> float | None:
    """Seconds until no invariant is violated; None (and the violations logged) on timeout."""
    start = time.monotonic()
    found: list[str] = []
    while time.monotonic() - start < SETTLE_SECONDS:
        try:
            found = violations(plane, operator, world)
        except (kubernetes.client.ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            found = [f"the API is unavailable: {error}"]
        if not found:
            return time.monotonic() - start
        time.sleep(2)
    for line in found:
        world.note("verdict", line)
    return None
