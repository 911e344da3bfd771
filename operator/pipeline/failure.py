"""The failure responder: what a user sees when a pipeline fails.

Handlers call :func:`report_failure` with the :class:`PipelineError` before
raising kopf's ``PermanentError``/``TemporaryError``. It writes what
``kubectl describe``, ``kubectl wait`` and GitOps health checks read:

* the conditions :func:`~stigmer_operator.pipeline.conditions.failed`
  builds from the error's reason: a refusal (the object is the problem:
  ``ValidationFailed``, ``Forbidden``, ``DuplicateSlug``, ``AgentNotFound``)
  is ``Accepted=False`` and ``Ready=False``; a block (another object stands
  in the way: ``IamConflict``, ``DefaultInstanceConflict``) is
  ``Ready=False`` with ``Accepted=True`` -- the spec is valid, authorized
  and mirrored; infrastructure trouble (store, API, bug) is
  ``Ready=Unknown`` -- the object may be perfectly fine, we just could not
  finish;
* ``observedGeneration`` set to the generation that failed;
* one ``Warning`` Event with the reason and message. Its name is derived
  from (uid, generation, reason, message), so kopf's retries of the same
  failure do not pile up Events;
* ``NamespaceTerminating`` is not trouble: ``Ready=Unknown`` says why the
  reconcile stopped, and no Event is posted (a terminating namespace
  refuses them);
* ``Superseded`` writes nothing at all: the run read an outdated object,
  and the status belongs to the newer run.

No store write, no child objects. Status is not patched for a failing
delete (the object is going away) and is skipped when already identical.
The responder never raises: failing to report must not hide the failure.
"""

from __future__ import annotations

import logging
from typing import Any

from stigmer_operator.api.kinds import Resource
from stigmer_operator.pipeline.conditions import failed
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.errors import PipelineError
from stigmer_operator.pipeline.frozen import thaw
from stigmer_operator.pipeline.kube import (
    EventRecord,
    EventType,
    KubeError,
    ObjectKind,
    ObjectRef,
)
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.pipeline.naming import event_name

logger = logging.getLogger(__name__)


def failure_status(ctx: RequestContext[Resource], error: PipelineError) -> dict[str, Any]:
    """``observedGeneration`` + ``conditions`` describing ``error``."""
    conditions = failed(thaw(conditions_of(ctx.body)), error, ctx.generation, ctx.deps.clock())
    return {"observedGeneration": ctx.generation, "conditions": conditions}


def report_failure(ctx: RequestContext[Resource], error: PipelineError) -> None:
    """Write the failure to status and post one Warning Event; never raises."""
    if error.reason.leaves_status:
        return
    try:
        if ctx.operation is not Operation.DELETE:
            _patch_status(ctx, error)
        if not error.reason.ends_reconciling:
            _post_warning(ctx, error)
    except Exception:  # reporting must not hide the original failure
        logger.exception("could not report %r", error)


def _patch_status(ctx: RequestContext[Resource], error: PipelineError) -> None:
    status = failure_status(ctx, error)
    current = ctx.current_status
    if all(thaw(current.get(key)) == value for key, value in status.items()):
        return
    try:
        ctx.deps.kube.patch_status(ctx.kind, ctx.namespace, ctx.name, status)
    except KubeError as exc:
        logger.warning("could not write failure status of %r: %s", ctx, exc)


def _post_warning(ctx: RequestContext[Resource], error: PipelineError) -> None:
    object_kind = ObjectKind.of(ctx.kind)
    event = EventRecord(
        name=event_name(ctx.name, ctx.uid, ctx.generation, error.reason, error.message),
        involved=ObjectRef(
            object_kind.api_version, object_kind.kind, ctx.namespace, ctx.name, ctx.uid
        ),
        type=EventType.WARNING,
        reason=error.reason.value,
        message=error.detail,
    )
    try:
        ctx.deps.kube.post_event(event)
    except KubeError as exc:
        logger.warning("could not post failure Event for %r: %s", ctx, exc)
