"""Step 6, Persist: one atomic store write.

``store.save`` writes the resource, its slug/name indexes, a history entry
and a change-log entry in one batch, and is idempotent: when the spec hash
and generation equal the newest history entry it appends nothing and
returns ``None``. That is what makes a re-run after a crash, a resume, or a
status-only update leave history alone.

Stale entries found by CheckDuplicate/BuildNewState (objects deleted while
the operator was not watching) are deleted first, so their slug and name
index entries cannot shadow this object's.

The returned change-log entry goes to the outbox, from which Publish emits
its Event -- also after a crash between here and Publish.

A store that cannot write (full or read-only volume) does not stop the
pipeline: the write is skipped and the mirror marked behind (:mod:`..mirror`).
"""

from __future__ import annotations

import logging

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.keys import CHANGE, STALE_ENTRIES
from stigmer_operator.pipeline.mirror import mirror_write

logger = logging.getLogger(__name__)


class Persist:
    name = "Persist"

    def run(self, ctx: RequestContext[Resource]) -> None:
        store, outbox = ctx.deps.store, ctx.deps.outbox
        with mirror_write(ctx):
            for stale in ctx.values.find(STALE_ENTRIES) or ():
                logger.info(
                    "removing stale %s %s from the store: %s", stale.kind, stale.id, stale.why
                )
                removed = store.delete(stale.kind, stale.id)
                if removed is not None:  # Publish reports the deletion too
                    outbox.track(store, removed)
            entry = store.save(ctx.new_state)
            if entry is None:
                ctx.mark_unchanged()
                return
            outbox.track(store, entry)
            ctx.values.put(CHANGE, entry)
