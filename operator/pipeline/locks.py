"""Locks by key, for facts that span objects.

The per-object lock of the handlers keeps one object's runs apart, but a
slug is unique per (kind, org) *across* objects: CheckDuplicate reads the
slug index and Persist writes it two steps later, and with several workers
two Agents applied together with the same display name could both read
"nobody has it" and both be accepted. CheckDuplicate therefore holds the
slug's lock from its read until the end of the run (past Persist), through
:meth:`RequestContext.hold <stigmer_operator.pipeline.context.RequestContext.hold>`.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class KeyedLocks:
    """One lock per key, created on first use and dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            entry = self._entries.setdefault(key, _Entry())
            entry.users += 1
        entry.lock.acquire()
        try:
            yield
        finally:
            entry.lock.release()
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._entries[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._entries)
