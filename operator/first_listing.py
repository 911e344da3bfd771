"""The uids of kopf's first listing of each watch: what the start-up sweep compares with.

At start kopf lists every watched kind in every watched namespace before it
watches, and the start-up sweep needs exactly that: which objects exist. It
used to list them a second time, which at a restart with 20,000 objects
doubled the API server's work while the operator and the API server shared
the same cores (docs/performance.md). So the uids are recorded as kopf's
listing passes (:mod:`.kopf_compat` shows each event here as it arrives,
before the backlog parks it), and the sweep waits for them.

The record is a superset of what exists, never less: a listing that kopf
restarts after a failure adds its objects again. A superset only lets a
stale entry wait for the next periodic sweep; missing an object would sweep
a live one (each leftover is still checked with a GET before it goes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

#: A watch: the kind's plural and its namespace (``None`` cluster-wide).
WatchKey = tuple[str, str | None]


class FirstListings:
    """Which watches have finished their first listing, and the uids each listed."""

    def __init__(self, expected: Iterable[WatchKey]) -> None:
        self._pending = set(expected)
        self._uids: dict[str, set[str]] = {}
        self._listed = threading.Condition()
        self._handed = False

    def is_listing(self, key: WatchKey) -> bool:
        """Whether ``key``'s first listing is expected and not over yet."""
        with self._listed:
            return key in self._pending

    def add(self, key: WatchKey, uid: str) -> None:
        """``uid`` came in ``key``'s first listing."""
        with self._listed:
            if key in self._pending:
                self._uids.setdefault(key[0], set()).add(uid)

    def complete(self, key: WatchKey) -> None:
        """``key``'s first listing is over (even if it listed nothing)."""
        with self._listed:
            self._pending.discard(key)
            self._listed.notify_all()

    def take(self, timeout: float) -> dict[str, set[str]] | None:
        """Every listed uid by plural, once all watches listed; ``None`` after ``timeout`` s.

        Handed over once (later calls get ``None``): the record is dropped,
        and recording stops, so it holds no memory after the start-up sweep.
        """
        with self._listed:
            listed = self._listed.wait_for(lambda: not self._pending, timeout)
            uids, self._uids = self._uids, {}
            self._pending.clear()
            handed, self._handed = self._handed, True
            return uids if listed and not handed else None
