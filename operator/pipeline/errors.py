"""The one error type a pipeline raises, and the reasons it can carry.

Handlers must decide one thing about a failure: can a retry help (kopf
``TemporaryError``) or not (``PermanentError``)? Every failure therefore
reaches them as a :class:`PipelineError` naming the step, a CamelCase
:class:`Reason` (which is also the condition reason users see in
``kubectl describe``), a one-line message and ``retryable``/``delay``.

Steps raise ``PipelineError`` for decisions they make themselves
(``Forbidden``, ``DuplicateSlug``, ...). Domain errors that escape a step --
store failures, Kubernetes API failures, bugs -- are translated here by
:func:`from_exception`, so steps do not each repeat the mapping.
"""

from __future__ import annotations

import enum

from stigmer_operator.pipeline.kube import KubeError, NamespaceTerminating
from stigmer_operator.store.errors import OlderGenerationError, StoreError


class Reason(enum.StrEnum):
    """CamelCase reasons, used for conditions, Events and metrics."""

    VALIDATION_FAILED = "ValidationFailed"
    FORBIDDEN = "Forbidden"
    AGENT_NOT_FOUND = "AgentNotFound"
    ORG_MISMATCH = "OrgMismatch"
    ENVIRONMENT_REF_NOT_ALLOWED = "EnvironmentRefNotAllowed"
    DUPLICATE_SLUG = "DuplicateSlug"
    IAM_CONFLICT = "IamConflict"
    DEFAULT_INSTANCE_CONFLICT = "DefaultInstanceConflict"
    NAMESPACE_TERMINATING = "NamespaceTerminating"
    #: The run read an older version of the object (or a deleted one) than
    #: what is already reconciled: it stops and writes nothing.
    SUPERSEDED = "Superseded"
    STORE_ERROR = "StoreError"
    KUBERNETES_API_ERROR = "KubernetesApiError"
    INTERNAL_ERROR = "InternalError"

    @property
    def refuses_object(self) -> bool:
        """True when the object itself is the problem (``Accepted=False``).

        The user must change the object; retrying cannot help.
        """
        return self in _REFUSALS

    @property
    def blocked_by_another_object(self) -> bool:
        """True when the object is fine but another object stands in its way.

        ``Accepted=True`` (the spec is valid and authorized, and mirrored),
        ``Ready=False``; it heals once the other object is gone, so it is
        retried slowly. The other reasons are infrastructure trouble: the
        object may be fine, so only ``Ready`` goes ``Unknown``.
        """
        return self in _BLOCKERS

    @property
    def waits_for_another_object(self) -> bool:
        """True when the object waits for another one that may yet appear.

        An AgentInstance applied before its Agent (GitOps applies both
        together): refused for now, re-run when the Agent appears -- in
        progress for kstatus, not failed.
        """
        return self is Reason.AGENT_NOT_FOUND

    @property
    def ends_reconciling(self) -> bool:
        """True when there is nothing left to do: not an error, not retried.

        The namespace is being deleted; the object goes with it, and the
        namespace accepts no new child objects or Events for it. Or the run
        is superseded by a newer one.
        """
        return self in (Reason.NAMESPACE_TERMINATING, Reason.SUPERSEDED)

    @property
    def leaves_status(self) -> bool:
        """True when the failed run must not write status: a newer run owns it."""
        return self is Reason.SUPERSEDED


_REFUSALS = frozenset(
    {
        Reason.VALIDATION_FAILED,
        Reason.FORBIDDEN,
        Reason.AGENT_NOT_FOUND,
        Reason.ORG_MISMATCH,
        Reason.ENVIRONMENT_REF_NOT_ALLOWED,
        Reason.DUPLICATE_SLUG,
    }
)
_BLOCKERS = frozenset({Reason.IAM_CONFLICT, Reason.DEFAULT_INSTANCE_CONFLICT})


class PipelineError(Exception):
    """A step failed; says which, why, and whether retrying can help."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        retryable: bool,
        delay: float | None = None,
        step: str = "",
        blocker: tuple[str, str] | None = None,
        claim: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        #: (namespace, name) of the object standing in the way, when one does.
        self.blocker = blocker
        #: (org, slug) the blocker holds, for ``DuplicateSlug``: what a refused
        #: object re-checks once its refusal is recorded (the holder may have
        #: let go of it meanwhile).
        self.claim = claim
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.delay = delay
        self.step = step

    @property
    def stalls(self) -> bool:
        """True when only a change by someone can help: kstatus's ``Stalled=True``.

        Nothing will retry it (not ``retryable``), and the operator does not
        wait for another object to appear. A block by another object counts:
        it is re-checked slowly, but someone must remove that object.
        """
        reason = self.reason
        return not (self.retryable or reason.waits_for_another_object or reason.ends_reconciling)

    @property
    def detail(self) -> str:
        """The message, prefixed by the step (what conditions and Events say)."""
        return f"{self.step}: {self.message}" if self.step else self.message

    def in_step(self, step: str) -> PipelineError:
        """This error, attributed to ``step`` unless a step was already named."""
        if not self.step:
            self.step = step
        return self

    def __str__(self) -> str:
        where = f"{self.step}: " if self.step else ""
        return f"{where}{self.reason.value}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"PipelineError(step={self.step!r}, reason={self.reason.value!r}, "
            f"retryable={self.retryable}, message={self.message!r})"
        )


def from_exception(exc: BaseException, step: str, retry_delay: float) -> PipelineError:
    """Translate anything a step raised into a :class:`PipelineError`.

    Store and Kubernetes failures are retryable unless the API said the
    request itself is wrong; anything unknown is a bug, reported as
    ``InternalError`` and retried (a transient cause is more likely than a
    deterministic one in code that passed its tests).
    """
    if isinstance(exc, PipelineError):
        return exc.in_step(step)
    if isinstance(exc, NamespaceTerminating):
        return PipelineError(Reason.NAMESPACE_TERMINATING, str(exc), retryable=False, step=step)
    if isinstance(exc, KubeError):
        return PipelineError(
            Reason.KUBERNETES_API_ERROR,
            str(exc),
            retryable=exc.retryable,
            delay=retry_delay if exc.retryable else None,
            step=step,
        )
    if isinstance(exc, OlderGenerationError):
        return PipelineError(Reason.SUPERSEDED, str(exc), retryable=False, step=step)
    if isinstance(exc, StoreError):
        return PipelineError(
            Reason.STORE_ERROR,
            f"store: {exc}",
            retryable=True,
            delay=retry_delay,
            step=step,
        )
    return PipelineError(
        Reason.INTERNAL_ERROR,
        f"unexpected {type(exc).__name__}: {exc}",
        retryable=True,
        delay=retry_delay,
        step=step,
    )
