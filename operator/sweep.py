"""Mirror-versus-cluster comparison, shared by the start-up sweep and ``store verify``.

The API server is the source of truth; the store is a materialized view. An
entry is stale when no object with its uid exists in the namespaces the
operator watches (entries outside them are someone else's business: a
namespaced operator must not sweep what it cannot see).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import kubernetes

from stigmer_operator.api.kinds import GROUP, VERSION, Kind, Resource
from stigmer_operator.store import Store


def list_cluster_objects(
    api_client: kubernetes.client.ApiClient, kind: Kind, namespaces: Sequence[str]
) -> list[dict[str, Any]]:
    """Every object of ``kind`` in ``namespaces`` (all namespaces when empty)."""
    api = kubernetes.client.CustomObjectsApi(api_client)
    if not namespaces:
        return _items(api.list_cluster_custom_object(GROUP, VERSION, kind.plural))
    items: list[dict[str, Any]] = []
    for namespace in namespaces:
        items.extend(
            _items(api.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural))
        )
    return items


def _items(listing: object) -> list[dict[str, Any]]:
    """The ``items`` of a custom-object list response (a plain dict)."""
    return list(cast(dict[str, Any], listing).get("items", []))


def list_cluster_uids(
    api_client: kubernetes.client.ApiClient, kind: Kind, namespaces: Sequence[str]
) -> set[str]:
    return {
        str(obj["metadata"]["uid"]) for obj in list_cluster_objects(api_client, kind, namespaces)
    }


def stale_entries(
    store: Store, kind: Kind, live_uids: set[str], namespaces: Sequence[str]
) -> Iterator[Resource]:
    """Store entries of ``kind`` in the watched namespaces whose object is gone."""
    watched = set(namespaces)
    for resource in list(store.list(kind)):
        if watched and resource.metadata.namespace not in watched:
            continue
        if resource.metadata.uid not in live_uids:
            yield resource
