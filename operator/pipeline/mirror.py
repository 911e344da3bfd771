"""When the store cannot write, the cluster is still reconciled and the mirror falls behind.

A full (or read-only) store volume must not stop the operator's real job:
default instances, IAM objects and status. Every step that writes the
store does so inside :func:`mirror_write`: a write refused for lack of
space (:class:`~stigmer_operator.store.errors.StoreUnwritableError`) skips
the rest of that write and records :data:`~.keys.MIRROR_BEHIND`, and the
pipeline goes on. What the object then reports:

* ``Ready`` stays what the cluster says (the object is usable) and
  ``Mirrored=False``, reason ``StoreUnwritable``
  (:func:`~.conditions.succeeded`);
* one Warning Event ``StoreUnwritable`` per object generation
  (:func:`warn_mirror_behind`, from Publish);
* the handler asks kopf to retry the object until its mirror write
  succeeds (:func:`~stigmer_operator.handlers.common.reconcile`), which is
  how the mirror and its history catch up once the volume has room.

Other store failures (damage, a closed store) still fail the step.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.conditions import ConditionReason, behind_message
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.keys import MIRROR_BEHIND
from stigmer_operator.pipeline.kube import EventRecord, EventType, KubeError, ObjectKind, ObjectRef
from stigmer_operator.pipeline.naming import event_name
from stigmer_operator.store.errors import StoreUnwritableError

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def mirror_write(ctx: RequestContext[Resource]) -> Iterator[None]:
    """Run a store write; if the store cannot write, record that the mirror is behind."""
    try:
        yield
    except StoreUnwritableError as error:
        logger.debug("%r: mirror write skipped: %s", ctx, error)
        if ctx.values.find(MIRROR_BEHIND) is None:
            ctx.values.put(MIRROR_BEHIND, error.cause)


def warn_mirror_behind(ctx: RequestContext[Resource]) -> None:
    """Post the ``StoreUnwritable`` Warning Event, once per object generation."""
    cause = ctx.values.find(MIRROR_BEHIND)
    if cause is None:
        return
    object_kind = ObjectKind.of(ctx.kind)
    event = EventRecord(
        name=event_name(ctx.name, ctx.uid, ctx.generation, ConditionReason.STORE_UNWRITABLE),
        involved=ObjectRef(
            object_kind.api_version, object_kind.kind, ctx.namespace, ctx.name, ctx.uid
        ),
        type=EventType.WARNING,
        reason=ConditionReason.STORE_UNWRITABLE.value,
        message=behind_message(cause),
    )
    try:
        ctx.deps.kube.post_event(event)
    except KubeError as exc:
        logger.warning("could not post the StoreUnwritable Event of %r: %s", ctx, exc)
