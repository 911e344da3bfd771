"""An in-memory ``KubeEffects`` for unit tests and the benchmark.

It keeps objects in a dict and records every call, so a test can assert
"exactly one Event", "no status patch" or "the Role names exactly these
Secrets" without a cluster, and the benchmark can time the steps without API
round trips. Uids are deterministic (a counter), so two runs of the same
scenario can be compared object for object. It mimics the API semantics the
steps rely on (AlreadyExists on create, 404 on a missing status target,
merge-patch on ``/status``, uids, ``resourceVersion``), not the whole
server; end-to-end tests use the real control plane and never this class.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, NamedTuple

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.kube import (
    APPLICABLE_KINDS,
    DELETABLE_KINDS,
    AlreadyExists,
    ApplyResult,
    Conflict,
    EventRecord,
    Invalid,
    KubeError,
    NotFound,
    ObjectKind,
    apply_patch,
    check_controller,
)

ObjectKey = tuple[ObjectKind, str, str]
_LEAVES = frozenset({str, int, bool, float, type(None)})


class Call(NamedTuple):
    """One recorded call: method name and the target (kind, namespace, name)."""

    method: str
    kind: str
    namespace: str
    name: str


#: ``uuid.UUID(int=n, version=4)``: the version and RFC 4122 variant bits.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def uuid4_of(number: int) -> str:
    """``str(uuid.UUID(int=number, version=4))``, without building the UUID object."""
    if not 0 <= number < 1 << 128:
        raise ValueError("int is out of range (need a 128-bit value)")
    digits = f"{number & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def clone(value: Any) -> Any:
    """A deep copy of a JSON-like value (several times faster than ``copy.deepcopy``)."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict:
        return {k: v if type(v) in _LEAVES else clone(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _LEAVES else clone(v) for v in value]
    if isinstance(value, Mapping):
        return {k: clone(v) for k, v in value.items()}
    return value


def clone_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`clone` for a top-level object."""
    copied: dict[str, Any] = clone(obj)
    return copied


def _is_mapping(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        return True
    return kind not in _LEAVES and kind is not list and isinstance(value, Mapping)


def merge_patch(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386 JSON merge patch, in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif _is_mapping(value) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = clone(value)


class RecordingKubeEffects:
    """Fake cluster: objects by (kind, namespace, name), plus a call log."""

    def __init__(self) -> None:
        self.objects: dict[ObjectKey, dict[str, Any]] = {}
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[Call] = []
        #: The ``apply_owned`` calls made with ``likely_absent=True``.
        self.created_first: list[Call] = []
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)
        self._failures: dict[str, list[KubeError]] = {}

    # -- test helpers --------------------------------------------------------
    def put(self, kind: ObjectKind, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as if someone else created it (assigns uid etc.)."""
        stored = clone_object(obj)
        metadata = stored.setdefault("metadata", {})
        if "uid" not in metadata:
            metadata["uid"] = uuid4_of(next(self._uids))
        metadata.setdefault("generation", 1)
        metadata["resourceVersion"] = str(next(self._versions))
        stored.setdefault("apiVersion", kind.api_version)
        stored.setdefault("kind", kind.kind)
        self.objects[(kind, metadata.get("namespace", ""), metadata["name"])] = stored
        return clone_object(stored)

    def remove(self, kind: ObjectKind, namespace: str, name: str) -> None:
        self.objects.pop((kind, namespace, name), None)

    def fail_next(self, method: str, error: KubeError) -> None:
        """Make the next call of ``method`` raise ``error`` (fault injection)."""
        self._failures.setdefault(method, []).append(error)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def events_for(self, name: str, reason: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events.values()
            if e["involvedObject"]["name"] == name and (reason is None or e["reason"] == reason)
        ]

    def _record(self, method: str, kind: str, namespace: str, name: str) -> None:
        self.calls.append(Call(method, kind, namespace, name))
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    # -- KubeEffects ---------------------------------------------------------
    def get(self, kind: ObjectKind, namespace: str, name: str) -> dict[str, Any] | None:
        self._record("get", kind.kind, namespace, name)
        found = self.objects.get((kind, namespace, name))
        return clone_object(found) if found is not None else None

    def get_metadata(self, kind: ObjectKind, namespace: str, name: str) -> dict[str, Any] | None:
        self._record("get_metadata", kind.kind, namespace, name)
        found = self.objects.get((kind, namespace, name))
        return clone(found.get("metadata") or {}) if found is not None else None

    def create_agent_instance(self, body: Mapping[str, Any]) -> dict[str, Any]:
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        self._record("create_agent_instance", "AgentInstance", namespace, name)
        existing = self.objects.get((ObjectKind.AGENT_INSTANCE, namespace, name))
        if existing is not None:
            raise AlreadyExists(f"agentinstances {name!r} already exists", clone_object(existing))
        return self.put(ObjectKind.AGENT_INSTANCE, body)

    def patch_status(
        self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self._record("patch_status", kind.value, namespace, name)
        obj = self.objects.get((ObjectKind.of(kind), namespace, name))
        if obj is None:
            raise NotFound(f"{kind.plural} {name!r} not found", status=404)
        merge_patch(obj.setdefault("status", {}), status)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))

    def post_event(self, event: EventRecord) -> bool:
        namespace = event.involved.namespace
        self._record("post_event", "Event", namespace, event.name)
        if (namespace, event.name) in self.events:
            return False
        self.events[(namespace, event.name)] = {
            "metadata": {"name": event.name, "namespace": namespace},
            "involvedObject": event.involved.as_dict(),
            "type": event.type.value,
            "reason": event.reason,
            "message": event.message,
        }
        return True

    def apply_owned(
        self, kind: ObjectKind, body: Mapping[str, Any], *, likely_absent: bool = False
    ) -> ApplyResult:
        if kind not in APPLICABLE_KINDS:
            raise Invalid(f"apply_owned does not manage {kind.kind}", status=422)
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        self._record("apply_owned", kind.kind, namespace, name)
        if likely_absent:
            self.created_first.append(self.calls[-1])
        existing = self.objects.get((kind, namespace, name))
        if existing is None:
            self.put(kind, body)
            return ApplyResult.CREATED
        check_controller(kind, existing, body)
        patch = apply_patch(kind, existing, body)
        if patch is None:
            return ApplyResult.UNCHANGED
        if "roleRef" in patch:  # immutable in the API: recreate
            self.put(kind, body)
            return ApplyResult.UPDATED
        merge_patch(existing, patch)
        existing["metadata"]["resourceVersion"] = str(next(self._versions))
        return ApplyResult.UPDATED

    def delete(self, kind: ObjectKind, namespace: str, name: str, *, uid: str) -> None:
        if kind not in DELETABLE_KINDS:
            raise Invalid(f"delete does not manage {kind.kind}", status=422)
        self._record("delete", kind.kind, namespace, name)
        existing = self.objects.get((kind, namespace, name))
        if existing is None:
            return
        if existing["metadata"].get("uid") != uid:
            raise Conflict(
                f"{kind.plural} {name!r}: precondition failed: uid {uid} is not the object's",
                status=409,
            )
        del self.objects[(kind, namespace, name)]
