"""The request pipeline: the Cloud's twelve steps, run by the kopf handlers.

The handlers stay thin: build :class:`Deps` once, then per event::

    try:
        run(Kind.AGENT, Operation.CREATE, body, deps)
    except PipelineError as err:
        report_failure(err.context, err)
        if err.retryable:
            raise kopf.TemporaryError(str(err), delay=err.delay or 60) from err
        raise kopf.PermanentError(str(err)) from err

Modules: :mod:`.context` (RequestContext, typed Values, Operation),
:mod:`.runner` (Step, Pipeline, observer, crash points), :mod:`.errors`
(PipelineError, Reason), :mod:`.kube` (KubeEffects and its errors) with
:mod:`.kube_api` and :mod:`.kube_recording`, :mod:`.conditions`,
:mod:`.naming` (every derived name/id), :mod:`.steps` (one file per step),
:mod:`.pipelines` (the step lists), :mod:`.failure` (report_failure).
"""

from stigmer_operator.pipeline.conditions import ConditionStatus, ConditionType, set_condition
from stigmer_operator.pipeline.context import (
    Key,
    Operation,
    Outcome,
    RequestContext,
    StepOutcome,
    Values,
)
from stigmer_operator.pipeline.deps import Deps, PipelineSettings
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.failure import report_failure
from stigmer_operator.pipeline.kube import (
    AlreadyExists,
    EventRecord,
    KubeEffects,
    KubeError,
    ObjectKind,
)
from stigmer_operator.pipeline.kube_api import ApiKubeEffects
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.pipeline.pipelines import PIPELINES, pipeline_for, run
from stigmer_operator.pipeline.runner import CRASH_AFTER_STEP_ENV, Pipeline, Step, StepObserver

__all__ = [
    "CRASH_AFTER_STEP_ENV",
    "PIPELINES",
    "AlreadyExists",
    "ApiKubeEffects",
    "ConditionStatus",
    "ConditionType",
    "Deps",
    "EventRecord",
    "Key",
    "KubeEffects",
    "KubeError",
    "ObjectKind",
    "Operation",
    "Outcome",
    "Pipeline",
    "PipelineError",
    "PipelineSettings",
    "Reason",
    "RecordingKubeEffects",
    "RequestContext",
    "Step",
    "StepObserver",
    "StepOutcome",
    "Values",
    "pipeline_for",
    "report_failure",
    "run",
    "set_condition",
]
