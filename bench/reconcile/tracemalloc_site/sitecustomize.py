"""Loaded by the operator's interpreter when the bench passes ``--tracemalloc DIR``.

The bench puts this folder on the operator's ``PYTHONPATH``, so Python
imports it at start-up, before ``stigmer_operator``. A daemon thread starts
tracemalloc once the imports are done (``STIGMER_BENCH_TRACEMALLOC_START``
seconds; tracing them would take minutes on a busy machine), then writes a
snapshot every ``STIGMER_BENCH_TRACEMALLOC_EVERY`` seconds into
``STIGMER_BENCH_TRACEMALLOC``: what the operator allocates while it works.
``bench/tracemalloc_summary.py`` compares them. Nothing happens without the
variable. Tracing costs CPU and memory: use it for where, not for how much.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

_DIRECTORY = os.environ.get("STIGMER_BENCH_TRACEMALLOC")


def _dump_every(directory: Path, start: float, every: float, frames: int) -> None:
    time.sleep(start)
    tracemalloc.start(frames)
    started = time.monotonic()
    while True:
        time.sleep(every)
        snapshot = tracemalloc.take_snapshot()
        elapsed = int(time.monotonic() - started)
        snapshot.dump(str(directory / f"snapshot-{os.getpid()}-{elapsed:06d}.pickle"))


if _DIRECTORY:
    _path = Path(_DIRECTORY)
    _path.mkdir(parents=True, exist_ok=True)
    _start = float(os.environ.get("STIGMER_BENCH_TRACEMALLOC_START", "15"))
    _every = float(os.environ.get("STIGMER_BENCH_TRACEMALLOC_EVERY", "20"))
    _frames = int(os.environ.get("STIGMER_BENCH_TRACEMALLOC_FRAMES", "8"))
    threading.Thread(target=_dump_every, args=(_path, _start, _every, _frames), daemon=True).start()
