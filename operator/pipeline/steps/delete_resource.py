"""DeleteResource (delete pipelines): drop the mirror, keep the history.

``store.delete`` removes the live entry, its slug and name index entries and
(for an Agent) its ownership record in one write, appends a DELETED
change-log entry for Publish, and keeps every history entry -- the record
of what existed survives the object. Idempotent: deleting what is already
gone writes nothing, and a crash before Publish is caught up by the outbox.

The id is derived from the uid (never read from ``status.id``), and the
store removes the entry only if it mirrors this very object (same uid):
deleting an object can never remove another object's entry.
"""

from __future__ import annotations

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.keys import CHANGE, RESOURCE_ID
from stigmer_operator.pipeline.meta import id_of
from stigmer_operator.pipeline.mirror import mirror_write


class DeleteResource:
    name = "DeleteResource"

    def run(self, ctx: RequestContext[Resource]) -> None:
        resource_id = id_of(ctx.kind, ctx.body)
        ctx.values.put(RESOURCE_ID, resource_id)
        with mirror_write(ctx):  # left behind: retried, and the sweep removes it
            entry = ctx.deps.store.delete(ctx.kind, resource_id, uid=ctx.uid)
            if entry is None:
                ctx.mark_unchanged()
                return
            ctx.deps.outbox.track(ctx.deps.store, entry)
            ctx.values.put(CHANGE, entry)
