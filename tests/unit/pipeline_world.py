"""Test helpers for the pipeline and handler unit tests: manifests, a settable clock, World.

:class:`World` plays the cluster the way kopf would: objects are created in
the recording fake (which assigns uids and resourceVersions), and a
pipeline is run on the object *as currently stored*, so statuses written by
earlier runs are seen by later ones, exactly as on a real API server.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from stigmer_operator.api.kinds import ORG_LABEL, Kind, Resource
from stigmer_operator.pipeline.consent import ALLOWED_INSTANCES_ANNOTATION
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.deps import Deps, PipelineSettings
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.pipeline.pipelines import pipeline_for
from stigmer_operator.pipeline.runner import Pipeline
from stigmer_operator.store.protocol import Store

PLATFORM_NS = "stigmer-platform"
INSTRUCTIONS = "You answer support questions politely and precisely."


class Clock:
    """A settable clock; starts at a fixed instant."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 18, 19, 41, 31, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def agent_manifest(
    name: str = "support-bot",
    namespace: str = "team-a",
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "Agent",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"instructions": INSTRUCTIONS, **spec},
    }
    if labels:
        body["metadata"]["labels"] = dict(labels)
    if annotations:
        body["metadata"]["annotations"] = dict(annotations)
    return body


def instance_manifest(
    name: str = "support-bot-prod",
    namespace: str = "team-a",
    *,
    agent: str = "support-bot",
    agent_namespace: str = "",
    labels: Mapping[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    ref = {"name": agent, **({"namespace": agent_namespace} if agent_namespace else {})}
    body: dict[str, Any] = {
        "apiVersion": "agentic.stigmer.ai/v1",
        "kind": "AgentInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"agentRef": ref, **spec},
    }
    if labels:
        body["metadata"]["labels"] = dict(labels)
    return body


class World:
    """A fake cluster plus the store: apply objects, run pipelines on them."""

    def __init__(self, store: Store, kube: RecordingKubeEffects, clock: Clock) -> None:
        self.store = store
        self.kube = kube
        self.clock = clock
        self.settings = PipelineSettings(
            platform_namespaces=frozenset({PLATFORM_NS}), reporting_instance="unit-test"
        )
        self.deps = self.new_deps()

    def new_deps(self) -> Deps:
        """Fresh Deps over the same store and cluster: what an operator restart gives."""
        return Deps(store=self.store, kube=self.kube, settings=self.settings, clock=self.clock)

    def restart(self) -> None:
        self.deps = self.new_deps()

    # -- objects -------------------------------------------------------------
    def namespace(self, name: str, org: str | None = None) -> None:
        """The Namespace, with the org label a cluster admin would set (``None``: no label)."""
        labels = {ORG_LABEL: org} if org is not None else {}
        self.kube.put(ObjectKind.NAMESPACE, {"metadata": {"name": name, "labels": labels}})

    def env_source(
        self,
        kind: ObjectKind,
        name: str,
        namespace: str = "team-a",
        *,
        allowed: str | None = "*",
    ) -> None:
        """A Secret or ConfigMap; ``allowed`` is its consent annotation (``None``: none)."""
        annotations = {ALLOWED_INSTANCES_ANNOTATION: allowed} if allowed is not None else {}
        self.kube.put(
            kind, {"metadata": {"name": name, "namespace": namespace, "annotations": annotations}}
        )

    def apply(self, body: Mapping[str, Any]) -> dict[str, Any]:
        kind = ObjectKind.AGENT if body["kind"] == "Agent" else ObjectKind.AGENT_INSTANCE
        return self.kube.put(kind, body)

    def current(self, kind: Kind, name: str, namespace: str = "team-a") -> dict[str, Any]:
        obj = self.kube.objects[(ObjectKind.of(kind), namespace, name)]
        return copy.deepcopy(obj)

    def edit_spec(self, kind: Kind, name: str, namespace: str = "team-a", **spec: Any) -> None:
        obj = self.kube.objects[(ObjectKind.of(kind), namespace, name)]
        obj["spec"].update(spec)
        obj["metadata"]["generation"] += 1

    def mark_ready(self, kind: Kind, name: str, namespace: str = "team-a") -> None:
        obj = self.kube.objects[(ObjectKind.of(kind), namespace, name)]
        conditions = obj.setdefault("status", {}).setdefault("conditions", [])
        conditions[:] = [c for c in conditions if c["type"] != "Ready"]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "message": "",
                "observedGeneration": obj["metadata"]["generation"],
                "lastTransitionTime": "2026-01-18T19:41:31Z",
            }
        )

    # -- pipelines -----------------------------------------------------------
    def context(
        self, kind: Kind, name: str, namespace: str = "team-a", op: Operation = Operation.CREATE
    ) -> RequestContext[Resource]:
        return RequestContext.for_kind(kind, self.current(kind, name, namespace), op, self.deps)

    def run(
        self,
        kind: Kind,
        name: str,
        namespace: str = "team-a",
        op: Operation = Operation.CREATE,
        pipeline: Pipeline | None = None,
    ) -> RequestContext[Resource]:
        ctx = self.context(kind, name, namespace, op)
        return (pipeline or pipeline_for(kind, op)).run(ctx)

    def run_until(
        self,
        step: str,
        kind: Kind,
        name: str,
        namespace: str = "team-a",
        op: Operation = Operation.CREATE,
    ) -> RequestContext[Resource]:
        """Run the steps *before* ``step`` and return the context, ready for ``step``."""
        full = pipeline_for(kind, op)
        names = list(full.step_names)
        before = Pipeline("prefix", full.steps[: names.index(step)])
        return before.run(self.context(kind, name, namespace, op))

    def agent(self, name: str = "support-bot", namespace: str = "team-a", **kw: Any) -> str:
        """Apply an Agent and run agent-create; returns the name."""
        self.apply(agent_manifest(name, namespace, **kw))
        self.run(Kind.AGENT, name, namespace)
        return name

    def history(self, kind: Kind, resource_id: str) -> int:
        return len(self.store.history(kind, resource_id))


def step_of(kind: Kind, name: str, op: Operation = Operation.CREATE) -> Pipeline:
    """A one-step pipeline running the named step of the (kind, op) pipeline."""
    full = pipeline_for(kind, op)
    return Pipeline(name, [s for s in full.steps if s.name == name])
