"""The README's run command works on a machine with no cluster configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stigmer_testing.controlplane import BinariesMissingError, find_binaries


@pytest.mark.e2e
def test_dev_once_starts_everything_and_shows_a_ready_agent(tmp_path: Path) -> None:
    try:
        find_binaries()
    except BinariesMissingError as error:
        pytest.fail(str(error), pytrace=False)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "stigmer_testing.local", "--once", f"--state={tmp_path}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    log = (tmp_path / "operator.log").read_text() if (tmp_path / "operator.log").exists() else ""
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{log[-3000:]}"
    lines = result.stdout.splitlines()
    agent = next(line for line in lines if line.startswith("agent.agentic.stigmer.ai/"))
    instance = next(line for line in lines if line.startswith("agentinstance.agentic"))
    assert agent.split()[1:3] == ["True", "code-reviewer-default"], result.stdout
    assert instance.split()[1:3] == ["code-reviewer", "True"], result.stdout
    assert (tmp_path / "store").is_dir()
