"""``KubeEffects``: the only door from the pipeline to the Kubernetes API.

Steps never call the ``kubernetes`` client directly. Every effect they have
on the cluster -- read an object, create the default AgentInstance, patch a
status, post an Event, create-or-update the IAM objects of an instance --
goes through this small protocol. That keeps the steps testable without a
cluster (:class:`~.kube_recording.RecordingKubeEffects`), keeps the
``fieldManager`` and error mapping in one place
(:class:`~.kube_api.ApiKubeEffects`), and makes the full list of the
operator's cluster permissions readable in one screen.

API failures surface as :class:`KubeError` subclasses carrying
``retryable``: conflicts, throttling and server errors can succeed later;
403/404/422 will not without a change by someone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from stigmer_operator.api.kinds import API_VERSION, Kind

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MERGE_PATCH = "application/merge-patch+json"


class ObjectKind(enum.Enum):
    """Kinds the operator reads or writes, with their API coordinates."""

    AGENT = (API_VERSION, "Agent", "agents")
    AGENT_INSTANCE = (API_VERSION, "AgentInstance", "agentinstances")
    SERVICE_ACCOUNT = ("v1", "ServiceAccount", "serviceaccounts")
    ROLE = ("rbac.authorization.k8s.io/v1", "Role", "roles")
    ROLE_BINDING = ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings")
    #: Read as metadata only (:meth:`KubeEffects.get_metadata`): their labels and annotations.
    NAMESPACE = ("v1", "Namespace", "namespaces")
    SECRET = ("v1", "Secret", "secrets")
    CONFIG_MAP = ("v1", "ConfigMap", "configmaps")

    @property
    def api_version(self) -> str:
        return self.value[0]

    @property
    def kind(self) -> str:
        return self.value[1]

    @property
    def plural(self) -> str:
        return self.value[2]

    @classmethod
    def of(cls, kind: Kind) -> ObjectKind:
        return cls.AGENT if kind is Kind.AGENT else cls.AGENT_INSTANCE


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class ApplyResult(enum.StrEnum):
    """What ``apply_owned`` had to do."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """An Event's ``involvedObject``."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def as_dict(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
        }


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A ``core/v1`` Event to post.

    ``name`` is deterministic per thing reported, so posting the same Event
    twice (a re-run after a crash) is refused by the API as AlreadyExists
    instead of showing up twice in ``kubectl describe``.
    """

    name: str
    involved: ObjectRef
    type: EventType
    reason: str
    message: str


# -- errors ------------------------------------------------------------------
class KubeError(Exception):
    """A Kubernetes API call failed."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AlreadyExists(KubeError):
    """Create refused: the object exists (or exists under another controller)."""

    def __init__(self, message: str, existing: Mapping[str, Any]) -> None:
        super().__init__(message, status=409)
        self.existing = existing


class NotFound(KubeError):
    """The object (or its namespace) does not exist."""


class Conflict(KubeError):
    """Optimistic-concurrency conflict; re-reading and retrying helps."""

    retryable = True


class ApiForbidden(KubeError):
    """The operator's ServiceAccount lacks a permission (fix the RBAC)."""


class NamespaceTerminating(ApiForbidden):
    """Create refused: the namespace is being deleted, and everything in it with it.

    Final: a terminating namespace never accepts new objects again, and the
    object being reconciled is about to be deleted by the namespace
    controller. Nothing is wrong with the operator's permissions.
    """


class Invalid(KubeError):
    """The API refused the request body (400/422)."""


class ServerError(KubeError):
    """5xx, throttling (429) or a network failure."""

    retryable = True


