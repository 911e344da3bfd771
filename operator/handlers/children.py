"""The handlers take over the default instance an Agent's run creates.

Left to itself, a new Agent took two hops to be Ready: its run created the
default instance and said ``DefaultInstanceNotReady``; kopf then called the
instance's create handler, patched its own bookkeeping annotation onto it,
and the instance turning Ready re-ran the Agent, which read the Agent and
the instance again to say ``Ready``. :class:`HandlerChildren` is the
pipelines' ``Deps.children``:

* the instance is created carrying kopf's diff-base annotation, exactly as
  kopf would write it after handling it (:func:`.startup.diffbase_storage`),
  so kopf sees a handled object: no create cause, no handler call, no patch;
* the Agent's run reconciles it right away (``ReconcileDefaultInstance``):
  the AgentInstance create pipeline under the instance's lock, remembered
  as reconciled (a create kopf still calls is skipped), failures reported
  on the instance and retried like every run kopf does not retry.

If the operator stops between the create and the reconcile, the instance
has no status; its resume at the next start -- or the Agent's next run,
which reconciles any default instance without status -- completes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import kopf

from stigmer_operator.api.kinds import Kind
from stigmer_operator.handlers.common import reconcile_created
from stigmer_operator.handlers.startup import diffbase_storage

if TYPE_CHECKING:
    from stigmer_operator.handlers.memo import OperatorMemo


@dataclass(frozen=True, slots=True)
class HandlerChildren:
    """``Deps.children`` of the operator process (see the module docstring)."""

    memo: OperatorMemo

    def annotations(self, body: Mapping[str, Any]) -> Mapping[str, str]:
        storage = diffbase_storage()
        kopf_body = kopf.Body(cast(kopf.RawBody, dict(body)))
        patch = kopf.Patch()
        storage.store(body=kopf_body, patch=patch, essence=storage.build(body=kopf_body))
        return {key: str(value) for key, value in patch.metadata.annotations.items()}

    def reconcile(self, kind: Kind, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return reconcile_created(kind, body, self.memo)
