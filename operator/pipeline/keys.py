"""The typed keys steps use to hand values to later steps (and what makes an entry stale).

Declared once here so every producer and consumer names the same object,
and the type of each value is checked by mypy at both ends. Each key's
comment names the step that puts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec, Scope
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.pipeline.context import Key, RequestContext, Values
from stigmer_operator.pipeline.frozen import str_at
from stigmer_operator.pipeline.kube import ObjectKind


@dataclass(frozen=True, slots=True)
class AgentTarget:
    """The Agent an AgentInstance's ``spec.agentRef`` resolved to."""

    id: str
    namespace: str
    name: str
    uid: str
    org: str
    scope: Scope
    sharing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StaleEntry:
    """A store entry left by an object that no longer exists (same name, other uid)."""

    kind: Kind
    id: str
    why: str


#: ValidateFieldConstraints: the validated spec model.
SPEC: Key[AgentSpec | AgentInstanceSpec] = Key("spec")
#: Authorize: the owning org (the Namespace's org label, else the namespace).
ORG: Key[str] = Key("org")
#: Authorize (AgentInstance): the referenced Agent.
AGENT_TARGET: Key[AgentTarget] = Key("agent_target")
#: ResolveSlug: the slug.
SLUG: Key[str] = Key("slug")
#: CheckDuplicate / BuildNewState: store entries Persist must remove first.
STALE_ENTRIES: Key[tuple[StaleEntry, ...]] = Key("stale_entries")
#: BuildNewState: the store's current entry for this object (absent: none).
EXISTING: Key[Resource] = Key("existing")
#: BuildNewState / DeleteResource: the id of this resource.
RESOURCE_ID: Key[str] = Key("resource_id")
#: Persist / DeleteResource: the change-log entry appended (absent: no change).
CHANGE: Key[store_pb2.ChangeLogEntry] = Key("change")
#: Any step writing the store (see :mod:`.mirror`): why the store refused the write.
MIRROR_BEHIND: Key[str] = Key("mirror_behind")
#: CreateIamPolicies (AgentInstance): the ServiceAccount name.
SERVICE_ACCOUNT: Key[str] = Key("service_account")
#: CreateDefaultInstance: the default AgentInstance object as read, created or listed at
#: start-up (listed: without managedFields and annotations, see :mod:`.listing`).
DEFAULT_INSTANCE: Key[Mapping[str, Any]] = Key("default_instance")
#: UpdateAgentStatusWithDefaultInstance: whether the default instance is Ready.
DEFAULT_INSTANCE_READY: Key[bool] = Key("default_instance_ready")


def add_stale_entry(values: Values, entry: StaleEntry) -> None:
    """Append to :data:`STALE_ENTRIES` unless that (kind, id) is already listed."""
    listed = values.find(STALE_ENTRIES) or ()
    if all((s.kind, s.id) != (entry.kind, entry.id) for s in listed):
        values.put(STALE_ENTRIES, (*listed, entry))


def still_exists(ctx: RequestContext[Resource], holder: Resource) -> bool:
    """Whether the object a store entry mirrors still exists (same name, same uid)."""
    meta = holder.metadata
    current = ctx.deps.kube.get(ObjectKind.of(ctx.kind), meta.namespace, meta.name)
    return current is not None and str_at(current, "metadata", "uid") == meta.uid
