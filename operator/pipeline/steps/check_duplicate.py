"""Step 4, CheckDuplicate: one slug per org and kind.

The store's slug index answers "who has this slug in this org?" in one point
lookup. Three cases:

* nobody, or this very object (same Kubernetes uid: a re-run, a resume, an
  update that kept the display name) -- fine;
* another live object -- refused with ``DuplicateSlug``, naming it, so the
  user knows which ``spec.displayName`` to change. Orgs can span namespaces
  (the org label), so the other object may well live in another namespace;
* a store entry whose object is gone from the cluster (deleted while the
  operator was down, before the start-up sweep) -- not a duplicate; Persist
  removes the stale entry.

The check and Persist's write are one critical section per (kind, org,
slug): the slug's lock is held from here to the end of the run (see
:mod:`~stigmer_operator.pipeline.locks`), so two objects with one display
name reconciled at the same time cannot both be accepted.
"""

from __future__ import annotations

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.keys import ORG, SLUG, StaleEntry, add_stale_entry, still_exists
from stigmer_operator.store.errors import NotFoundError


class CheckDuplicate:
    name = "CheckDuplicate"

    def run(self, ctx: RequestContext[Resource]) -> None:
        org, slug = ctx.values.get(ORG), ctx.values.get(SLUG)
        # Until the run ends (past Persist): no other run reads this slug meanwhile.
        ctx.hold(ctx.deps.slug_locks.hold((ctx.kind, org, slug)))
        try:
            holder = ctx.deps.store.get_by_slug(ctx.kind, org, slug)
        except NotFoundError:
            return
        meta = holder.metadata
        if meta.uid == ctx.uid:
            return
        if not still_exists(ctx, holder):
            stale = StaleEntry(ctx.kind, meta.id, f"slug {slug!r} held by a deleted object")
            add_stale_entry(ctx.values, stale)
            return
        raise PipelineError(
            Reason.DUPLICATE_SLUG,
            f"slug {slug!r} (from the display name) is already used in org {org!r} by "
            f"{ctx.kind.value} {meta.namespace}/{meta.name}; choose another spec.displayName",
            retryable=False,
            blocker=(meta.namespace, meta.name),
            claim=(org, slug),
        )
