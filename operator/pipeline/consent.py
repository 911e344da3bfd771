"""Secrets and ConfigMaps by consent: what an AgentInstance may name.

CreateIamPolicies gives an instance's ServiceAccount ``get`` on the Secrets
and ConfigMaps its ``spec.environmentRefs`` name. Without a check, anyone
who may create AgentInstances (and Pods, or ServiceAccount tokens) in a
namespace could read every Secret there through the operator -- a confused
deputy. So a Secret or ConfigMap must consent: its annotation
``agentic.stigmer.ai/allowed-instances`` lists the AgentInstances (by name,
comma-separated) that may use it, or ``*`` for every AgentInstance in its
namespace. Only whoever may write the Secret can set it.

Why an annotation on the Secret rather than an admission webhook doing a
SubjectAccessReview for the requesting user: the consent lives with the
thing protected and is checked on every reconcile (a webhook checks once,
at admission, and knows nothing when the author's rights are revoked later);
GitOps tools apply as their own, usually powerful, identity, so "the
requester may read it" would approve nearly everything; and a webhook adds
TLS, availability and a failure policy to every write. A label cannot hold a
list or ``*``, hence an annotation.

Only the metadata is read (``PartialObjectMetadata``), never the data. A
missing object and one that does not consent get the same refusal,
``EnvironmentRefNotAllowed``, so the message reveals nothing a tenant who
may not read Secrets could not know. It is retried slowly: the Secret or
its consent may be applied after the instance (GitOps order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stigmer_operator.api.kinds import GROUP, Resource
from stigmer_operator.api.models import AgentInstanceSpec, EnvironmentRefKind
from stigmer_operator.pipeline.context import RequestContext
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.kube import ObjectKind

#: Annotation on a Secret/ConfigMap: AgentInstance names (comma-separated) or ``*``.
ALLOWED_INSTANCES_ANNOTATION = f"{GROUP}/allowed-instances"
#: Everyone in the namespace.
ANY_INSTANCE = "*"
#: Seconds between re-checks of a refused reference.
CONSENT_RETRY_DELAY = 30.0

_OBJECT_KINDS = {
    EnvironmentRefKind.SECRET: ObjectKind.SECRET,
    EnvironmentRefKind.CONFIG_MAP: ObjectKind.CONFIG_MAP,
}


def allows(metadata: Mapping[str, Any] | None, instance: str) -> bool:
    """Does the object with this metadata consent to AgentInstance ``instance``?"""
    if metadata is None:
        return False
    value = (metadata.get("annotations") or {}).get(ALLOWED_INSTANCES_ANNOTATION)
    if not isinstance(value, str):
        return False
    names = {part.strip() for part in value.split(",")}
    return ANY_INSTANCE in names or instance in names


def check_environment_refs(ctx: RequestContext[Resource], spec: AgentInstanceSpec) -> None:
    """Refuse the instance unless every Secret/ConfigMap it names consents to it."""
    refused = [
        f"{ref.kind.value} {ref.name}"
        for ref in spec.environment_refs
        if not allows(
            ctx.deps.kube.get_metadata(_OBJECT_KINDS[ref.kind], ctx.namespace, ref.name),
            ctx.name,
        )
    ]
    if refused:
        raise PipelineError(
            Reason.ENVIRONMENT_REF_NOT_ALLOWED,
            f"spec.environmentRefs: {', '.join(refused)} not found or not allowed for this "
            f"AgentInstance: its annotation {ALLOWED_INSTANCES_ANNOTATION} must list "
            f"{ctx.name!r} or '{ANY_INSTANCE}'",
            retryable=True,
            delay=CONSENT_RETRY_DELAY,
        )
