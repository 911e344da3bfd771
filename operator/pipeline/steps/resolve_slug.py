"""Step 3, ResolveSlug: the URL/DNS-safe handle of the object.

The slug derives from the display name (``spec.displayName``, else
``metadata.name``) and is unique per org and kind (CheckDuplicate). It must
be deterministic -- the same display name gives the same slug on every
re-run -- and always a valid DNS label, whatever Unicode a user typed: a
display name with nothing ASCII-alphanumeric in it (all emoji, say) falls
back to the slug of ``metadata.name``, which Kubernetes guarantees is
non-empty and alphanumeric.
"""

from __future__ import annotations

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.keys import SLUG, SPEC
from stigmer_operator.pipeline.naming import digest, slugify


class ResolveSlug:
    name = "ResolveSlug"

    def run(self, ctx: RequestContext[Resource]) -> None:
        limit = ctx.deps.settings.max_slug_length
        display_name = ctx.values.get(SPEC).display_name or ctx.name
        slug = slugify(display_name, limit) or slugify(ctx.name, limit)
        ctx.values.put(SLUG, slug or digest(ctx.name, min(limit, 8)))
