"""Reading Kubernetes metadata the way the steps need it.

Which org owns an object is decided in :mod:`.orgs` (from its Namespace).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stigmer_operator.api.kinds import GROUP, Kind
from stigmer_operator.api.models import Scope
from stigmer_operator.pipeline.conditions import ConditionStatus, ConditionType, find_condition
from stigmer_operator.pipeline.frozen import mapping_at, str_at
from stigmer_operator.pipeline.naming import resource_id

#: Label on every object the operator creates.
MANAGED_BY = ("app.kubernetes.io/managed-by", "stigmer-operator")


#: Annotation keys (exact) and prefixes that are tool bookkeeping, not data:
#: kopf's under the operator's prefix, ``kubectl``'s last-applied copy of the
#: whole object. They change on every handling and are not mirrored.
_TOOL_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
_TOOL_ANNOTATION_PREFIXES = (f"{GROUP}/", "kopf.zalando.org/")


def mirrored_annotations(annotations: Mapping[str, Any]) -> dict[str, str]:
    """The annotations the store mirrors: all but the tools' bookkeeping."""
    return {
        str(key): str(value)
        for key, value in annotations.items()
        if key not in _TOOL_ANNOTATIONS and not str(key).startswith(_TOOL_ANNOTATION_PREFIXES)
    }


def id_of(kind: Kind, obj: Mapping[str, Any]) -> str:
    """The id of an API object: always derived from its uid.

    Never read back from ``status.id``: whoever may write the status
    subresource could otherwise point the object at another object's id.
    """
    return resource_id(kind, str_at(obj, "metadata", "uid"))


def scope_of(obj: Mapping[str, Any]) -> Scope:
    """``spec.scope`` of an API object (unvalidated input: anything else is organization)."""
    return (
        Scope.PLATFORM if mapping_at(obj, "spec").get("scope") == "platform" else Scope.ORGANIZATION
    )


def conditions_of(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    raw = mapping_at(obj, "status").get("conditions")
    if not isinstance(raw, list | tuple):
        return ()
    return tuple(c for c in raw if isinstance(c, Mapping))


def refusal_of(obj: Mapping[str, Any]) -> str | None:
    """If the operator refused the object (``Accepted=False``), its reason and message."""
    accepted = find_condition(conditions_of(obj), ConditionType.ACCEPTED)
    if accepted is None or accepted.get("status") != ConditionStatus.FALSE.value:
        return None
    return f"{accepted.get('reason', '')}: {accepted.get('message', '')}"
