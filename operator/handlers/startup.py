"""Operator start-up: configure kopf, then sweep mirror entries whose objects are gone.

(Also the store's liveness probe: kopf serves it from the start.)

Re-mirroring needs no code here: every existing object is resumed when its
kopf worker first sees it (:mod:`.observers`), and the resume pipelines are
idempotent. What kopf cannot report is an object deleted while the operator
was down (there is no finalizer, by design), so the sweep compares the
store with a fresh list from the API and deletes the leftovers through the
delete pipeline, which keeps their history and logs the deletion. It runs
on a thread of its own, beside the resumes: kopf would not start a single
watch until it returned, and listing a large cluster takes the API server
many seconds.

The same can happen while the operator runs: when a watch expires (410
Gone) kopf lists the objects again, and an object deleted in between never
arrives as a DELETED event. So the sweep also runs every
``--sweep-interval`` seconds, on the same thread. Each leftover is
checked again under its object's lock (an object created after the list
was taken must keep its entry), the in-process state of what it swept is
forgotten too, and what the missed DELETED event would have set off is
done: a swept default instance re-runs its Agent (which creates it again),
a swept Agent re-runs the instances that reference it and the Agents it
kept out with DuplicateSlug. And an object left behind, unchanged, over a
whole interval -- its status behind its generation, or a DuplicateSlug
refusal no holder would wake -- is re-run (:mod:`.stragglers`).

The start-up sweep compares with kopf's own first listing (its uids, see
:mod:`stigmer_operator.first_listing`) rather than listing every object a
second time; it lists only if kopf's listing does not finish in
``FIRST_LISTING_WAIT_SECONDS``, or with namespace globs (whose namespaces
come and go).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import kopf

from stigmer_operator.api.kinds import DEFAULT_INSTANCE_LABEL, GROUP, Kind, Resource
from stigmer_operator.handlers.agent import wake_duplicates
from stigmer_operator.handlers.common import OBSERVER, forget, rerun, wake_instances
from stigmer_operator.handlers.coordination import key_of
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.stragglers import Stragglers
from stigmer_operator.pipeline.context import Operation
from stigmer_operator.pipeline.errors import PipelineError
from stigmer_operator.pipeline.kube import KubeError, ObjectKind
from stigmer_operator.pipeline.pipelines import run
from stigmer_operator.settings import OperatorSettings
from stigmer_operator.store import StoreError
from stigmer_operator.store.errors import StoreUnwritableError
from stigmer_operator.sweep import list_cluster_objects, stale_entries

logger = logging.getLogger(__name__)

#: Objects per page of kopf's listing of a watched kind (at start, and after
#: a watch expired).
LIST_CHUNK_SIZE = 500

#: How long the start-up sweep waits for kopf's first listing before it lists
#: the objects itself.
FIRST_LISTING_WAIT_SECONDS = 120.0

#: Seconds before the start-up sweep is tried again after a failure; doubled
#: after each further failure, up to ``START_RETRY_MAX_SECONDS``.
START_RETRY_SECONDS = 10.0
START_RETRY_MAX_SECONDS = 300.0


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: OperatorMemo, **_: Any) -> None:
    configure_kopf(settings, memo.settings)


@kopf.on.probe(id="store")
def store_takes_writes(memo: OperatorMemo, **_: Any) -> str:
    """Liveness: ``/healthz`` says whether the store can write, and fails only when it is broken.

    A full (or read-only) volume is not a reason to restart: the operator
    keeps reconciling the cluster and reports the store as ``unwritable``
    in the probe's body (and ``stigmer_store_writable``). The probe's write
    is also what notices that the volume has room again: the store reopens
    on it (:mod:`stigmer_operator.store.degraded`). Any other store failure
    fails the probe, so Kubernetes restarts the pod.
    """
    try:
        memo.deps.store.probe()
    except StoreUnwritableError as error:
        return f"unwritable: {error.cause}; the mirror is behind"
    except StoreError as error:
        raise kopf.PermanentError(f"store: {error}") from None
    return "writable"


@kopf.on.startup()
def sweep_mirror(memo: OperatorMemo, **_: Any) -> None:
    """Start the sweeps on a thread of their own: the first one now, then every interval.

    kopf starts no watch before every start-up handler has returned, and
    listing a large cluster takes the API server a while; the resumes need
    not wait for it. The sweep is safe beside them, as the periodic one
    always was: each leftover is checked again under its object's lock.
    """
    thread = threading.Thread(
        target=_sweep_at_start_then_every,
        args=(memo, memo.settings.sweep_interval),
        name="sweep",
        daemon=True,
    )
    thread.start()


#: The uids of every object of a kind in the watched namespaces.
LiveUids = Callable[[Kind], set[str]]


def sweep_gone(memo: OperatorMemo, live_uids: LiveUids | None = None) -> int:
    """Delete the mirror entries (and in-process state) of objects gone from the cluster.

    Returns how many entries went. Without ``live_uids`` the objects are
    listed from the API.
    """
    namespaces = memo.settings.namespaces
    live_uids = live_uids or (
        lambda kind: uids_of(list_cluster_objects(memo.api_client, kind, namespaces, slim=True))
    )
    swept = 0
    every_live: set[str] = set()
    for kind in Kind:
        live = live_uids(kind)
        for resource in stale_entries(memo.deps.store, kind, live, namespaces):
            swept += _sweep_one(memo, kind, resource)
        every_live |= live
    memo.coordination.retain(every_live)
    return swept


def uids_of(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(obj["metadata"]["uid"]) for obj in objects}


def _sweep_one(memo: OperatorMemo, kind: Kind, resource: Resource) -> int:
    body = _body_of(resource)
    metadata = resource.metadata
    deps = memo.deps
    with memo.coordination.lock(key_of(kind, body)):
        try:
            current = deps.kube.get(ObjectKind.of(kind), metadata.namespace, metadata.name)
            if current is not None and current.get("metadata", {}).get("uid") == metadata.uid:
                return 0  # created after the list was taken
            run(kind, Operation.DELETE, body, deps, observer=OBSERVER)
        except (PipelineError, KubeError) as error:
            logger.warning("could not sweep %s %s: %s", kind.value, metadata.id, error)
            return 0
    forget(kind, body, memo)
    logger.info("swept %s %s/%s: its object is gone", kind.value, metadata.namespace, metadata.name)
    _after_unseen_deletion(memo, kind, resource, body)
    return 1


def _after_unseen_deletion(
    memo: OperatorMemo, kind: Kind, resource: Resource, body: dict[str, Any]
) -> None:
    """What the DELETED event would have set off: the other objects it concerns are re-run."""
    if kind is Kind.AGENT:
        wake_duplicates(body, memo)
        memo.references.agent_gone(body)
        wake_instances(body, memo)
        return
    memo.references.instance_gone(body)
    agent_id = getattr(resource.status, "agent_id", "")
    if resource.metadata.labels.get(DEFAULT_INSTANCE_LABEL) != "true" or not agent_id:
        return
    try:
        owner = memo.deps.store.get(Kind.AGENT, agent_id)
    except StoreError:
        return  # the Agent went too
    rerun(Kind.AGENT, owner.metadata.namespace, owner.metadata.name, memo, uid=owner.metadata.uid)


def _sweep_at_start_then_every(memo: OperatorMemo, interval: float) -> None:
    """The start-up sweep until it succeeds; then, with ``interval > 0``, the periodic one."""
    delay = START_RETRY_SECONDS
    live_uids = _first_listing(memo)
    while True:
        try:
            swept = sweep_gone(memo, live_uids)
        except Exception as error:  # the API may be down for a while (or RBAC missing): again
            logger.warning("start-up sweep failed (%s); trying again in %.0f s", error, delay)
            time.sleep(delay)
            delay = min(delay * 2, START_RETRY_MAX_SECONDS)
            live_uids = None  # listed afresh
            continue
        source = "kopf's first listing" if live_uids is not None else "a listing of its own"
        logger.info("start-up sweep removed %d mirror entries without an object (compared "
                    "with %s)", swept, source)  # fmt: skip
        break
    if interval > 0:
        _sweep_every(memo, interval)


def _first_listing(memo: OperatorMemo) -> LiveUids | None:
    """The uids of kopf's first listing, once it is over; ``None``: the sweep lists."""
    if memo.first_listings is None:
        return None
    uids = memo.first_listings.take(FIRST_LISTING_WAIT_SECONDS)
    if uids is None:
        logger.warning("kopf's first listing was not over after %.0f s; the start-up sweep "
                       "lists the objects itself", FIRST_LISTING_WAIT_SECONDS)  # fmt: skip
        return None
    return lambda kind: uids.get(kind.plural, set())


