"""Retries kopf does not do: re-runs of objects triggered by *other* objects.

kopf retries a handler of an object when it raises ``TemporaryError``. But
a pipeline also runs because of another object -- an Agent appearing wakes
the instances waiting for it, a default instance's flip re-runs its Agent,
a deletion arrives as a watch event -- and kopf retries none of those: a
temporary failure there (API server restarting, store hiccup) would leave
the object as it was until its next edit or the next operator start.

:class:`Retries` runs such a re-run again later, on one thread of its own:
one pending retry per key (the latest wins), each at its own due time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

Action = Callable[[], None]


@dataclass
class Retries:
    """Pending re-runs by key; a daemon thread runs each when it is due."""

    #: Monotonic seconds (a test passes its own clock and calls :meth:`run_due`).
    clock: Callable[[], float] = time.monotonic
    #: Start the thread on the first :meth:`schedule` (tests run due actions by hand).
    autostart: bool = True
    _due: dict[Hashable, tuple[float, Action]] = field(default_factory=dict)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def schedule(self, key: Hashable, delay: float, action: Action) -> None:
        """Run ``action`` in ``delay`` seconds, replacing what was pending for ``key``."""
        with self._wake:
            self._due[key] = (self.clock() + delay, action)
            if self.autostart and self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="retries", daemon=True)
                self._thread.start()
            self._wake.notify()

    def pending(self) -> list[Hashable]:
        with self._wake:
            return list(self._due)

    def run_due(self) -> int:
        """Run every action that is due (outside the lock); returns how many ran."""
        now = self.clock()
        with self._wake:
            due = [key for key, (when, _) in self._due.items() if when <= now]
            actions = [self._due.pop(key)[1] for key in due]
        for action in actions:
            try:
                action()
            except Exception:  # a retry's failure must not end the thread
                logger.exception("retry %r failed", action)
        return len(actions)

    def _loop(self) -> None:
        while True:
            with self._wake:
                soonest = min((when for when, _ in self._due.values()), default=None)
                timeout = None if soonest is None else max(0.0, soonest - self.clock())
                if timeout is None or timeout > 0:
                    self._wake.wait(timeout)
            self.run_due()
