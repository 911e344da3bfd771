"""``bench/tracemalloc_summary.py`` charges what grew between snapshots to the code holding it."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "tracemalloc_summary.py"


def _hold_parsed_events(count: int) -> list[Any]:
    text = json.dumps({"type": "ADDED", "object": {"spec": {"instructions": "x" * 200}}})
    return [json.loads(text) for _ in range(count)]  # the line the growth belongs to


def test_growth_is_charged_past_the_json_plumbing(tmp_path: Path) -> None:
    tracemalloc.start(8)
    try:
        tracemalloc.take_snapshot().dump(str(tmp_path / "old.pickle"))
        held = _hold_parsed_events(5000)
        tracemalloc.take_snapshot().dump(str(tmp_path / "new.pickle"))
    finally:
        tracemalloc.stop()
    assert len(held) == 5000
    out = subprocess.run(
        [sys.executable, "-P", str(SCRIPT), str(tmp_path / "old.pickle"),
         str(tmp_path / "new.pickle"), "--top", "1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = _hold_parsed_events.__code__.co_firstlineno + 2
    top = out.splitlines()[2]
    # json's decoder allocated the dicts; the summary names the caller that holds them.
    assert top.endswith(f"test_tracemalloc_summary.py:{line}"), out
    assert float(top.split()[0]) >= 1.0, out  # MiB