def _sweep_every(memo: OperatorMemo, interval: float) -> None:
    stragglers = Stragglers()
    while True:
        time.sleep(interval)
        try:
            namespaces = memo.settings.namespaces
            api = memo.api_client
            listed = {kind: list_cluster_objects(api, kind, namespaces, slim=True) for kind in Kind}
            live = {kind: uids_of(objects) for kind, objects in listed.items()}
            swept = sweep_gone(memo, live.__getitem__)
            stuck = stragglers.check(memo, listed)
        except Exception:  # the API may be down for a while; try again next time
            logger.exception("periodic sweep failed")
            continue
        if swept or stuck:
            logger.info("periodic sweep removed %d mirror entries without an object, "
                        "re-ran %d objects left behind", swept, stuck)  # fmt: skip


def _body_of(resource: Resource) -> dict[str, Any]:
    """Just enough of a Kubernetes object for the delete pipeline."""
    metadata = resource.metadata
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {
            "name": metadata.name,
            "namespace": metadata.namespace,
            "uid": metadata.uid,
            "generation": metadata.generation,
            "labels": dict(metadata.labels),
        },
        "status": {"id": metadata.id},
    }


def configure_kopf(kopf_settings: kopf.OperatorSettings, settings: OperatorSettings) -> None:
    """kopf bookkeeping under our own prefix, and no kopf chatter as Events."""
    kopf_settings.persistence.finalizer = f"{GROUP}/finalizer"
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    kopf_settings.persistence.diffbase_storage = diffbase_storage()
    # The Publish step emits the Events users need; kopf's per-handler events
    # would double the API writes and say nothing a user can act on.
    kopf_settings.posting.enabled = False
    # CRDs are installed before the operator (chart crds/, `make run`), so kopf
    # need not list/watch CustomResourceDefinitions cluster-wide -- a permission
    # the chart does not grant. Namespace globs still need the Namespace watch.
    kopf_settings.scanning.disabled = not settings.namespace_globs
    kopf_settings.execution.max_workers = settings.max_workers
    # Memory follows the number of *running* per-object workers, not the
    # number of objects: a running worker holds its bodies and handler state
    # until a thread is free and makes its own API calls (kopf's connection
    # pool has no limit: each concurrent call is a TLS connection with a
    # 256 KiB buffer); a queued one holds only its raw watch events. Bounding
    # them also interleaves an Agent's hops (Agent, its instance, the Agent
    # again) instead of running each hop for the whole backlog first.
    kopf_settings.queueing.worker_limit = settings.worker_limit or None
    kopf_settings.queueing.idle_timeout = settings.worker_idle_seconds
    # kopf's listing in pages: unpaged, every watched object's body arrives
    # in one response (text, then parsed) before the first is processed.
    kopf_settings.watching.chunk_size = LIST_CHUNK_SIZE
    # After its own annotation patch kopf waits for the watch to deliver that
    # resourceVersion before it trusts the object's state again; past this
    # timeout it assumes consistency and, on a body that still lacks its
    # annotation, runs the create handler a second (third...) time. Under a
    # burst the watch events of an object queue behind other handlers for
    # longer than kopf's default 5 s: every such re-run repeated a whole
    # pipeline (reads, writes, a status patch), which slowed the next events
    # further -- 2.9x the AgentInstance creates and +38% API writes per Agent
    # in a 300-Agent burst (bench/reconcile_bench.py, docs/performance.md).
    # Waiting is free when the version arrives: it ends the moment it does.
    kopf_settings.persistence.consistency_timeout = 30
    # Reconnect quickly after an API server restart instead of hanging on a
    # dead watch connection.
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    kopf_settings.watching.connect_timeout = 10
    kopf_settings.networking.request_timeout = 30


class SpecDigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled-configuration annotation, with the spec as a digest.

    kopf keeps the last handled "essence" of an object (spec, labels,
    annotations) in an annotation, to tell a change from a no-op. The CRD
    allows ``spec.instructions`` up to 1,000,000 characters, but all
    annotations of an object together may hold only 256 KiB: an accepted
    Agent with long instructions made kopf's bookkeeping patch fail (HTTP
    422, logged with a traceback), so kopf re-ran the create handler on every
    event and never ran the update handler. The handlers never read kopf's
    field diff -- every pipeline reconciles the whole object -- so a digest
    of the spec carries all kopf needs: whether the spec changed.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        if not extra_fields:
            return super().build(body=_essential_parts(body))
        # Extra fields may name anything: kopf's own build on the whole body.
        essence = super().build(body=body, extra_fields=extra_fields)
        spec = essence.get("spec")
        if spec is None:
            return essence
        return cast(kopf.BodyEssence, {**essence, "spec": spec_digest(spec)})


def spec_digest(spec: Any) -> dict[str, str]:
    """The spec as kopf's diff base keeps it: its canonical JSON's SHA-256."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {"sha256": hashlib.sha256(canonical.encode()).hexdigest()}


#: The metadata kopf's essence keeps (labels, annotations) or names its keys by
#: (ownerReferences).
_ESSENCE_METADATA = ("labels", "annotations", "ownerReferences")


def _essential_parts(body: kopf.Body) -> kopf.Body:
    """``body`` as kopf's essence needs it: the spec as its digest, no status, little metadata.

    kopf deep-copies the whole body before it drops what it does not keep,
    and an object's ``managedFields``, status and spec (instructions of up
    to a million characters) are most of it; kopf builds an essence for
    every event of every object. The essence is the same either way (unless
    a handler asks for extra fields, which may name anything).
    """
    metadata = body.get("metadata") or {}
    parts = {key: value for key, value in body.items() if key not in ("metadata", "status")}
    parts["metadata"] = {key: metadata[key] for key in _ESSENCE_METADATA if key in metadata}
    if parts.get("spec") is not None:
        parts["spec"] = spec_digest(parts["spec"])
    return kopf.Body(cast(kopf.RawBody, parts))


def diffbase_storage() -> SpecDigestDiffBaseStorage:
    """The one diff-base storage: kopf's, and what a new default instance is created with."""
    return SpecDigestDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