# -- the protocol ------------------------------------------------------------
@runtime_checkable
class KubeEffects(Protocol):
    """Every Kubernetes-facing effect of the pipeline."""

    def get(self, kind: ObjectKind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as JSON-like dict (camelCase), or ``None`` if absent."""
        ...

    def get_metadata(self, kind: ObjectKind, namespace: str, name: str) -> dict[str, Any] | None:
        """Only ``metadata`` of the object (``PartialObjectMetadata``), or ``None`` if absent.

        For Secrets and ConfigMaps the operator needs labels and annotations,
        never the data; a Namespace is named with ``namespace=""``.
        """
        ...

    def create_agent_instance(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create an AgentInstance; raises :class:`AlreadyExists` with the existing object."""
        ...

    def patch_status(
        self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """JSON merge patch ``{"status": status}`` on the ``/status`` subresource."""
        ...

    def post_event(self, event: EventRecord) -> bool:
        """Post an Event; ``False`` when an Event of that name already exists."""
        ...

    def apply_owned(
        self, kind: ObjectKind, body: Mapping[str, Any], *, likely_absent: bool = False
    ) -> ApplyResult:
        """Create-or-update a ServiceAccount, Role or RoleBinding we control.

        ``body`` must carry a controller ownerReference. An existing object
        controlled by anything else is not touched: :class:`AlreadyExists`
        carries it, and the caller decides. Labels are merged; ``rules``,
        ``subjects`` and ``roleRef`` are made equal to ``body``.

        ``likely_absent`` (the owner was just created) only changes the
        order of requests: create first and read only if the name is taken,
        instead of a read before every create. The outcome is the same.
        """
        ...

    def delete(self, kind: ObjectKind, namespace: str, name: str, *, uid: str) -> None:
        """Delete an object of :data:`DELETABLE_KINDS`, but only the one with ``uid``.

        The operator deletes only what a former object of the same name left
        behind for the garbage collector (IAM objects of a former instance,
        the default instance of a former Agent).

        The uid is a precondition checked by the API server: if the name
        now belongs to another object (deleted and re-created in between),
        nothing is deleted and :class:`Conflict` is raised. An object
        already gone counts as deleted.
        """
        ...


# -- shared semantics of apply_owned (used by both implementations) ---------
_MANAGED_FIELDS: dict[ObjectKind, tuple[str, ...]] = {
    ObjectKind.SERVICE_ACCOUNT: (),
    ObjectKind.ROLE: ("rules",),
    ObjectKind.ROLE_BINDING: ("subjects", "roleRef"),
}
APPLICABLE_KINDS = frozenset(_MANAGED_FIELDS)
#: What :meth:`KubeEffects.delete` deletes: the objects the operator creates.
DELETABLE_KINDS = APPLICABLE_KINDS | {ObjectKind.AGENT_INSTANCE}


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    metadata = obj.get("metadata") or {}
    for ref in metadata.get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    ref = controller_ref(obj)
    return str(ref.get("uid")) if ref is not None else None


def _normalized(value: Any) -> Any:
    """Drop keys whose value is empty, so API defaults compare equal to omissions."""
    if isinstance(value, Mapping):
        return {k: _normalized(v) for k, v in value.items() if v not in (None, [], {}, "")}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    return value


def apply_patch(
    kind: ObjectKind, existing: Mapping[str, Any], desired: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The merge patch that makes ``existing`` match ``desired``; ``None`` if it does.

    ``roleRef`` is immutable in the API: a differing one cannot be patched;
    callers see it in the patch and recreate the object instead.
    """
    patch: dict[str, Any] = {}
    want_labels = dict((desired.get("metadata") or {}).get("labels") or {})
    have_labels = dict((existing.get("metadata") or {}).get("labels") or {})
    missing = {k: v for k, v in want_labels.items() if have_labels.get(k) != v}
    metadata: dict[str, Any] = {}
    if missing:
        metadata["labels"] = missing
    want_ref = controller_ref(desired)
    have_refs = list((existing.get("metadata") or {}).get("ownerReferences") or [])
    if want_ref is not None and controller_ref(existing) is None:
        metadata["ownerReferences"] = [*have_refs, dict(want_ref)]
    if metadata:
        patch["metadata"] = metadata
    for field_name in _MANAGED_FIELDS[kind]:
        # `or None`: the API omits an empty `rules` list that we send as [].
        want = _normalized(desired.get(field_name)) or None
        if want != (_normalized(existing.get(field_name)) or None):
            patch[field_name] = desired.get(field_name)
    return patch or None


def already_applied(
    kind: ObjectKind, existing: Mapping[str, Any], desired: Mapping[str, Any]
) -> bool:
    """Would ``apply_owned(kind, desired)`` leave ``existing`` as it is, without an error?"""
    try:
        check_controller(kind, existing, desired)
    except AlreadyExists:
        return False
    return apply_patch(kind, existing, desired) is None


def check_controller(
    kind: ObjectKind, existing: Mapping[str, Any], desired: Mapping[str, Any]
) -> None:
    """Raise :class:`AlreadyExists` unless ``existing`` is ours or unclaimed by a controller.

    An object with no controller at all is only adopted if it carries our
    ``managed-by`` label (e.g. created by us before its owner reference was
    lost); anything else belongs to a human and is left alone.
    """
    want = controller_uid(desired)
    have = controller_uid(existing)
    if have == want:
        return
    metadata = existing.get("metadata") or {}
    want_label = ((desired.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL)
    have_label = (metadata.get("labels") or {}).get(MANAGED_BY_LABEL)
    if have is None and want_label is not None and have_label == want_label:
        return
    name = metadata.get("name", "?")
    owner = controller_ref(existing)
    held_by = (
        f"controlled by {owner.get('kind')} {owner.get('name')} (uid {owner.get('uid')})"
        if owner is not None
        else "not managed by stigmer-operator"
    )
    raise AlreadyExists(f"{kind.kind} {name} already exists, {held_by}", existing)
