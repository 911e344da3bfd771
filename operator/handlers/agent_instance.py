"""The AgentInstance lifecycle, top to bottom.

=================================  =========================================
What happens                       What the operator does
=================================  =========================================
instance created (by a user, or    agentinstance-create pipeline: validate,
by the Agent's default-instance    authorize + resolve agentRef, slug,
step)                              duplicate check, build, persist, IAM
                                   (ServiceAccount, Role, RoleBinding), publish
instance edited                    agentinstance-update pipeline
operator (re)started               agentinstance-resume pipeline
instance deleted                   agentinstance-delete pipeline; the garbage
                                   collector removes its IAM objects
its Agent does not exist yet       Ready=False, reason AgentNotFound, no retry
                                   loop: the Agent's handler re-runs it when
                                   the Agent appears (see ``agent.py``)
=================================  =========================================
"""

from __future__ import annotations

from typing import Any

import kopf

from stigmer_operator.api.kinds import GROUP, VERSION, Kind
from stigmer_operator.handlers.common import forget, is_deletion, reconcile, reconcile_quietly
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.pipeline.context import Operation

INSTANCES = (GROUP, VERSION, Kind.AGENT_INSTANCE.plural)


@kopf.on.create(*INSTANCES)
def instance_created(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    reconcile(Kind.AGENT_INSTANCE, Operation.CREATE, body, memo, retry)


@kopf.on.update(*INSTANCES)
def instance_updated(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    reconcile(Kind.AGENT_INSTANCE, Operation.UPDATE, body, memo, retry)


@kopf.on.resume(*INSTANCES)
def instance_resumed(body: kopf.Body, memo: OperatorMemo, retry: int, **_: Any) -> None:
    reconcile(Kind.AGENT_INSTANCE, Operation.RESUME, body, memo, retry)


@kopf.on.event(*INSTANCES, when=is_deletion)
def instance_deleted(body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
    reconcile_quietly(Kind.AGENT_INSTANCE, Operation.DELETE, body, memo)
    forget(Kind.AGENT_INSTANCE, body, memo)
