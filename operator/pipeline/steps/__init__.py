"""The steps of the Cloud pipeline, one module each (see ``pipelines.py`` for their order)."""

from stigmer_operator.pipeline.steps.authorize import Authorize
from stigmer_operator.pipeline.steps.build_new_state import BuildNewState
from stigmer_operator.pipeline.steps.check_duplicate import CheckDuplicate
from stigmer_operator.pipeline.steps.create_default_instance import CreateDefaultInstance
from stigmer_operator.pipeline.steps.create_iam_policies import CreateIamPolicies
from stigmer_operator.pipeline.steps.delete_resource import DeleteResource
from stigmer_operator.pipeline.steps.persist import Persist
from stigmer_operator.pipeline.steps.publish import Publish
from stigmer_operator.pipeline.steps.reconcile_default_instance import ReconcileDefaultInstance
from stigmer_operator.pipeline.steps.resolve_slug import ResolveSlug
from stigmer_operator.pipeline.steps.revoke_grants import RevokeGrants
from stigmer_operator.pipeline.steps.send_response import SendResponse
from stigmer_operator.pipeline.steps.transform_response import TransformResponse
from stigmer_operator.pipeline.steps.update_agent_status_with_default_instance import (
    UpdateAgentStatusWithDefaultInstance,
)
from stigmer_operator.pipeline.steps.validate_field_constraints import ValidateFieldConstraints

__all__ = [
    "Authorize",
    "BuildNewState",
    "CheckDuplicate",
    "CreateDefaultInstance",
    "CreateIamPolicies",
    "DeleteResource",
    "Persist",
    "Publish",
    "ReconcileDefaultInstance",
    "ResolveSlug",
    "RevokeGrants",
    "SendResponse",
    "TransformResponse",
    "UpdateAgentStatusWithDefaultInstance",
    "ValidateFieldConstraints",
]
