"""Reading Kubernetes metadata the way the steps need it.

The owning org is the namespace unless the ``agentic.stigmer.ai/org`` label
names another; that rule, and what a valid org is, must be the same
wherever an org is computed (for the object itself, and for the Agent an
AgentInstance references), so it lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stigmer_operator.api.kinds import GROUP, ORG_LABEL, Kind
from stigmer_operator.api.models import Scope
from stigmer_operator.pipeline.conditions import ConditionStatus, ConditionType, find_condition
from stigmer_operator.pipeline.frozen import mapping_at, str_at
from stigmer_operator.pipeline.naming import is_dns_label, resource_id

#: Label on every object the operator creates.
MANAGED_BY = ("app.kubernetes.io/managed-by", "stigmer-operator")


class InvalidOrgLabel(ValueError):
    """The org label is present but not a DNS label."""

    path = f"metadata.labels[{ORG_LABEL}]"


def org_of(namespace: str, labels: Mapping[str, Any]) -> str:
    """The owning org; raises :class:`InvalidOrgLabel` for a malformed label."""
    value = labels.get(ORG_LABEL)
    if value is None:
        return namespace
    if not isinstance(value, str) or not is_dns_label(value):
        raise InvalidOrgLabel(
            f"{value!r} is not a valid org: must be a DNS label (lower-case letters, "
            "digits and '-', at most 63 characters, starting and ending with a letter or digit)"
        )
    return value


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
    """The id of an API object: its ``status.id`` if assigned, else derived from its uid."""
    assigned = str_at(obj, "status", "id")
    if assigned.startswith(kind.id_prefix):
        return assigned
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
