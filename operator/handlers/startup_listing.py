"""At start-up, list the operator's own objects once instead of reading them per resume.

kopf runs every ``on.startup`` handler to its end before it starts
watching, so this listing is complete before the first resume asks it
(:mod:`stigmer_operator.pipeline.listing` says what the resumes may take
from it and why that is safe). Listed, with paginated LISTs and by label
so that nothing else is fetched:

* ServiceAccounts, Roles and RoleBindings labelled ``managed-by`` the
  operator (each AgentInstance has one of each);
* default AgentInstances (the one each Agent has).

Cluster-wide when the operator watches every namespace or namespace
globs; otherwise once per watched namespace, which the chart's namespaced
RBAC allows (``list`` on these kinds in each). A listing that fails -- no
``list`` right, the API busy -- is logged and skipped: those resumes read
their objects one by one, as without a listing. The listing is dropped
when the resumes at start stop asking it (``LISTING_TTL`` seconds at the
latest), so its memory is given back when the start-up phase is over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
import kubernetes
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from stigmer_operator.api.kinds import DEFAULT_INSTANCE_LABEL, GROUP, VERSION, Kind
from stigmer_operator.handlers.common import rerun
from stigmer_operator.handlers.memo import OperatorMemo
from stigmer_operator.kubeclient import PAGE_REQUEST_TIMEOUT, list_pages
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.listing import (
    ALL_NAMESPACES,
    LISTING_TTL,
    Controller,
    StartupListing,
)
from stigmer_operator.pipeline.meta import MANAGED_BY
from stigmer_operator.settings import has_globs
from stigmer_operator.sweep import watched

logger = logging.getLogger(__name__)

#: What is listed, and the label selector that picks the operator's own objects.
LISTED: Mapping[ObjectKind, str] = {
    ObjectKind.SERVICE_ACCOUNT: f"{MANAGED_BY[0]}={MANAGED_BY[1]}",
    ObjectKind.ROLE: f"{MANAGED_BY[0]}={MANAGED_BY[1]}",
    ObjectKind.ROLE_BINDING: f"{MANAGED_BY[0]}={MANAGED_BY[1]}",
    ObjectKind.AGENT_INSTANCE: f"{DEFAULT_INSTANCE_LABEL}=true",
}
#: Objects per page: bounds the size of one response.
PAGE_SIZE = 500
#: LISTs at once (each holds one page of whole objects while it is trimmed).
PARALLEL_LISTS = 4

#: Seconds between checks whether the start-up phase is over.
EXPIRY_CHECK_SECONDS = 1.0

#: One page: ``(label_selector, continue_token) -> raw response``.
SelectorPageReader = Callable[[str, str | None], Any]


@kopf.on.startup()
def list_own_objects(memo: OperatorMemo, **_: Any) -> None:
    """Fill ``memo.deps.listing`` before the resumes start; drop it when they are over."""
    listing = memo.deps.listing
    started = time.monotonic()
    listed = load(listing, memo.api_client, memo.settings.namespaces)
    logger.info(
        "start-up listing: %d objects the operator made, in %.1f s; resumes use it for %.0f s "
        "at most",
        listed,
        time.monotonic() - started,
        LISTING_TTL,
    )
    threading.Thread(
        target=_drop_when_over, args=(memo,), name="startup-listing", daemon=True
    ).start()


def _drop_when_over(memo: OperatorMemo) -> None:
    """Give the listing's memory back once the resumes at start no longer ask it.

    Then the Agents that were served a default instance kopf's watch never
    showed (deleted between the two listings) run again.
    """
    listing = memo.deps.listing
    while not listing.expire():
        time.sleep(EXPIRY_CHECK_SECONDS)
    for controller in listing.unseen():
        rerun_stale(controller, memo)


def rerun_stale(controller: Controller, memo: OperatorMemo) -> None:
    """Re-run (soon, on the retries thread) an Agent whose resume used a stale listed object."""
    if controller.kind != Kind.AGENT.value:
        return
    namespace, name, uid = controller.namespace, controller.name, controller.uid
    logger.info("Agent %s/%s: re-run, its default instance changed after the start-up listing",
                namespace, name)  # fmt: skip
    memo.retries.schedule(
        (Kind.AGENT, namespace, name),
        0.0,
        lambda: rerun(Kind.AGENT, namespace, name, memo, uid=uid),
    )


def load(
    listing: StartupListing, api_client: kubernetes.client.ApiClient, namespaces: Sequence[str]
) -> int:
    """List every kind of :data:`LISTED` into ``listing``; returns how many objects it holds.

    The kinds (and namespaces) are listed side by side: the API server
    takes most of the time, serving page after page, and kopf starts no
    watch before this returns.
    """
    scopes: Sequence[str | None] = (
        [ALL_NAMESPACES] if not namespaces or has_globs(namespaces) else namespaces
    )
    jobs = [(kind, selector, scope) for kind, selector in LISTED.items() for scope in scopes]
    with ThreadPoolExecutor(max_workers=min(len(jobs), PARALLEL_LISTS)) as pool:
        counts = pool.map(lambda job: _load_one(listing, api_client, namespaces, *job), jobs)
        return sum(counts)


def _load_one(
    listing: StartupListing,
    api_client: kubernetes.client.ApiClient,
    namespaces: Sequence[str],
    kind: ObjectKind,
    selector: str,
    scope: str | None,
) -> int:
    """One kind in one scope into ``listing``: how many objects; 0 if the listing failed."""
    reader = page_reader(api_client, kind, scope)
    # A generator: each page is trimmed into the listing's compact entries
    # as it arrives, so at most one page of whole objects is held; a failed
    # page leaves the listing of this kind untouched.
    objects = (
        obj
        for obj in pages(reader, selector)
        if watched(str(obj["metadata"]["namespace"]), namespaces)
    )
    try:
        return listing.add(kind, scope, objects)
    except (ApiException, OSError, ValueError, TransportError) as error:
        where = "all namespaces" if scope is None else f"namespace {scope}"
        logger.warning(
            "start-up listing of %s in %s failed (%s); their resumes read them one by one",
            kind.plural,
            where,
            error,
        )
        return 0


def pages(read: SelectorPageReader, selector: str) -> Iterator[dict[str, Any]]:
    """Every item of a paginated LIST by ``selector``, page by page."""
    return list_pages(lambda token: read(selector, token))


def page_reader(
    api_client: kubernetes.client.ApiClient, kind: ObjectKind, namespace: str | None
) -> SelectorPageReader:
    """The LIST call for ``kind`` in ``namespace`` (``None``: all), returning raw JSON."""
    core = kubernetes.client.CoreV1Api(api_client)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    custom = kubernetes.client.CustomObjectsApi(api_client)
    plural = kind.plural
    listers: dict[ObjectKind, Callable[..., Any]]
    if namespace is None:
        listers = {
            ObjectKind.SERVICE_ACCOUNT: core.list_service_account_for_all_namespaces,
            ObjectKind.ROLE: rbac.list_role_for_all_namespaces,
            ObjectKind.ROLE_BINDING: rbac.list_role_binding_for_all_namespaces,
            ObjectKind.AGENT_INSTANCE: lambda **kw: custom.list_cluster_custom_object(
                GROUP, VERSION, plural, **kw
            ),
        }
    else:
        listers = {
            ObjectKind.SERVICE_ACCOUNT: lambda **kw: core.list_namespaced_service_account(
                namespace, **kw
            ),
            ObjectKind.ROLE: lambda **kw: rbac.list_namespaced_role(namespace, **kw),
            ObjectKind.ROLE_BINDING: lambda **kw: rbac.list_namespaced_role_binding(
                namespace, **kw
            ),
            ObjectKind.AGENT_INSTANCE: lambda **kw: custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, **kw
            ),
        }
    lister = listers[kind]

    def read(selector: str, token: str | None) -> Any:
        return lister(
            label_selector=selector,
            limit=PAGE_SIZE,
            _continue=token,
            _preload_content=False,
            _request_timeout=PAGE_REQUEST_TIMEOUT,
        )

    return read
