"""Mirror-versus-cluster comparison: the start-up sweep and ``store verify``.

The API server is the source of truth; the store is a materialized view. An
entry is stale when no object with its uid exists in the namespaces the
operator watches (entries outside them are someone else's business: a
namespaced operator must not sweep what it cannot see).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes

from stigmer_operator.api.kinds import GROUP, VERSION, Kind, Resource
from stigmer_operator.kopf_compat import namespace_matches
from stigmer_operator.kubeclient import PAGE_REQUEST_TIMEOUT, list_pages
from stigmer_operator.pipeline.conditions import ConditionStatus, ConditionType, find_condition
from stigmer_operator.pipeline.errors import Reason
from stigmer_operator.pipeline.meta import mirrored_annotations
from stigmer_operator.settings import has_globs
from stigmer_operator.store import Store


def watched(namespace: str, patterns: Sequence[str]) -> bool:
    """Whether the operator watches ``namespace``: kopf's own pattern semantics.

    ``--namespace`` takes names or kopf globs (``team-*``, ``!*-pr-*``); no
    patterns means every namespace.
    """
    return not patterns or any(namespace_matches(namespace, p) for p in patterns)


#: Objects per LIST page: a page is parsed (and, for the periodic sweep,
#: slimmed) before the next is read, so a listing of tens of thousands of
#: objects never holds all their bodies at once.
PAGE_SIZE = 500
#: ``metadata`` fields a slim listing keeps: identity, change and deletion marks.
_SLIM_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "deletionTimestamp")


def list_cluster_objects(
    api_client: kubernetes.client.ApiClient,
    kind: Kind,
    namespaces: Sequence[str],
    *,
    slim: bool = False,
) -> list[dict[str, Any]]:
    """Every object of ``kind`` in the watched namespaces (all when ``namespaces`` is empty).

    Listed page by page. ``slim`` keeps of each object only what the sweeps
    read -- its identity, generation, deletion mark,
    ``status.observedGeneration`` and a ``DuplicateSlug`` refusal's
    ``Ready`` condition -- which is what lets the periodic sweep of a large
    cluster run inside the operator's memory limit.
    """
    api = kubernetes.client.CustomObjectsApi(api_client)
    keep = _slimmed if slim else _whole
    if not namespaces or has_globs(namespaces):
        everything = _pages(
            lambda **kw: api.list_cluster_custom_object(GROUP, VERSION, kind.plural, **kw)
        )
        return [keep(o) for o in everything if watched(o["metadata"]["namespace"], namespaces)]
    items: list[dict[str, Any]] = []
    for namespace in namespaces:
        items.extend(
            keep(o)
            for o in _pages(
                lambda ns=namespace, **kw: api.list_namespaced_custom_object(
                    GROUP, VERSION, ns, kind.plural, **kw
                )
            )
        )
    return items


def _pages(lister: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """The items of ``lister``'s paginated LIST, :data:`PAGE_SIZE` at a time."""
    return list_pages(
        lambda token: lister(
            limit=PAGE_SIZE,
            _continue=token,
            _preload_content=False,
            _request_timeout=PAGE_REQUEST_TIMEOUT,
        )
    )


def _whole(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _slimmed(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    slim: dict[str, Any] = {}
    if (observed := status.get("observedGeneration")) is not None:
        slim["observedGeneration"] = observed
    ready = find_condition(status.get("conditions") or [], ConditionType.READY) or {}
    if ready.get("reason") == Reason.DUPLICATE_SLUG.value:  # a refusal waiting for its slug
        slim["conditions"] = [{"type": ConditionType.READY.value, "reason": ready["reason"]}]
    return {
        "metadata": {key: metadata[key] for key in _SLIM_METADATA if key in metadata},
        "status": slim,
    }


def stale_entries(
    store: Store, kind: Kind, live_uids: set[str], namespaces: Sequence[str]
) -> list[Resource]:
    """Store entries of ``kind`` in the watched namespaces whose object is gone.

    Collected in one pass before the caller deletes any, keeping only the
    stale ones: the whole kind, decoded, would be every mirrored resource in
    memory at once on each periodic sweep.
    """
    return [
        resource
        for resource in store.list(kind)
        if watched(resource.metadata.namespace, namespaces)
        and resource.metadata.uid not in live_uids
    ]


@dataclass(frozen=True, slots=True)
class Drift:
    """One disagreement between the cluster and the mirror."""

    kind: Kind
    namespace: str
    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.namespace}/{self.name}: {self.problem}"


def compare(
    store: Store, kind: Kind, objects: Sequence[Mapping[str, Any]], namespaces: Sequence[str]
) -> list[Drift]:
    """Where the mirror of ``kind`` disagrees with the cluster's ``objects``.

    An object the operator accepted for its current generation must be
    mirrored at that generation, with its labels and (but for the tools'
    bookkeeping) its annotations; an object it refused must not be; an
    object it has not reconciled yet is not judged. Every mirror entry must
    have its object.
    """
    drifts: list[Drift] = []
    by_uid = {str(obj["metadata"]["uid"]): obj for obj in objects}
    mirrored = {r.metadata.uid: r for r in store.list(kind)}
    for uid, obj in by_uid.items():
        metadata = obj["metadata"]
        verdict = _verdict(obj)
        entry = mirrored.get(uid)
        where = (kind, str(metadata["namespace"]), str(metadata["name"]))
        if verdict is _Verdict.ACCEPTED and entry is None:
            drifts.append(Drift(*where, "accepted but not mirrored"))
        elif verdict is _Verdict.ACCEPTED and entry is not None:
            problem = _metadata_drift(entry, metadata)
            if problem:
                drifts.append(Drift(*where, problem))
        elif (
            verdict is _Verdict.REFUSED
            and entry is not None
            # A refused edit keeps the last good mirror; a refused create has none.
            and entry.metadata.generation >= int(metadata.get("generation", 0))
        ):
            drifts.append(Drift(*where, "refused but mirrored"))
    for resource in stale_entries(store, kind, set(by_uid), namespaces):
        drifts.append(
            Drift(
                kind,
                resource.metadata.namespace,
                resource.metadata.name,
                "mirrored but the object is gone",
            )
        )
    return drifts


def _metadata_drift(entry: Resource, metadata: Mapping[str, Any]) -> str:
    """How the mirror of an accepted object differs from it ("" if it does not)."""
    mirrored = entry.metadata
    if mirrored.generation != metadata.get("generation"):
        return (
            f"mirror at generation {mirrored.generation}, cluster at {metadata.get('generation')}"
        )
    if dict(mirrored.labels) != {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}:
        return "mirrored labels differ from the object's"
    if dict(mirrored.annotations) != mirrored_annotations(metadata.get("annotations") or {}):
        return "mirrored annotations differ from the object's"
    return ""


class _Verdict(enum.Enum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    PENDING = "pending"


def _verdict(obj: Mapping[str, Any]) -> _Verdict:
    """What the operator said about the object's *current* generation."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return _Verdict.PENDING
    for condition in status.get("conditions") or []:
        if condition.get("type") == ConditionType.ACCEPTED:
            if condition.get("status") == ConditionStatus.TRUE:
                return _Verdict.ACCEPTED
            if condition.get("status") == ConditionStatus.FALSE:
                return _Verdict.REFUSED
    return _Verdict.PENDING
