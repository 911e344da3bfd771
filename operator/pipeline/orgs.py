"""Which org a namespace belongs to, from a source tenants cannot write.

The org is the security boundary between tenants: an AgentInstance may use
the Agents of its own org, platform Agents, and Agents shared with its org;
slugs are unique per org. It must therefore come from something only
cluster admins control -- the Namespace's ``agentic.stigmer.ai/org`` label
(tenants cannot label Namespaces) -- and never from a label on the object
itself, which whoever may write the object sets. A namespace without that
label is its own org.

Namespaces are read with a GET (metadata only) and kept for ``ttl``
seconds: one request per namespace and minute at most, and no cluster-wide
watch, so the same code works in the chart's namespaced mode, which grants
``get`` on exactly its namespaces. A relabelled namespace takes effect for
an object at its next reconcile after the cache entry expired.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from stigmer_operator.api.kinds import ORG_LABEL
from stigmer_operator.pipeline.kube import ApiForbidden, KubeEffects, KubeError, ObjectKind
from stigmer_operator.pipeline.naming import is_dns_label

#: Seconds a namespace's org is trusted before it is read again.
NAMESPACE_ORG_TTL = 30.0


class InvalidOrgLabel(ValueError):
    """An org label is present but not a DNS label."""

    path = f"metadata.labels[{ORG_LABEL}]"


class NamespaceUnreadable(KubeError):
    """The operator may not read the Namespace, so it cannot know the org.

    Retryable: fixing the operator's RBAC heals it.
    """

    retryable = True


def org_label(labels: Mapping[str, Any]) -> str | None:
    """The value of the org label, ``None`` if absent; raises :class:`InvalidOrgLabel`."""
    value = labels.get(ORG_LABEL)
    if value is None:
        return None
    if not isinstance(value, str) or not is_dns_label(value):
        raise InvalidOrgLabel(
            f"{value!r} is not a valid org: must be a DNS label (lower-case letters, "
            "digits and '-', at most 63 characters, starting and ending with a letter or digit)"
        )
    return value


class NamespaceOrgs:
    """The org of each namespace, cached for ``ttl`` seconds; safe across threads."""

    def __init__(
        self, ttl: float = NAMESPACE_ORG_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, str]] = {}

    def org_of(self, kube: KubeEffects, namespace: str) -> str:
        """The namespace's org label, else its name.

        Raises :class:`InvalidOrgLabel` (a cluster admin set a malformed
        label) or :class:`NamespaceUnreadable` (RBAC). Never falls back to
        the namespace name when the label could not be read: that could put
        the namespace in an org its admins did not choose.
        """
        now = self._clock()
        with self._lock:
            cached = self._known.get(namespace)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        org = self._read(kube, namespace)
        with self._lock:
            self._known[namespace] = (now, org)
        return org

    def forget(self, namespace: str) -> None:
        with self._lock:
            self._known.pop(namespace, None)

    @staticmethod
    def _read(kube: KubeEffects, namespace: str) -> str:
        try:
            metadata = kube.get_metadata(ObjectKind.NAMESPACE, "", namespace)
        except ApiForbidden as exc:
            raise NamespaceUnreadable(
                f"cannot read Namespace {namespace} to find its org ({exc}); the operator "
                "needs 'get' on namespaces (see docs/security.md)"
            ) from exc
        if metadata is None:  # gone: its objects are being deleted with it
            return namespace
        return org_label(metadata.get("labels") or {}) or namespace
