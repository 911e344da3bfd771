"""Who refers to whom: the cross-object look-ups the handlers need, kept in process.

Two questions come up when an object changes:

* an Agent appears, changes or goes: which AgentInstances reference it, and
  which of those are waiting for it (refused with ``AgentNotFound``)?
* an AgentInstance goes: which Agent could not create its default instance
  because this one squatted the name (``DefaultInstanceConflict``)?
* an Agent goes or changes: which Agents were refused with ``DuplicateSlug``
  because of it (the slug may be free now)? Known from this process's own
  refusals only: after a restart every Agent's resume re-checks anyway.

kopf's indexes (``@kopf.index``) would answer both, but kopf holds *every*
handler until every index is populated and tracks that with one toggle per
object: each new toggle wakes every waiting per-object worker, and each of
them re-checks all toggles. A restarted operator facing 20,000 objects did
not get through that start-up wait in ten minutes. These maps are fed from
the watch instead (the watch-event observers in :mod:`.agent` and
:mod:`.agent_instance`, run on the event loop; :mod:`.observers`) and never
hold a handler back.

What that costs: right after a restart an Agent's resume may run before
the instances that wait for it were seen, and wake nobody. Nothing is lost:
every instance is resumed at start too, and finds the Agent then. While
running, the maps see an instance's status at the same moment kopf's index
would have.

Every record is keyed by name but remembers the uid of the object that
wrote it: a name can be deleted and applied again, and kopf runs each uid's
events on a worker of its own, so the old object's DELETED event can be
handled after the new one was seen or refused. That event forgets only what
the old object recorded; dropping the new one's refusal lost the wake-up it
was waiting for, and the Agent stayed refused after its slug was free.

The sync handlers read these maps from executor threads while the event loop
writes them, so every access holds one lock and readers get copies.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.conditions import ConditionType, find_condition
from stigmer_operator.pipeline.errors import PipelineError, Reason
from stigmer_operator.pipeline.meta import conditions_of
from stigmer_operator.pipeline.naming import default_instance_name

#: (namespace, name) of an object.
ObjectName = tuple[str, str]


class Referrer(NamedTuple):
    """An AgentInstance that references an Agent."""

    namespace: str
    name: str
    waiting: bool  # refused because the Agent did not exist


@dataclass
class References:
    """Instances by the Agent they reference; Agents by the instance blocking them."""

    _guard: threading.Lock = field(default_factory=threading.Lock)
    _referrers: dict[ObjectName, dict[ObjectName, bool]] = field(default_factory=dict)
    _target: dict[ObjectName, ObjectName] = field(default_factory=dict)
    _blocked: dict[ObjectName, set[str]] = field(default_factory=dict)
    _squatted: dict[ObjectName, ObjectName] = field(default_factory=dict)
    #: The uid of the instance / Agent whose event wrote ``_target`` / ``_squatted``.
    _instance_uid: dict[ObjectName, str] = field(default_factory=dict)
    _agent_uid: dict[ObjectName, str] = field(default_factory=dict)
    #: Instances this process itself saw refused with AgentNotFound -> their uid.
    _known_waiting: dict[ObjectName, str] = field(default_factory=dict)
    #: Agents this process refused with DuplicateSlug -> (their uid, the Agent holding the slug).
    _duplicates: dict[ObjectName, tuple[str, ObjectName]] = field(default_factory=dict)

    def instance_seen(self, body: Mapping[str, Any]) -> None:
        """Record (or update) an instance's agentRef and whether it waits for that Agent."""
        instance = name_of(body)
        spec = body.get("spec") or {}
        ref = spec.get("agentRef") or {}
        target = (str(ref.get("namespace") or instance[0]), str(ref.get("name", "")))
        waiting = ready_reason(body) == Reason.AGENT_NOT_FOUND.value
        with self._guard:
            self._unlink_instance(instance)
            self._target[instance] = target
            self._instance_uid[instance] = uid_of(body)
            self._referrers.setdefault(target, {})[instance] = waiting

    def instance_gone(self, body: Mapping[str, Any]) -> None:
        """Forget what this instance recorded (not what a newer one of its name did)."""
        instance, uid = name_of(body), uid_of(body)
        with self._guard:
            if _same(self._instance_uid.get(instance), uid):
                self._unlink_instance(instance)
            if _same(self._known_waiting.get(instance), uid):
                self._known_waiting.pop(instance, None)

    def outcome(self, kind: Kind, body: Mapping[str, Any], error: PipelineError | None) -> None:
        """Record this process's own verdict on an object (``None``: it succeeded).

        The watch may deliver a refusal only after the object it waits for
        changed; what this process knows counts as well.
        """
        reason = error.reason if error is not None else None
        if kind is Kind.AGENT_INSTANCE:
            self.instance_waiting(name_of(body), reason is Reason.AGENT_NOT_FOUND, uid_of(body))
            return
        with self._guard:
            if reason is Reason.DUPLICATE_SLUG and error is not None and error.blocker:
                self._duplicates[name_of(body)] = (uid_of(body), error.blocker)
            else:
                self._duplicates.pop(name_of(body), None)

    def knows_refusal(self, agent: ObjectName) -> bool:
        """Whether this process refused ``agent`` with DuplicateSlug (and will wake it)."""
        with self._guard:
            return agent in self._duplicates

    def duplicates_of(self, holder: ObjectName) -> list[ObjectName]:
        """The Agents refused with DuplicateSlug because ``holder`` had the slug."""
        with self._guard:
            return sorted(name for name, (_, by) in self._duplicates.items() if by == holder)

    def instance_waiting(self, instance: ObjectName, waiting: bool, uid: str = "") -> None:
        """Record this process's own verdict: does ``instance`` wait for its Agent?

        The watch may deliver the ``AgentNotFound`` status only after the
        Agent appeared; a referrer counts as waiting if either says so.
        """
        with self._guard:
            if waiting:
                self._known_waiting[instance] = uid
            else:
                self._known_waiting.pop(instance, None)

    def agent_seen(self, body: Mapping[str, Any]) -> None:
        """Record whether this Agent is blocked by an instance squatting its default name."""
        agent = name_of(body)
        with self._guard:
            self._unlink_agent(agent)
            if ready_reason(body) != Reason.DEFAULT_INSTANCE_CONFLICT.value:
                return
            squatted = (agent[0], default_instance_name(agent[1]))
            self._squatted[agent] = squatted
            self._agent_uid[agent] = uid_of(body)
            self._blocked.setdefault(squatted, set()).add(agent[1])

    def agent_gone(self, body: Mapping[str, Any]) -> None:
        """Forget what this Agent recorded (not what a newer one of its name did)."""
        agent, uid = name_of(body), uid_of(body)
        with self._guard:
            if _same(self._agent_uid.get(agent), uid):
                self._unlink_agent(agent)
            if _same(self._duplicates.get(agent, ("", agent))[0], uid):
                self._duplicates.pop(agent, None)

    def referrers(self, agent: ObjectName) -> list[Referrer]:
        """The instances that reference ``agent`` (a copy, safe to iterate)."""
        with self._guard:
            found = self._referrers.get(agent, {})
            known = self._known_waiting
            return [
                Referrer(namespace, name, waiting or (namespace, name) in known)
                for (namespace, name), waiting in found.items()
            ]

    def blocked_by(self, instance: ObjectName) -> list[str]:
        """Names of the Agents whose default instance name ``instance`` squats."""
        with self._guard:
            return sorted(self._blocked.get(instance, ()))

    def _unlink_instance(self, instance: ObjectName) -> None:
        self._instance_uid.pop(instance, None)
        target = self._target.pop(instance, None)
        if target is None:
            return
        referrers = self._referrers.get(target, {})
        referrers.pop(instance, None)
        if not referrers:
            self._referrers.pop(target, None)

    def _unlink_agent(self, agent: ObjectName) -> None:
        self._agent_uid.pop(agent, None)
        squatted = self._squatted.pop(agent, None)
        if squatted is None:
            return
        blocked = self._blocked.get(squatted, set())
        blocked.discard(agent[1])
        if not blocked:
            self._blocked.pop(squatted, None)


def name_of(body: Mapping[str, Any]) -> ObjectName:
    metadata = body.get("metadata") or {}
    return (str(metadata.get("namespace", "")), str(metadata.get("name", "")))


def uid_of(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("uid") or "")


def _same(recorded: str | None, uid: str) -> bool:
    """Whether a record written by ``recorded`` belongs to the object with ``uid``.

    Unknown on either side (a body without a uid) counts as the same object.
    """
    return not recorded or not uid or recorded == uid


def ready_reason(body: Mapping[str, Any]) -> str | None:
    """The reason of the object's ``Ready`` condition, if it has one."""
    ready = find_condition(conditions_of(body), ConditionType.READY) or {}
    reason = ready.get("reason")
    return str(reason) if reason is not None else None
