"""The operator's store upkeep: retention flags and a periodic ``prune``.

``save`` caps each resource's history as it writes; everything else the
retention policy asks (old versions, deleted resources' history, the
change log) is done here, in a background thread, every
``--store-maintenance-seconds``. A prune works in small batches, so
reconciles keep writing while it runs. A failing prune (a full disk, say)
is logged and retried at the next interval: it must never stop the operator.
"""

from __future__ import annotations

import argparse
import logging
import threading

from stigmer_operator.store.errors import StoreError
from stigmer_operator.store.protocol import Store

logger = logging.getLogger(__name__)

#: The first prune waits for the start-up re-mirror to settle.
FIRST_RUN_DELAY_SECONDS = 60.0

#: ``OperatorSettings`` fields set by the flags :func:`add_arguments` adds.
FIELDS = (
    "history_max_versions",
    "history_max_age_days",
    "deleted_history_days",
    "change_log_max_entries",
    "change_log_max_age_days",
    "store_maintenance_seconds",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The retention flags of ``stigmer-operator run`` (env: ``STIGMER_<FIELD>``)."""
    group = parser.add_argument_group("store retention (0 disables a limit)")
    group.add_argument("--history-max-versions", type=int, help="versions kept per resource (50)")
    group.add_argument("--history-max-age-days", type=float, help="drop older versions (0)")
    group.add_argument(
        "--deleted-history-days", type=float, help="keep a deleted resource's history (30)"
    )
    group.add_argument(
        "--change-log-max-entries", type=int, help="published log entries kept (100000)"
    )
    group.add_argument(
        "--change-log-max-age-days", type=float, help="drop older published entries (30)"
    )
    group.add_argument(
        "--store-maintenance-seconds", type=float, help="seconds between prunes (3600)"
    )


class Maintenance:
    """A daemon thread that prunes the store every ``interval`` seconds."""

    def __init__(self, store: Store, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="store-maintenance", daemon=True)

    @classmethod
    def start(cls, store: Store, interval: float) -> Maintenance:
        """Start pruning (``interval`` 0: never)."""
        maintenance = cls(store, interval)
        if interval > 0:
            maintenance._thread.start()
        return maintenance

    def stop(self) -> None:
        """Stop, waiting for a prune in progress (it works in small batches)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def run_once(self) -> None:
        try:
            report = self._store.prune()
        except StoreError as error:
            logger.warning(
                "store maintenance failed, retrying in %.0f s: %s", self._interval, error
            )
            return
        if report.removed:
            logger.info(
                "store maintenance dropped %d history entries (%d deleted resources) and "
                "%d change-log entries",
                report.history_entries,
                report.deleted_resources,
                report.log_entries,
            )

    def _loop(self) -> None:
        delay = min(FIRST_RUN_DELAY_SECONDS, self._interval)
        while not self._stopped.wait(delay):
            self.run_once()
            delay = self._interval
