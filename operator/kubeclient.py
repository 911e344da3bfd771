"""The Kubernetes API client the operator and ``stigmer-operator store verify`` use.

One function decides where credentials come from (in-cluster first, then
kubeconfig) and how many connections the client keeps, so the run loop and
the store commands talk to the same cluster the same way; one reads a
paginated LIST, for every listing the operator makes itself (kopf lists its
watched kinds on its own).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes

__all__ = ["PAGE_REQUEST_TIMEOUT", "PageReader", "list_pages", "load_api_client"]

#: One LIST page: ``continue_token -> raw response`` (``_preload_content=False``).
PageReader = Callable[[str | None], Any]
#: Seconds per page of a LIST: a request on a connection the API server
#: dropped without a word (a restart) must fail and be retried, not hang.
PAGE_REQUEST_TIMEOUT = 30.0


def load_api_client(pool_maxsize: int = 0) -> kubernetes.client.ApiClient:
    """In-cluster credentials when present, else ``$KUBECONFIG`` / ``~/.kube/config``.

    ``pool_maxsize``: keep at least this many connections to the API server
    open. The client's default is 5 per CPU the *host* has; below the number
    of handler threads, urllib3 drops a connection after each request
    ("Connection pool is full, discarding connection") and the next request
    pays a new TLS handshake. Never lowered: idle slots cost nothing.
    """
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = max(
        configuration.connection_pool_maxsize or 0, pool_maxsize
    )
    return kubernetes.client.ApiClient(configuration)


def list_pages(read_page: PageReader) -> Iterator[dict[str, Any]]:
    """Every item of a paginated LIST, one page parsed at a time.

    The raw response is dropped as soon as it is parsed, and the next page
    is read only when the caller has taken every item of this one: a
    listing of tens of thousands of objects never holds all of them.
    """
    token: str | None = None
    while True:
        response = read_page(token)
        page: dict[str, Any] = json.loads(response.data)
        del response
        yield from page.get("items") or ()
        token = (page.get("metadata") or {}).get("continue") or None
        if token is None:
            return
