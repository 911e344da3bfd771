"""``bench/reconcile_bench.py --quick`` runs end to end, so the benchmark cannot rot.

The benchmark starts its own control plane and operator, so this test needs
the control-plane binaries but none of the shared e2e fixtures. It runs the
quick mode shrunk further (every phase, a few dozen Agents) and checks the
shape of the JSON and the correctness signals -- every Agent Ready, the
restart swept what was deleted and ``store verify`` passed -- never the
timings: a shared CI machine is too noisy for those.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stigmer_testing.controlplane import BinariesMissingError, find_binaries

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench" / "reconcile_bench.py"


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_quick_mode_runs_every_phase(tmp_path: Path) -> None:
    try:
        find_binaries()
    except BinariesMissingError as error:
        pytest.fail(str(error), pytrace=False)
    out = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--n", "30", "--steady-rate", "10",
         "--steady-seconds", "2", "--scale-n", "80", "--restart-delete", "3",
         "--quiet", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=280, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-4000:]}"
    results = json.loads(out.read_text())

    burst = results["burst"]
    assert burst["ready"] == burst["n"] == 30
    assert burst["failed_creates"] == 0
    assert len(burst["latencies"]) == 30
    # The operator's own write counter is wired: it made the default instances.
    assert burst["pipeline_writes"]["create agentinstances"] == 30
    assert burst["requests"]["POST agentinstances"] == 30
    # Who used the CPU: the operator and the API server both worked.
    cpu = burst["machine_cpu"]
    assert cpu["operator"] > 0 and cpu["kube-apiserver"] > 0 and cpu["etcd"] > 0
    assert 0 < cpu["busy_fraction"] <= 1
    assert 0 <= cpu["stolen_fraction"] < 1
    assert burst["full_collections"] >= 0  # the operator's garbage-collector metric is read
    # The API server's audit log names who read Agents and instances: never the operator's
    # clients (kopf, the kubernetes client); the bench lists as it starts watching, and
    # kube-controller-manager's garbage collector may read owners it has not seen yet.
    products = {read.rsplit(" ", 1)[1] for read in burst["readers"]}
    assert products <= {"python-urllib3", "kube-controller-manager"}, burst["readers"]
    assert "LIST agents stigmer-admin python-urllib3" in burst["readers"]  # the log is read

    baseline = results["baseline"]
    assert baseline["watched"] is True  # under the bench's watches, as the burst
    assert baseline["requests_per_agent"] > 1
    assert baseline["agents_per_second"] > 0
    assert baseline["machine_cpu"]["kube-apiserver"] > 0
    assert baseline["cpu_bound_fraction"] > 0

    steady = results["steady"]
    assert steady["ready"] == steady["created"] == 20

    scale = results["scale"]
    assert scale["agents"] == 80
    assert scale["ready"] == scale["created"]
    assert scale["rss_mb"] > 0

    restart = results["restart"]
    assert restart["live_agents"] == restart["live_instances"] == 77
    assert restart["swept"] == 6  # 3 Agents + their 3 default instances
    assert restart["verify_exit"] == 0, restart["verify_tail"]
    assert restart["resumes_instance"] >= 77
    assert restart["machine_cpu"]["operator"] > 0  # the restarted process, from its start
    assert restart["full_collections"] >= 0

    # The table the benchmark exists for.
    for heading in ("burst:", "baseline", "steady:", "scale:", "restart:", "targets"):
        assert heading in result.stdout
