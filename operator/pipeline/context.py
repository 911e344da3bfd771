"""The request context every step reads and writes.

One ``RequestContext`` is built per handler call. It keeps apart what a step
may change and what it may not:

* ``body`` -- the object as read from the API, deeply frozen (see
  :mod:`.frozen`): the input never changes under a step's feet.
* ``new_state`` -- the protobuf message the steps build and persist.
* ``values`` -- a typed bag for handing results from one step to a later
  one. Keys are :class:`Key` objects declared once in :mod:`.keys`, so a
  typo is an ``AttributeError`` at import time and mypy knows each value's
  type (the Go seed's ``map[string]any`` metadata bag had neither).
* ``outcomes`` -- what each step did and how long it took.
* ``status`` -- the status document TransformResponse builds and
  SendResponse writes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from typing import Any, Generic, NamedTuple, TypeVar, cast

from stigmer_operator import metrics
from stigmer_operator.api.kinds import Kind, Resource
from stigmer_operator.api.v1 import agent_instance_pb2, agent_pb2
from stigmer_operator.pipeline.deps import Deps
from stigmer_operator.pipeline.frozen import FrozenObject, freeze_object, mapping_at, str_at
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.listing import UNKNOWN, Listed

V = TypeVar("V")
M_co = TypeVar("M_co", bound=Resource, covariant=True)


class Operation(enum.StrEnum):
    """Why the pipeline runs: the kopf cause it serves."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESUME = "resume"


class Outcome(enum.StrEnum):
    """What a step did."""

    #: The step changed something (store, cluster) or computed its result.
    SUCCEEDED = "succeeded"
    #: The step found its effect already in place (idempotent re-run).
    UNCHANGED = "unchanged"
    FAILED = "failed"


class StepOutcome(NamedTuple):
    """One step's result; a named tuple, as the runner makes one per step on every run."""

    step: str
    outcome: Outcome
    #: Seconds, from ``time.perf_counter``.
    duration: float


class Key(Generic[V]):
    """A typed key of :class:`Values`; compare by identity."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


class MissingValueError(LookupError):
    """A step asked for a value no earlier step put: a pipeline ordering bug."""


class Values:
    """The typed inter-step bag."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[Key[Any], Any] = {}

    def put(self, key: Key[V], value: V) -> None:
        self._items[key] = value

    def get(self, key: Key[V]) -> V:
        """The value for ``key``; raises if no earlier step produced it."""
        try:
            return cast(V, self._items[key])
        except KeyError:
            raise MissingValueError(
                f"{key.name} was not set by an earlier step (pipeline order?)"
            ) from None

    def find(self, key: Key[V]) -> V | None:
        """The value for ``key``, or ``None`` when absent."""
        return cast("V | None", self._items.get(key))

    def __contains__(self, key: object) -> bool:
        return key in self._items


class RequestContext(Generic[M_co]):
    """Everything one pipeline run knows; ``M_co`` is the protobuf message type."""

    __slots__ = (
        "_generation",
        "_held",
        "_metadata",
        "_name",
        "_namespace",
        "_new_state",
        "_uid",
        "_unchanged",
        "body",
        "deps",
        "kind",
        "operation",
        "outcomes",
        "status",
        "values",
    )

    def __init__(
        self,
        kind: Kind,
        operation: Operation,
        body: Mapping[str, Any],
        deps: Deps,
        new_state: M_co,
    ) -> None:
        self.kind = kind
        self.operation = operation
        self.body: FrozenObject = freeze_object(body)
        # Read once: steps ask for these many times per run.
        self._metadata = mapping_at(self.body, "metadata")
        self._name = str_at(self._metadata, "name")
        self._namespace = str_at(self._metadata, "namespace")
        self._uid = str_at(self._metadata, "uid")
        generation = self._metadata.get("generation")
        self._generation = generation if isinstance(generation, int) else 0
        self.deps = deps
        self._new_state = new_state
        self.values = Values()
        self.outcomes: list[StepOutcome] = []
        self.status: dict[str, Any] = {}
        self._unchanged = False
        self._held: ExitStack | None = None

    # -- constructors ------------------------------------------------------
    @staticmethod
    def for_agent(
        body: Mapping[str, Any], operation: Operation, deps: Deps
    ) -> RequestContext[agent_pb2.Agent]:
        return RequestContext(Kind.AGENT, operation, body, deps, agent_pb2.Agent())

    @staticmethod
    def for_agent_instance(
        body: Mapping[str, Any], operation: Operation, deps: Deps
    ) -> RequestContext[agent_instance_pb2.AgentInstance]:
        return RequestContext(
            Kind.AGENT_INSTANCE, operation, body, deps, agent_instance_pb2.AgentInstance()
        )

    @staticmethod
    def for_kind(
        kind: Kind, body: Mapping[str, Any], operation: Operation, deps: Deps
    ) -> RequestContext[Resource]:
        if kind is Kind.AGENT:
            return RequestContext.for_agent(body, operation, deps)
        return RequestContext.for_agent_instance(body, operation, deps)

    # -- state -------------------------------------------------------------
    @property
    def new_state(self) -> M_co:
        """The message being built; steps change it in place, never replace it."""
        return self._new_state

    def mark_unchanged(self) -> None:
        """Tell the pipeline the running step found its effect already in place."""
        self._unchanged = True

    def hold(self, resource: AbstractContextManager[Any]) -> None:
        """Enter ``resource`` (a lock) and keep it until the pipeline run ends."""
        if self._held is None:
            self._held = ExitStack()
        self._held.enter_context(resource)

    def release(self) -> None:
        """Exit what :meth:`hold` entered (the Pipeline calls this when a run ends)."""
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def listed(self, kind: ObjectKind, name: str) -> Listed:
        """What the start-up listing says about ``name`` in this object's namespace.

        Only a resume is answered, each name once (see :mod:`.listing`); any
        other run reads the API.
        """
        if self.operation is not Operation.RESUME:
            return UNKNOWN
        listed = self.deps.listing.take(kind, self._namespace, name)
        metrics.STARTUP_LISTING.labels(kind.kind, listed.seen.value).inc()
        return listed

    def take_unchanged(self) -> bool:
        """Read and reset the flag set by :meth:`mark_unchanged` (for the Pipeline)."""
        flag, self._unchanged = self._unchanged, False
        return flag

    # -- the input object --------------------------------------------------
    @property
    def metadata(self) -> FrozenObject:
        return self._metadata

    @property
    def name(self) -> str:
        return self._name

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def uid(self) -> str:
        return self._uid

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def labels(self) -> FrozenObject:
        return mapping_at(self._metadata, "labels")

    @property
    def annotations(self) -> FrozenObject:
        return mapping_at(self._metadata, "annotations")

    @property
    def spec(self) -> FrozenObject:
        return mapping_at(self.body, "spec")

    @property
    def current_status(self) -> FrozenObject:
        """The object's status as read (what SendResponse compares against)."""
        return mapping_at(self.body, "status")

    def __repr__(self) -> str:
        return (
            f"RequestContext({self.kind.value} {self.namespace}/{self.name}, "
            f"{self.operation.value})"
        )
