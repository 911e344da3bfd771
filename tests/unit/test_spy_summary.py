"""``bench/spy_summary.py`` turns a py-spy raw profile into shares per group and step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "spy_summary.py"
KOPF = "worker (kopf/_core/reactor/queueing.py:338)"
STEP = "run (operator/pipeline/steps/create_iam_policies.py:60)"
CLIENT = "urlopen (urllib3/connectionpool.py:700)"


def test_shares_per_group_and_step(tmp_path: Path) -> None:
    profile = tmp_path / "burst.txt"
    profile.write_text(
        f"{KOPF} 6\n{STEP};{CLIENT} 3\n{STEP};run (operator/store/rocks.py:427) 1\n\n"
    )
    out = subprocess.run(
        [sys.executable, "-P", str(SCRIPT), str(profile)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = {
        line.split("%", 1)[1].strip(): float(line.split("%")[0]) for line in out.splitlines()[1:]
    }
    assert out.splitlines()[0].endswith("10 samples")
    assert lines["kopf reactor (watch, queueing, its own patches)"] == 60.0
    assert lines["kubernetes client (serialization, urllib3/TLS, JSON)"] == 30.0
    assert lines["pipeline steps, inclusive"] == 40.0
    assert lines["store (RocksDB)"] == 10.0
    assert lines["step create_iam_policies"] == 40.0
