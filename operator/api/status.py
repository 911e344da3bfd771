"""The status of an Agent and an AgentInstance, as pydantic models.

The operator writes status; nobody validates it on input. It is modelled
anyway so the CRD schema (:mod:`.crdgen`) is complete: ``kubectl explain``
documents it and the API server prunes and checks what the operator
writes. The spec models and their conventions are in :mod:`.models`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import Field

from stigmer_operator.api.limits import (
    CONDITION_REASON_PATTERN,
    CONDITION_TYPE_PATTERN,
    MAX_CONDITIONS,
    MAX_DNS_LABEL,
    MAX_DNS_SUBDOMAIN,
)
from stigmer_operator.api.models import ApiModel
from stigmer_operator.pipeline.conditions import ConditionStatus

__all__ = ["AgentInstanceStatus", "AgentStatus", "Condition", "StatusAudit"]


class Condition(ApiModel):
    """The state of one aspect of the resource, in the shape of metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of the condition in CamelCase, e.g. Ready or Accepted.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: int = Field(
        default=0,
        ge=0,
        description="metadata.generation the condition was set for.",
        json_schema_extra={"format": "int64"},
    )
    last_transition_time: datetime = Field(
        description="When the status last changed from one value to another."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="CamelCase reason for the last transition.",
    )
    message: str = Field(max_length=32768, description="Human-readable details.")


class StatusAudit(ApiModel):
    """When the operator accepted the resource, and what happened last."""

    created_at: datetime | None = Field(
        default=None, description="When the operator first stored the resource."
    )
    updated_at: datetime | None = Field(
        default=None, description="When the operator last stored a change."
    )
    event: str = Field(
        default="", max_length=32, description="The last change: created, updated or deleted."
    )


_CONDITIONS_LIST_EXTRA: Final[dict[str, Any]] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


def _conditions_field() -> Any:
    return Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description="Observations of the resource's state; Ready is always present.",
        json_schema_extra=_CONDITIONS_LIST_EXTRA,
    )


def _observed_generation_field() -> Any:
    return Field(
        default=0,
        ge=0,
        description="metadata.generation the status was computed for.",
        json_schema_extra={"format": "int64"},
    )


class AgentStatus(ApiModel):
    """Observed state of an Agent, written by the operator."""

    observed_generation: int = _observed_generation_field()
    id: str = Field(default="", max_length=64, description="Stable id (agt-...); never changes.")
    slug: str = Field(
        default="", max_length=MAX_DNS_LABEL, description="URL-safe slug, unique per org."
    )
    conditions: list[Condition] = _conditions_field()
    default_instance_id: str = Field(
        default="", max_length=64, description="Id (ain-...) of the default AgentInstance."
    )
    default_instance_name: str = Field(
        default="",
        max_length=MAX_DNS_SUBDOMAIN,
        description="metadata.name of the default AgentInstance.",
    )
    audit: StatusAudit | None = Field(default=None, description="Creation and update times.")


class AgentInstanceStatus(ApiModel):
    """Observed state of an AgentInstance, written by the operator."""

    observed_generation: int = _observed_generation_field()
    id: str = Field(default="", max_length=64, description="Stable id (ain-...); never changes.")
    slug: str = Field(
        default="", max_length=MAX_DNS_LABEL, description="URL-safe slug, unique per org."
    )
    agent_id: str = Field(
        default="", max_length=64, description="Id (agt-...) of the resolved Agent."
    )
    service_account_name: str = Field(
        default="",
        max_length=MAX_DNS_SUBDOMAIN,
        description="ServiceAccount that may read exactly the referenced Secrets/ConfigMaps.",
    )
    conditions: list[Condition] = _conditions_field()
    audit: StatusAudit | None = Field(default=None, description="Creation and update times.")
