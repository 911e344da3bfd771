"""The request pipeline: the Cloud's twelve steps, run by the kopf handlers.

The handlers stay thin: per event they call :func:`.pipelines.run`, which
builds the :class:`~.context.RequestContext`, runs the pipeline for the
kind and operation, and hands a failure to :func:`.failure.report_failure`
before raising it as a :class:`~.errors.PipelineError`; the handler only
tells kopf whether to retry.

Modules: :mod:`.context` (RequestContext, typed Values, Operation),
:mod:`.runner` (Step, Pipeline, observer, crash points), :mod:`.errors`
(PipelineError, Reason), :mod:`.kube` (KubeEffects and its errors) with
:mod:`.kube_api` and :mod:`.kube_recording`, :mod:`.conditions` (every
condition the operator writes), :mod:`.naming` (every derived name/id),
:mod:`.steps` (one file per step), :mod:`.pipelines` (the step lists and
:func:`~.pipelines.run`), :mod:`.failure` (report_failure).

Nothing is re-exported here: importing a submodule (say
:mod:`.conditions`, which :mod:`stigmer_operator.api.models` does) must not
import every step.
"""
