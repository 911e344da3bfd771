"""Step 5, BuildNewState: the protobuf message Persist will store.

Built afresh from the validated spec and the object's metadata, so nothing
stale survives from an earlier version -- except what must never change or
is not the spec's to say:

* ``metadata.id``: always derived from the uid
  (:func:`~stigmer_operator.pipeline.naming.resource_id`), never read back
  from ``status.id`` (anyone who may write the status could name another
  object's id), so a crash before ``status.id`` was written cannot mint a
  second id either. A store entry under that id held by another uid, or an
  entry of this object under another id, was forged through ``status.id``
  by an older version: Persist removes it (the store itself refuses to
  overwrite another uid's entry).
* ``status.audit.created_at``: kept; ``updated_at`` moves (and the event
  becomes UPDATED) only when the spec actually changed, so a resume or a
  metadata-only change does not rewrite history.
* an Agent's ``default_instance_*``: kept for UpdateAgentStatusWithDefaultInstance
  to confirm, so an update is one store write, not two.

Annotations written by tools (kopf's bookkeeping under the operator's
prefix, ``kubectl``'s last-applied copy of the whole object) are not
mirrored (:func:`~stigmer_operator.pipeline.meta.mirrored_annotations`):
they change on every handling and would make every save differ.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from stigmer_operator.api.convert import (
    agent_instance_spec_to_proto,
    agent_spec_to_proto,
    scope_to_proto,
)
from stigmer_operator.api.kinds import API_VERSION, Resource
from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec
from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2, resource_pb2
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.frozen import str_at
from stigmer_operator.pipeline.keys import (
    AGENT_TARGET,
    EXISTING,
    ORG,
    RESOURCE_ID,
    SLUG,
    SPEC,
    StaleEntry,
    add_stale_entry,
    still_exists,
)
from stigmer_operator.pipeline.meta import mirrored_annotations
from stigmer_operator.pipeline.naming import resource_id, service_account_name
from stigmer_operator.store.errors import NotFoundError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The range of a protobuf Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_SECONDS_MIN, _SECONDS_MAX = -62_135_596_800, 253_402_300_799


class BuildNewState:
    name = "BuildNewState"

    def run(self, ctx: RequestContext[Resource]) -> None:
        rid = resource_id(ctx.kind, ctx.uid)
        existing = _existing(ctx, rid)
        state = ctx.new_state
        state.Clear()
        state.api_version = API_VERSION
        state.kind = ctx.kind.value
        _fill_metadata(ctx, state.metadata, rid)
        spec = ctx.values.get(SPEC)
        if isinstance(state, agent_pb2.Agent) and isinstance(spec, AgentSpec):
            state.spec.CopyFrom(agent_spec_to_proto(spec))
            _fill_agent_status(state, existing)
        elif isinstance(state, agent_instance_pb2.AgentInstance) and isinstance(
            spec, AgentInstanceSpec
        ):
            state.spec.CopyFrom(agent_instance_spec_to_proto(spec))
            state.status.agent_id = ctx.values.get(AGENT_TARGET).id
            state.status.service_account_name = service_account_name(ctx.name)
        else:
            raise TypeError(f"{type(spec).__name__} does not fit {type(state).__name__}")
        _fill_audit(ctx, state, existing)
        ctx.values.put(RESOURCE_ID, rid)


def _existing(ctx: RequestContext[Resource], rid: str) -> Resource | None:
    """The store's entry for this object; any other entry in its way is stale.

    Stale: the entry of a same-named former object, an entry of this very
    object under another id, and an entry under this id held by another uid.
    """
    store = ctx.deps.store
    try:
        found = store.get_by_name(ctx.kind, ctx.namespace, ctx.name)
    except NotFoundError:
        found = None
    if found is not None and found.metadata.uid == ctx.uid and found.metadata.id == rid:
        ctx.values.put(EXISTING, found)
        return found
    if found is not None and found.metadata.uid != ctx.uid and still_exists(ctx, found):
        # this run's object is the former one
        raise PipelineError(
            Reason.SUPERSEDED,
            f"uid {ctx.uid} was replaced by {found.metadata.uid}",
            retryable=False,
        )
    if found is not None:
        why = (
            f"name held by former uid {found.metadata.uid}"
            if found.metadata.uid != ctx.uid
            else f"this object's entry under an id not derived from its uid ({rid})"
        )
        add_stale_entry(ctx.values, StaleEntry(ctx.kind, found.metadata.id, why))
    try:
        squatter = store.get(ctx.kind, rid)
    except NotFoundError:
        return None
    if squatter.metadata.uid == ctx.uid:  # its name index entry was lost
        ctx.values.put(EXISTING, squatter)
        return squatter
    why = f"id {rid} held by uid {squatter.metadata.uid}, not the uid it derives from"
    add_stale_entry(ctx.values, StaleEntry(ctx.kind, rid, why))
    return None


def _fill_metadata(
    ctx: RequestContext[Resource], meta: resource_pb2.ResourceMetadata, rid: str
) -> None:
    spec = ctx.values.get(SPEC)
    meta.name = ctx.name
    meta.display_name = spec.display_name or ctx.name
    meta.slug = ctx.values.get(SLUG)
    meta.id = rid
    meta.org = ctx.values.get(ORG)
    meta.namespace = ctx.namespace
    meta.uid = ctx.uid
    meta.owner_scope = scope_to_proto(spec.scope)
    # Item by item: a protobuf map's update() is the slow, generic MutableMapping one.
    labels = meta.labels
    for key, value in ctx.labels.items():
        labels[key] = str(value)
    annotations = meta.annotations
    for key, text in mirrored_annotations(ctx.annotations).items():
        annotations[key] = text
    meta.generation = ctx.generation
    meta.resource_version = str_at(ctx.body, "metadata", "resourceVersion")


def _fill_agent_status(state: agent_pb2.Agent, existing: Resource | None) -> None:
    if isinstance(existing, agent_pb2.Agent):
        state.status.default_instance_id = existing.status.default_instance_id
        state.status.default_instance_name = existing.status.default_instance_name


def _fill_audit(ctx: RequestContext[Resource], state: Resource, existing: Resource | None) -> None:
    audit = state.status.audit
    now = _timestamp(ctx.deps.clock())
    if existing is None:
        audit.created_at.CopyFrom(_status_created_at(ctx) or now)
        audit.updated_at.CopyFrom(now)
        audit.event = resource_pb2.AUDIT_EVENT_CREATED
        return
    old = existing.status.audit
    audit.created_at.CopyFrom(old.created_at if old.HasField("created_at") else now)
    if existing.spec == state.spec and old.HasField("updated_at"):
        audit.updated_at.CopyFrom(old.updated_at)
        audit.event = old.event or resource_pb2.AUDIT_EVENT_CREATED
    else:
        audit.updated_at.CopyFrom(now)
        audit.event = resource_pb2.AUDIT_EVENT_UPDATED


def _status_created_at(ctx: RequestContext[Resource]) -> timestamp_pb2.Timestamp | None:
    """``status.audit.createdAt`` as written earlier (the store may have been rebuilt)."""
    text = str_at(ctx.body, "status", "audit", "createdAt")
    if not text:
        return None
    try:
        return _timestamp(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    """``Timestamp.FromDatetime`` (naive means UTC), by integer arithmetic on the offset."""
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    since = moment - _EPOCH
    stamp = timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000
    )
    if not _SECONDS_MIN <= stamp.seconds <= _SECONDS_MAX:
        raise ValueError(f"{moment.isoformat()} is outside the range of a protobuf Timestamp")
    return stamp
