"""``KubeEffects`` over the sync ``kubernetes`` client.

kopf runs sync handlers in its thread pool, so this uses the blocking client
(``CustomObjectsApi``, ``CoreV1Api``, ``RbacAuthorizationV1Api``). Every
write names ``field_manager``, so ``kubectl get -o yaml --show-managed-fields``
shows which fields the operator owns. Every ``ApiException`` becomes one of
the typed errors of :mod:`.kube`, with ``retryable`` set from the HTTP
status: 409 on update and 429/5xx are worth a retry; 403 (missing RBAC),
404 and 400/422 (a request the API will never accept) are not.

All patches are JSON merge patches, set explicitly: the generated client
would otherwise pick ``json-patch+json`` for a dict body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from stigmer_operator import metrics
from stigmer_operator.api.kinds import GROUP, VERSION, Kind
from stigmer_operator.pipeline.deps import PipelineSettings
from stigmer_operator.pipeline.kube import (
    APPLICABLE_KINDS,
    DELETABLE_KINDS,
    MERGE_PATCH,
    AlreadyExists,
    ApiForbidden,
    ApplyResult,
    Conflict,
    EventRecord,
    Invalid,
    KubeError,
    NamespaceTerminating,
    NotFound,
    ObjectKind,
    ServerError,
    apply_patch,
    check_controller,
)

logger = logging.getLogger(__name__)

R = TypeVar("R")

#: Kubernetes caps Event messages in practice (events.k8s.io note: 1 kB).
EVENT_MESSAGE_MAX = 1024
#: ``reportingInstance`` limit enforced by the API.
REPORTING_INSTANCE_MAX = 128
#: Verbs counted in ``stigmer_kubernetes_writes_total``.
WRITE_VERBS = frozenset({"create", "patch", "delete"})


def translate(exc: BaseException, what: str) -> KubeError:
    """Map a client exception to a typed :class:`KubeError`."""
    if not isinstance(exc, ApiException):
        return ServerError(f"{what}: {type(exc).__name__}: {exc}")
    status = exc.status or 0
    detail = f"{what}: HTTP {status} {exc.reason or ''}".rstrip()
    error_type: type[KubeError]
    if status == 404:
        error_type = NotFound
    elif status == 409:
        error_type = Conflict
    elif status == 403 and _namespace_terminating(exc):
        return NamespaceTerminating(f"{detail}: the namespace is being deleted", status=status)
    elif status in (401, 403):
        error_type = ApiForbidden
    elif status in (400, 422):
        error_type = Invalid
    else:  # 429, 5xx, anything unexpected: transient until proven otherwise
        error_type = ServerError
    return error_type(detail, status=status)


#: The cause the API server names when a namespace refuses new objects.
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


def _namespace_terminating(exc: ApiException) -> bool:
    """Does a 403 say "the namespace is being terminated" rather than "no permission"?"""
    try:
        status = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return False
    details = status.get("details") if isinstance(status, dict) else None
    causes = details.get("causes") if isinstance(details, dict) else None
    return isinstance(causes, list) and any(
        isinstance(cause, dict) and cause.get("reason") == NAMESPACE_TERMINATING_CAUSE
        for cause in causes
    )


def _model(from_dict: Callable[[dict[str, Any]], R | None], body: Mapping[str, Any]) -> R:
    """A typed client model from a camelCase manifest."""
    model = from_dict(dict(body))
    if model is None:
        raise Invalid("empty manifest", status=422)
    return model


#: Ask the API for an object's metadata only (no Secret data on the wire).
PARTIAL_OBJECT_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def _metadata_of(response: Any) -> dict[str, Any]:
    """``metadata`` of a ``PartialObjectMetadata`` read without preloading (raw urllib3)."""
    document = json.loads(response.data)
    metadata = document.get("metadata") if isinstance(document, dict) else None
    return metadata if isinstance(metadata, dict) else {}


class ApiKubeEffects:
    """The production ``KubeEffects``."""

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        *,
        field_manager: str = "stigmer-operator",
        reporting_instance: str = "stigmer-operator",
        request_timeout: float = 30.0,
    ) -> None:
        self._client = api_client or client.ApiClient()
        self._custom = client.CustomObjectsApi(self._client)
        self._core = client.CoreV1Api(self._client)
        self._rbac = client.RbacAuthorizationV1Api(self._client)
        self._field_manager = field_manager
        self._reporting_instance = reporting_instance[:REPORTING_INSTANCE_MAX]
        self._timeout = request_timeout

    @classmethod
    def from_settings(
        cls, settings: PipelineSettings, api_client: client.ApiClient | None = None
    ) -> ApiKubeEffects:
        """Build with ``settings.field_manager`` and ``settings.reporting_instance``."""
        return cls(
            api_client,
            field_manager=settings.field_manager,
            reporting_instance=settings.reporting_instance,
        )

    # -- plumbing ------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], R]) -> R:
        # ``what`` is "<verb> <resource> <namespace>/<name>" at every call site;
        # writes are counted when sent, whatever the answer.
        verb, _, rest = what.partition(" ")
        if verb in WRITE_VERBS:
            metrics.API_WRITES.labels(verb, rest.partition(" ")[0]).inc()
        try:
            return fn()
        except ApiException as exc:
            raise translate(exc, what) from exc
        except (OSError, ValueError, TransportError) as exc:  # unreachable API, broken connection
            raise translate(exc, what) from exc

    def _to_dict(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, dict):
            return obj
        # An unannotated helper of the generated client; it returns JSON-ready dicts.
        result: dict[str, Any] = self._client.sanitize_for_serialization(obj)
        return result

    def _reader(self, kind: ObjectKind, namespace: str, name: str) -> Callable[[], Any]:
        t = self._timeout
        readers: dict[ObjectKind, Callable[[], Any]] = {
            ObjectKind.AGENT: lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, name, _request_timeout=t
            ),
            ObjectKind.AGENT_INSTANCE: lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, name, _request_timeout=t
            ),
            ObjectKind.SERVICE_ACCOUNT: lambda: self._core.read_namespaced_service_account(
                name, namespace, _request_timeout=t
            ),
            ObjectKind.ROLE: lambda: self._rbac.read_namespaced_role(
                name, namespace, _request_timeout=t
            ),
            ObjectKind.ROLE_BINDING: lambda: self._rbac.read_namespaced_role_binding(
                name, namespace, _request_timeout=t
            ),
        }
        return readers[kind]

    # -- KubeEffects ---------------------------------------------------------
    def get(self, kind: ObjectKind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._to_dict(
                self._call(
                    f"get {kind.plural} {namespace}/{name}", self._reader(kind, namespace, name)
                )
            )
        except NotFound:
            return None

    def get_metadata(self, kind: ObjectKind, namespace: str, name: str) -> dict[str, Any] | None:
        t, headers = self._timeout, {"Accept": PARTIAL_OBJECT_METADATA}
        readers: dict[ObjectKind, Callable[[], Any]] = {
            ObjectKind.NAMESPACE: lambda: self._core.read_namespace(
                name, _request_timeout=t, _headers=headers, _preload_content=False
            ),
            ObjectKind.SECRET: lambda: self._core.read_namespaced_secret(
                name, namespace, _request_timeout=t, _headers=headers, _preload_content=False
            ),
            ObjectKind.CONFIG_MAP: lambda: self._core.read_namespaced_config_map(
                name, namespace, _request_timeout=t, _headers=headers, _preload_content=False
            ),
        }
        try:
            response = self._call(f"get {kind.plural} {namespace}/{name}", readers[kind])
        except NotFound:
            return None
        return _metadata_of(response)

    def create_agent_instance(self, body: Mapping[str, Any]) -> dict[str, Any]:
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        what = f"create agentinstances {namespace}/{name}"
        try:
            created = self._call(
                what,
                lambda: self._custom.create_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    ObjectKind.AGENT_INSTANCE.plural,
                    dict(body),
                    field_manager=self._field_manager,
                    _request_timeout=self._timeout,
                ),
            )
        except Conflict as exc:
            existing = self.get(ObjectKind.AGENT_INSTANCE, namespace, name)
            if existing is None:  # deleted in between: let the caller retry
                raise
            raise AlreadyExists(f"{what}: already exists", existing) from exc
        return self._to_dict(created)

    def patch_status(
        self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self._call(
            f"patch {kind.plural}/status {namespace}/{name}",
            lambda: self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                kind.plural,
                name,
                {"status": dict(status)},
                field_manager=self._field_manager,
                _content_type=MERGE_PATCH,
                _request_timeout=self._timeout,
            ),
        )

    def post_event(self, event: EventRecord) -> bool:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = _model(
            client.CoreV1Event.from_dict,
            {
                "metadata": {"name": event.name, "namespace": event.involved.namespace},
                "involvedObject": event.involved.as_dict(),
                "type": event.type.value,
                "reason": event.reason,
                "action": event.reason,
                "message": event.message[:EVENT_MESSAGE_MAX],
                "source": {"component": self._field_manager},
                "reportingComponent": self._field_manager,
                "reportingInstance": self._reporting_instance,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            },
        )
        try:
            self._call(
                f"create events {event.involved.namespace}/{event.name}",
                lambda: self._core.create_namespaced_event(
                    event.involved.namespace,
                    body,
                    field_manager=self._field_manager,
                    _request_timeout=self._timeout,
                ),
            )
        except Conflict:
            return False
        return True

    def apply_owned(
        self, kind: ObjectKind, body: Mapping[str, Any], *, likely_absent: bool = False
    ) -> ApplyResult:
        if kind not in APPLICABLE_KINDS:
            raise Invalid(f"apply_owned does not manage {kind.kind}", status=422)
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        existing = None if likely_absent else self.get(kind, namespace, name)
        if existing is None:
            try:
                self._create(kind, namespace, body)
                return ApplyResult.CREATED
            except Conflict:  # taken (or created concurrently): compare with what is there
                existing = self.get(kind, namespace, name)
                if existing is None:
                    raise
        check_controller(kind, existing, body)
        patch = apply_patch(kind, existing, body)
        if patch is None:
            return ApplyResult.UNCHANGED
        if "roleRef" in patch:  # immutable: delete and recreate
            self.delete(kind, namespace, name, uid=str(existing["metadata"]["uid"]))
            self._create(kind, namespace, body)
        else:
            self._patch(kind, namespace, name, patch)
        return ApplyResult.UPDATED

    def delete(self, kind: ObjectKind, namespace: str, name: str, *, uid: str) -> None:
        if kind not in DELETABLE_KINDS:
            raise Invalid(f"delete does not manage {kind.kind}", status=422)
        t = self._timeout
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
        deleters: dict[ObjectKind, Callable[[], Any]] = {
            ObjectKind.SERVICE_ACCOUNT: lambda: self._core.delete_namespaced_service_account(
                name, namespace, body=options, _request_timeout=t
            ),
            ObjectKind.ROLE: lambda: self._rbac.delete_namespaced_role(
                name, namespace, body=options, _request_timeout=t
            ),
            ObjectKind.ROLE_BINDING: lambda: self._rbac.delete_namespaced_role_binding(
                name, namespace, body=options, _request_timeout=t
            ),
            ObjectKind.AGENT_INSTANCE: lambda: self._custom.delete_namespaced_custom_object(
                *(GROUP, VERSION, namespace, Kind.AGENT_INSTANCE.plural, name),
                body=options,
                _request_timeout=t,
            ),
        }
        try:
            self._call(f"delete {kind.plural} {namespace}/{name}", deleters[kind])
        except NotFound:
            logger.debug("%s %s/%s already gone", kind.kind, namespace, name)

    # -- typed create/patch for the IAM kinds -----------------------
    def _create(self, kind: ObjectKind, namespace: str, body: Mapping[str, Any]) -> None:
        fm, t = self._field_manager, self._timeout
        plain = dict(body)
        creators: dict[ObjectKind, Callable[[], Any]] = {
            ObjectKind.SERVICE_ACCOUNT: lambda: self._core.create_namespaced_service_account(
                namespace,
                _model(client.V1ServiceAccount.from_dict, plain),
                field_manager=fm,
                _request_timeout=t,
            ),
            ObjectKind.ROLE: lambda: self._rbac.create_namespaced_role(
                namespace,
                _model(client.V1Role.from_dict, plain),
                field_manager=fm,
                _request_timeout=t,
            ),
            ObjectKind.ROLE_BINDING: lambda: self._rbac.create_namespaced_role_binding(
                namespace,
                _model(client.V1RoleBinding.from_dict, plain),
                field_manager=fm,
                _request_timeout=t,
            ),
        }
        self._call(f"create {kind.plural} {namespace}/{body['metadata']['name']}", creators[kind])

    def _patch(self, kind: ObjectKind, namespace: str, name: str, patch: dict[str, Any]) -> None:
        fm, t, ct = self._field_manager, self._timeout, MERGE_PATCH
        patchers: dict[ObjectKind, Callable[[], Any]] = {
            ObjectKind.SERVICE_ACCOUNT: lambda: self._core.patch_namespaced_service_account(
                name, namespace, patch, field_manager=fm, _content_type=ct, _request_timeout=t
            ),
            ObjectKind.ROLE: lambda: self._rbac.patch_namespaced_role(
                name, namespace, patch, field_manager=fm, _content_type=ct, _request_timeout=t
            ),
            ObjectKind.ROLE_BINDING: lambda: self._rbac.patch_namespaced_role_binding(
                name, namespace, patch, field_manager=fm, _content_type=ct, _request_timeout=t
            ),
        }
        self._call(f"patch {kind.plural} {namespace}/{name}", patchers[kind])
