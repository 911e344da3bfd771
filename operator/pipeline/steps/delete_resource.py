"""DeleteResource (delete pipelines): drop the mirror, keep the history.

``store.delete`` removes the live entry, its slug and name index entries and
(for an Agent) its ownership record in one write, appends a DELETED
change-log entry for Publish, and keeps every history entry -- the record
of what existed survives the object. Idempotent: deleting what is already
gone writes nothing, and a crash before Publish is caught up by the outbox.

The id is found through the store's name index (only if that entry mirrors
this very object, by uid), else ``status.id`` or the uid-derived id.
"""

from __future__ import annotations

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.keys import CHANGE, RESOURCE_ID
from stigmer_operator.pipeline.meta import id_of
from stigmer_operator.store.errors import NotFoundError


class DeleteResource:
    name = "DeleteResource"

    def run(self, ctx: RequestContext[Resource]) -> None:
        resource_id = _stored_id(ctx)
        ctx.values.put(RESOURCE_ID, resource_id)
        entry = ctx.deps.store.delete(ctx.kind, resource_id)
        if entry is None:
            ctx.mark_unchanged()
            return
        ctx.deps.outbox.track(ctx.deps.store, entry)
        ctx.values.put(CHANGE, entry)


def _stored_id(ctx: RequestContext[Resource]) -> str:
    try:
        found = ctx.deps.store.get_by_name(ctx.kind, ctx.namespace, ctx.name)
    except NotFoundError:
        return id_of(ctx.kind, ctx.body)
    if found.metadata.uid == ctx.uid:
        return found.metadata.id
    return id_of(ctx.kind, ctx.body)
