"""Run the helper scripts of the store tests as real processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
STARTUP_TIMEOUT = 60.0


class Holder:
    """A running ``store_holder.py``: the writer other handles read alongside."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    def expect(self, word: str) -> None:
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        assert line == word, f"holder said {line!r}, expected {word!r}"

    def save(self, number: int) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(f"save {number}\n")
        self._process.stdin.flush()
        self.expect("saved")


@contextmanager
def holding(path: Path, count: int) -> Iterator[Holder]:
    """A writer process holding the store at ``path`` with ``count`` Agents saved."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "store_holder.py"), str(path), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        holder = Holder(process)
        holder.expect("ready")
        yield holder
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
