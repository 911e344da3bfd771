"""The Kubernetes API client the operator and ``stigmer-operator store verify`` use.

One function decides where credentials come from (in-cluster first, then
kubeconfig) and how many connections the client keeps, so the run loop and
the store commands talk to the same cluster the same way.
"""

from __future__ import annotations

import kubernetes

__all__ = ["load_api_client"]


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
