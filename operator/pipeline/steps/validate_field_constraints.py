"""Step 1, ValidateFieldConstraints: refuse what the CRD schema cannot.

The CRD's OpenAPI schema and CEL rules already refuse most bad input at
``kubectl apply`` time, but not everything (cross-field rules CEL cannot
express, objects created before a rule existed, clusters that skipped
validation). This step runs the full pydantic contract of
:mod:`stigmer_operator.api.models`, plus the metadata rules the CRD cannot
state (the org label's value format), and reports *every* violation in one
message with its field path -- one fix-and-apply cycle, not one per error.
A refusal is permanent: retrying the same spec cannot help.
"""

from __future__ import annotations

from stigmer_operator.api.kinds import Resource
from stigmer_operator.api.models import AgentInstanceSpec, AgentSpec
from stigmer_operator.api.validation import SpecInvalid, Violation, validate_spec
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.frozen import thaw
from stigmer_operator.pipeline.keys import SPEC
from stigmer_operator.pipeline.orgs import InvalidOrgLabel, org_label


class ValidateFieldConstraints:
    name = "ValidateFieldConstraints"

    def run(self, ctx: RequestContext[Resource]) -> None:
        violations: list[Violation] = []
        _check_org_label(ctx, violations)
        model = _spec(ctx, violations)
        if violations or model is None:
            raise PipelineError(
                Reason.VALIDATION_FAILED, str(SpecInvalid(violations)), retryable=False
            )
        ctx.values.put(SPEC, model)


def _check_org_label(ctx: RequestContext[Resource], violations: list[Violation]) -> None:
    """The org label's format (whether it agrees with the Namespace is Authorize's call)."""
    try:
        org_label(ctx.labels)
    except InvalidOrgLabel as exc:
        violations.append(Violation(exc.path, str(exc)))


def _spec(
    ctx: RequestContext[Resource], violations: list[Violation]
) -> AgentSpec | AgentInstanceSpec | None:
    """The validated spec, or ``None`` with every violation appended.

    Validates a plain ``dict``/``list`` copy of the frozen spec: pydantic's
    fast paths and the cross-field rules expect real dicts and lists (the
    copy is cheaper than letting pydantic coerce mapping proxies and tuples).
    """
    try:
        return validate_spec(ctx.kind, thaw(ctx.spec))
    except SpecInvalid as exc:
        violations.extend(exc.violations)
        return None
