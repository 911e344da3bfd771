"""What every handler does: build a context, run a pipeline, report the outcome.

The handlers in :mod:`.agent` and :mod:`.agent_instance` are one line each;
this module holds the shared mechanics:

* one lock per object (kept in :mod:`.coordination`), so a pipeline
  triggered by another object (a default instance turning Ready, an Agent
  appearing) never interleaves with the object's own kopf handler and
  overwrites fresher status with staler; such a pipeline reads the object
  under that lock (:func:`rerun`), and a run on a body older than one
  already handled is skipped (:meth:`.Coordination.outdated`);
* no status write of its own: a run writes status once, when it is done
  (the pipeline's SendResponse, or the failure responder); until then an
  object without status is ``InProgress`` to kstatus and ``kubectl wait``
  waits, so a "first sight" patch would only double the writes;
* a default instance an Agent's run creates is reconciled in that run
  (:func:`reconcile_created`, see :mod:`.children`), under its own lock;
* no second run of a create or update kopf repeats only because its own
  bookkeeping patch had not come back through the watch yet (see
  :meth:`.Coordination.already_reconciled`);
* failures: status + Warning Event (``run(..., report=True)``), then kopf's
  ``TemporaryError`` when the error is ``retryable`` (decided where it is
  raised) or ``PermanentError`` (no retry storm); an object blocked by
  another one is re-checked with a slow back-off (all in
  :func:`kopf_error_for`); an object the store could not record (a full
  volume) is retried every 30 s until it can (:func:`retry_until_mirrored`).
  Runs kopf does not retry (triggered by another object, or by a deletion)
  are retried by :class:`.Retries`, for both reasons. A namespace being
  deleted (``NamespaceTerminating``) ends the reconcile quietly: the object goes
  with its namespace, and kopf must not call that a failure.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

import kopf

from stigmer_operator import metrics
from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.handlers.coordination import fingerprint_of, key_of
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.handlers.observers import ResumeHandler
from stigmer_operator.handlers.references import name_of
from stigmer_operator.pipeline.context import Operation, RequestContext
from stigmer_operator.pipeline.deps import Deps
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.frozen import str_at
from stigmer_operator.pipeline.keys import DEFAULT_INSTANCE, DEFAULT_INSTANCE_READY, MIRROR_BEHIND
from stigmer_operator.pipeline.kube import KubeError, ObjectKind
from stigmer_operator.pipeline.pipelines import run
from stigmer_operator.store.errors import NotFoundError, StoreError

logger = logging.getLogger(__name__)


def forget(kind: Kind, body: Mapping[str, Any], memo: OperatorMemo) -> None:
    """The object is deleted: drop its per-object state, or it would grow forever."""
    coordination = memo.coordination
    coordination.forget(key_of(kind, body), str(body.get("metadata", {}).get("uid", "")))


class Reconciled(enum.Enum):
    """What :func:`reconcile` achieved, when it did not raise."""

    #: Done: the cluster is reconciled and the store recorded it (or nothing was left to do).
    MIRRORED = "mirrored"
    #: The cluster is reconciled; the store could not record it (full or read-only volume).
    MIRROR_BEHIND = "mirror-behind"


#: The ``result`` label of a reconcile whose store write was refused.
MIRROR_BEHIND_RESULT = "MirrorBehind"
#: Seconds between kopf's retries of an object whose mirror is behind.
MIRROR_RETRY_DELAY = 30.0

#: Operations kopf may call twice for one state of an object (see
#: :meth:`.Coordination.already_reconciled`). A resume is never skipped: it
#: is how other objects' changes and a restart reach the pipeline.
_REPEATABLE = frozenset({Operation.CREATE, Operation.UPDATE})
#: The ``result`` label of a reconcile skipped as a repeat.
ALREADY_RECONCILED = "AlreadyReconciled"


def reconcile(
    kind: Kind, operation: Operation, body: Mapping[str, Any], memo: OperatorMemo, retry: int = 0
) -> Reconciled:
    """Run the pipeline for ``kind``/``operation`` on ``body``; raise kopf errors on failure.

    ``retry`` is kopf's count of earlier failed attempts of this handler.
    Returns whether the store recorded the object (see :func:`retry_until_mirrored`).
    """
    with memo.coordination.lock(key_of(kind, body)):
        return _reconcile_locked(kind, operation, body, memo, retry)


def _reconcile_locked(
    kind: Kind, operation: Operation, body: Mapping[str, Any], memo: OperatorMemo, retry: int = 0
) -> Reconciled:
    return _run_locked(kind, operation, body, memo, retry)[0]


def _run_locked(
    kind: Kind, operation: Operation, body: Mapping[str, Any], memo: OperatorMemo, retry: int = 0
) -> tuple[Reconciled, RequestContext[Resource] | None]:
    """:func:`reconcile` under the lock; also the finished context, if the pipeline completed."""
    deps = memo.deps
    coordination = memo.coordination
    uid = str(body.get("metadata", {}).get("uid", ""))
    fingerprint = fingerprint_of(body)
    if operation is not Operation.DELETE and coordination.outdated(uid, fingerprint[0]):
        _skip(kind, operation, body, "a newer version or a deletion was already handled")
        metrics.RECONCILES.labels(kind.value, operation.value, Reason.SUPERSEDED.value).inc()
        return Reconciled.MIRRORED, None
    if operation in _REPEATABLE and coordination.already_reconciled(uid, fingerprint):
        _skip(kind, operation, body, "already reconciled as it is by this process")
        metrics.RECONCILES.labels(kind.value, operation.value, ALREADY_RECONCILED).inc()
        return Reconciled.MIRRORED, None
    try:
        ctx = run(kind, operation, body, deps, observer=OBSERVER, report=True)
        if operation is not Operation.DELETE:
            memo.references.outcome(kind, body, None)  # the cluster side succeeded
            _note_default_instance(ctx, memo)
        if ctx.values.find(MIRROR_BEHIND) is not None:
            metrics.RECONCILES.labels(kind.value, operation.value, MIRROR_BEHIND_RESULT).inc()
            return Reconciled.MIRROR_BEHIND, ctx  # not remembered: the retry must run
        if operation is not Operation.DELETE:
            coordination.remember_reconciled(uid, fingerprint)
    except PipelineError as error:
        metrics.RECONCILES.labels(kind.value, operation.value, error.reason.value).inc()
        if operation is not Operation.DELETE:
            memo.references.outcome(kind, body, error)
            recheck_claim(kind, body, error, memo)
            if kind is Kind.AGENT and error.reason.refuses_object:
                let_in_kept_out(body, memo)  # it left the mirror: its slug is free
        kopf_error = kopf_error_for(error, retry)
        if kopf_error is None:
            _, namespace, name = key_of(kind, body)
            logger.info("%s %s/%s (%s): %s; nothing left to do",
                        kind.value, namespace, name, operation.value, error)  # fmt: skip
            return Reconciled.MIRRORED, None
        raise kopf_error from None
    metrics.RECONCILES.labels(kind.value, operation.value, "Succeeded").inc()
    return Reconciled.MIRRORED, ctx


def _note_default_instance(ctx: RequestContext[Resource], memo: OperatorMemo) -> None:
    """Remember the default instance's readiness this Agent's status now reflects.

    Its flips re-run the Agent (:func:`.agent_instance.instance_event`)
    only when they differ from this. If the watch already showed another
    readiness than the one this run read, the Agent is re-run at once.
    """
    instance = ctx.values.find(DEFAULT_INSTANCE)
    ready = ctx.values.find(DEFAULT_INSTANCE_READY)
    if instance is None or ready is None:
        return
    instance_uid = str_at(instance, "metadata", "uid")
    if memo.coordination.owner_saw(instance_uid, ready):
        _, namespace, name = key_of(Kind.AGENT, ctx.body)
        memo.retries.schedule(
            (Kind.AGENT, namespace, name),
            0.0,
            lambda: rerun(Kind.AGENT, namespace, name, memo, uid=ctx.uid),
        )


def reconcile_created(
    kind: Kind, body: Mapping[str, Any], memo: OperatorMemo
) -> Mapping[str, Any] | None:
    """Create-reconcile ``body``, which another object's run just created, in that run.

    Quietly, like :func:`rerun`: a failure is reported on the object and
    retried later by :class:`.Retries`. Returns the object with the status
    the run wrote, or ``None`` when the run did not complete.
    """
    _, namespace, name = key = key_of(kind, body)
    uid = str_at(body, "metadata", "uid")
    again = lambda: rerun(kind, namespace, name, memo, uid=uid)  # noqa: E731
    with memo.coordination.lock(key):
        try:
            reconciled, ctx = _run_locked(kind, Operation.CREATE, body, memo)
        except (kopf.TemporaryError, kopf.PermanentError) as error:
            _quiet_failure(kind, Operation.CREATE, body, memo, error, again)
            return None
    if reconciled is Reconciled.MIRROR_BEHIND:
        memo.retries.schedule(key, MIRROR_RETRY_DELAY, again)
    if ctx is None:
        return None
    return {**body, "status": ctx.status}


def recheck_claim(
    kind: Kind, body: Mapping[str, Any], error: PipelineError, memo: OperatorMemo
) -> None:
    """Re-run an object refused with DuplicateSlug if its slug's holder already let go.

    A refusal is recorded only after its run; a holder that changed or went
    in between woke the objects it knew it kept out, which did not include
    this one yet. Reading the slug index *after* recording closes that gap:
    either the holder's change comes later and wakes this object, or it
    came before and shows here. Every run records through here, whoever
    started it (a handler, a wake-up, a sweep).
    """
    if error.claim is None or error.blocker is None or _still_held(kind, error, memo):
        return
    _, namespace, name = key_of(kind, body)
    rerun_soon(kind, namespace, name, memo)


def let_in_kept_out(body: Mapping[str, Any], memo: OperatorMemo) -> None:
    """Soon re-run the Agents this one kept out with DuplicateSlug.

    For a refusal in any run, a re-run started by another object included:
    the refused Agent leaves the mirror, freeing its slug.
    """
    for namespace, name in memo.references.duplicates_of(name_of(body)):
        rerun_soon(Kind.AGENT, namespace, name, memo)


def rerun_soon(kind: Kind, namespace: str, name: str, memo: OperatorMemo) -> None:
    """:func:`rerun` on the retries thread (no lock of the caller's is held there);
    an Agent accepted by it wakes the instances waiting for it."""

    def again() -> None:
        rerun(kind, namespace, name, memo)
        if kind is Kind.AGENT:
            wake_instances({"metadata": {"namespace": namespace, "name": name}}, memo,
                           only_waiting=True)  # fmt: skip

    memo.retries.schedule((kind, namespace, name), 0.0, again)


def _still_held(kind: Kind, error: PipelineError, memo: OperatorMemo) -> bool:
    org, slug = error.claim or ("", "")
    try:
        holder = memo.deps.store.get_by_slug(kind, org, slug)
    except NotFoundError:
        return False
    except StoreError:
        return True  # the store cannot tell; the holder's own change still wakes it
    return (holder.metadata.namespace, holder.metadata.name) == error.blocker


def wake_instances(
    body: Mapping[str, Any], memo: OperatorMemo, *, only_waiting: bool = False
) -> None:
    """Re-run the AgentInstances that reference this Agent.

    After a create or resume only instances waiting for this Agent can change;
    after an edit or a delete every referencing instance is re-authorized
    against the new state.
    """
    for namespace, name, waiting in memo.references.referrers(name_of(body)):
        if only_waiting and not waiting:
            continue
        rerun(Kind.AGENT_INSTANCE, namespace, name, memo)


def retry_until_mirrored(reconciled: Reconciled) -> None:
    """Ask for the run again while the store could not record the object.

    The cluster side is done (status says ``Ready`` and ``Mirrored=False``);
    the retry (kopf's, or :class:`.Retries` for runs kopf does not retry) is
    how the mirror and its history catch up once the store's volume has room
    (:mod:`stigmer_operator.pipeline.mirror`). Handlers call this last, after
    the work that must not wait for the store.
    """
    if reconciled is Reconciled.MIRROR_BEHIND:
        raise kopf.TemporaryError(
            "the store cannot write; retrying until the mirror records this object",
            delay=MIRROR_RETRY_DELAY,
        )


def _skip(kind: Kind, operation: Operation, body: Mapping[str, Any], why: str) -> None:
    _, namespace, name = key_of(kind, body)
    generation = fingerprint_of(body)[0]
    logger.debug("%s %s/%s (%s) at generation %d: skipped, %s",
                 kind.value, namespace, name, operation.value, generation, why)  # fmt: skip


def reconcile_quietly(
    kind: Kind, operation: Operation, body: Mapping[str, Any], memo: OperatorMemo
) -> None:
    """:func:`reconcile` for the watch-event observers, which nothing retries: log, retry later."""
    try:
        retry_until_mirrored(reconcile(kind, operation, body, memo))
    except (kopf.TemporaryError, kopf.PermanentError) as error:
        _quiet_failure(kind, operation, body, memo, error,
                       lambda: reconcile_quietly(kind, operation, body, memo))  # fmt: skip


def rerun(
    kind: Kind, namespace: str, name: str, memo: OperatorMemo, *, uid: str | None = None
) -> None:
    """Resume an object because *another* object changed; quietly, retried later if need be.

    The object is read under its lock, so the run sees its newest version
    (a body read before the lock could predate an edit its own handler has
    reconciled meanwhile). Nothing happens if it is gone, being deleted, or
    (with ``uid``) replaced by another object of the same name.
    """
    again = lambda: rerun(kind, namespace, name, memo, uid=uid)  # noqa: E731
    with memo.coordination.lock((kind, namespace, name)):
        body = _current(kind, namespace, name, uid, memo, again)
        if body is None:
            return
        try:
            retry_until_mirrored(_reconcile_locked(kind, Operation.RESUME, body, memo))
        except (kopf.TemporaryError, kopf.PermanentError) as error:
            _quiet_failure(kind, Operation.RESUME, body, memo, error, again)


#: Seconds before a resume that failed unexpectedly (not with one of kopf's
#: errors) runs again: kopf's default for a handler's unexpected error.
UNEXPECTED_ERROR_DELAY = 60.0


def resume(kind: Kind, handler: ResumeHandler, body: Mapping[str, Any], memo: OperatorMemo,
           retry: int = 0) -> None:  # fmt: skip
    """Run ``handler``, a kind's resume, as kopf runs an ``on.resume`` handler, retries included.

    ``retry`` is how many earlier attempts failed. A ``TemporaryError``
    (or an unexpected error) runs it again after its delay on the object's
    newest version, read then (:func:`resume_again`); a ``PermanentError``
    ends it, as kopf would.
    """
    _, namespace, name = key_of(kind, body)
    uid = str_at(body, "metadata", "uid")
    again = lambda: resume_again(kind, handler, namespace, name, uid, memo, retry + 1)  # noqa: E731
    try:
        handler(kopf.Body(cast(kopf.RawBody, body)), memo, retry)
    except (kopf.TemporaryError, kopf.PermanentError) as error:
        _quiet_failure(kind, Operation.RESUME, body, memo, error, again)
    except Exception:
        logger.exception("%s %s/%s (resume) failed; again in %.0f s",
                         kind.value, namespace, name, UNEXPECTED_ERROR_DELAY)  # fmt: skip
        memo.retries.schedule((kind, namespace, name), UNEXPECTED_ERROR_DELAY, again)


def resume_again(
    kind: Kind,
    handler: ResumeHandler,
    namespace: str,
    name: str,
    uid: str,
    memo: OperatorMemo,
    retry: int,
) -> None:
    """:func:`resume` on the object as it is now; nothing if it is gone, going, or replaced."""
    again = lambda: resume_again(kind, handler, namespace, name, uid, memo, retry)  # noqa: E731
    body = _current(kind, namespace, name, uid, memo, again)
    if body is not None:
        resume(kind, handler, body, memo, retry)


def _current(
    kind: Kind,
    namespace: str,
    name: str,
    uid: str | None,
    memo: OperatorMemo,
    again: Callable[[], None],
) -> Mapping[str, Any] | None:
    """The object as the API has it now, for a run another cause than its own event starts.

    ``None`` if it is gone, being deleted, or (with ``uid``) replaced by
    another object of the same name -- or could not be read: then ``again``
    is scheduled if a retry can help (:func:`retry_soon`).
    """
    deps = memo.deps
    try:
        body = deps.kube.get(ObjectKind.of(kind), namespace, name)
    except KubeError as error:
        failure = retry_soon(error, deps)
        if isinstance(failure, kopf.TemporaryError):
            memo.retries.schedule((kind, namespace, name), failure.delay or 0.0, again)
        logger.warning("%s %s/%s: %s", kind.value, namespace, name, error)
        return None
    metadata = (body or {}).get("metadata", {})
    if body is None or metadata.get("deletionTimestamp"):
        return None
    if uid is not None and metadata.get("uid") != uid:
        return None
    return body


def _quiet_failure(
    kind: Kind,
    operation: Operation,
    body: Mapping[str, Any],
    memo: OperatorMemo,
    error: kopf.TemporaryError | kopf.PermanentError,
    again: Callable[[], None],
) -> None:
    """Log a failure kopf will not retry; schedule the retry it would have done."""
    _, namespace, name = key_of(kind, body)
    logger.warning("%s %s/%s (%s): %s", kind.value, namespace, name, operation.value, error)
    if isinstance(error, kopf.TemporaryError):
        memo.retries.schedule((kind, namespace, name), error.delay or 0.0, again)


def retry_soon(error: KubeError, deps: Deps) -> Exception:
    """A Kubernetes failure outside a pipeline, as kopf should see it.

    Left alone a transient one (unreachable API, 5xx) would reach kopf as an
    arbitrary exception, retried only after kopf's default back-off of 60 s:
    a few seconds of API server restart would leave objects unreconciled for
    a minute. Others keep that default.
    """
    if error.retryable:
        return kopf.TemporaryError(str(error), delay=deps.settings.retry_delay)
    return error


def is_deletion(event: kopf.RawEvent) -> bool:
    """The watch says the object is gone."""
    return event.get("type") == "DELETED"


#: First and longest wait before re-checking an object blocked by another one.
BLOCKED_RETRY_DELAY = 60.0
BLOCKED_RETRY_MAX = 600.0


def kopf_error_for(error: PipelineError, retry: int) -> Exception | None:
    """What kopf is told about a failed pipeline; ``None``: the reconcile just ends.

    Retry what a retry can fix, after the error's delay; back off slowly
    (1, 2, 4, ... up to 10 minutes; ``retry`` is kopf's count of earlier
    attempts) while another object blocks this one; never retry the rest.
    """
    if error.reason.ends_reconciling:
        return None
    if error.retryable:
        return kopf.TemporaryError(str(error), delay=error.delay or 5.0)
    if error.reason.blocked_by_another_object:
        delay = min(BLOCKED_RETRY_MAX, BLOCKED_RETRY_DELAY * 2 ** min(retry, 8))
        return kopf.TemporaryError(str(error), delay=delay)
    return kopf.PermanentError(str(error))


class MetricsObserver:
    """Pipeline span hook: step durations and failures into Prometheus."""

    def on_step_start(self, pipeline: str, step: str, ctx: RequestContext[Any]) -> None:
        return None

    def on_step_end(
        self,
        pipeline: str,
        step: str,
        ctx: RequestContext[Any],
        duration: float,
        error: PipelineError | None,
    ) -> None:
        metrics.STEP_DURATION.labels(pipeline, step).observe(duration)
        if error is not None:
            metrics.STEP_FAILURES.labels(pipeline, step, error.reason.value).inc()


OBSERVER = MetricsObserver()
