"""Step 10, Publish: tell the cluster what changed, exactly once.

For every change-log entry of this resource not yet published -- the one
Persist (or DeleteResource) just appended, and any a crash left behind --
post a Kubernetes Event on the object (``Normal``; reason ``Created``,
``Updated`` or ``Deleted``; visible in ``kubectl describe`` and
``kubectl get events``), then mark the entry published in the store.

Exactly once, across crashes:

* nothing changed (a resume, a re-run) -> nothing pending -> no Event;
* crash after Persist, before the Event -> the re-run finds the entry in
  the outbox (:mod:`~stigmer_operator.pipeline.outbox`) and posts it;
* crash after the Event, before ``mark_published`` -> the re-run posts an
  Event with the *same deterministic name*, the API answers AlreadyExists,
  and the entry is marked published without a second Event.

While the store cannot write, the mirror is behind (:mod:`..mirror`): a
``StoreUnwritable`` Warning Event says so, once per object generation.

Deleting an object in a namespace that is being deleted cannot post an
Event (the API refuses new content there); that one case is logged and the
entry marked published, so the deletion is not held up forever.
"""

from __future__ import annotations

import logging

from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import store_pb2
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.keys import RESOURCE_ID, STALE_ENTRIES
from stigmer_operator.pipeline.kube import (
    ApiForbidden,
    EventRecord,
    EventType,
    NamespaceTerminating,
    NotFound,
    ObjectKind,
    ObjectRef,
)
from stigmer_operator.pipeline.mirror import mirror_write, warn_mirror_behind
from stigmer_operator.pipeline.naming import event_name

logger = logging.getLogger(__name__)

_REASONS = {
    store_pb2.CHANGE_TYPE_CREATED: ("Created", "created"),
    store_pb2.CHANGE_TYPE_UPDATED: ("Updated", "updated"),
    store_pb2.CHANGE_TYPE_DELETED: ("Deleted", "deleted"),
}


class Publish:
    name = "Publish"

    def run(self, ctx: RequestContext[Resource]) -> None:
        ids = [(ctx.kind, ctx.values.get(RESOURCE_ID))]
        ids += [(stale.kind, stale.id) for stale in ctx.values.find(STALE_ENTRIES) or ()]
        published = 0
        for kind, resource_id in ids:
            for entry in ctx.deps.outbox.pending(ctx.deps.store, kind, resource_id):
                _publish(ctx, kind, entry)
                published += 1
        warn_mirror_behind(ctx)
        if not published:
            ctx.mark_unchanged()


def _publish(ctx: RequestContext[Resource], kind: Kind, entry: store_pb2.ChangeLogEntry) -> None:
    uid = ctx.uid if entry.id == ctx.values.get(RESOURCE_ID) else ""
    reason, verb = _REASONS.get(entry.change, ("Changed", "changed"))
    when = " (caught up on operator start)" if ctx.operation is Operation.RESUME else ""
    message = (
        f"{kind.value} {entry.namespace}/{entry.name} {verb} in the operator's store{when}: "
        f"id {entry.id}, generation {entry.generation}, change #{entry.sequence}"
    )
    object_kind = ObjectKind.of(kind)
    event = EventRecord(
        name=event_name(entry.name, entry.id, entry.sequence, entry.change, entry.spec_hash),
        involved=ObjectRef(
            object_kind.api_version, object_kind.kind, entry.namespace, entry.name, uid
        ),
        type=EventType.NORMAL,
        reason=reason,
        message=message,
    )
    try:
        ctx.deps.kube.post_event(event)
    except (ApiForbidden, NotFound) as exc:
        if ctx.operation is not Operation.DELETE:
            raise
        # The namespace is being deleted (or is gone): no Event can ever be
        # posted there. The change-log entry stays; retrying would only hold
        # up the deletion. Only a missing permission is worth a warning.
        expected = isinstance(exc, NamespaceTerminating | NotFound)
        log = logger.info if expected else logger.warning
        log("cannot post the %s Event of %s: %s", reason, entry.name, exc)
    with mirror_write(ctx):  # unmarked, it is re-posted later: AlreadyExists, then marked
        ctx.deps.store.mark_published(entry.sequence)
        ctx.deps.outbox.done(entry)
