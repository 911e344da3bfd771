"""A real SIGKILL (STIGMER_CRASH_AFTER_STEP) against a real RocksDB store, then a re-run.

The child process runs agent-create on a RocksStore and is killed by the
crash point right after Persist. The parent reopens the same database (as
a restarted operator would), re-runs the pipeline, and checks that nothing
was duplicated: one history entry, one change-log entry, published once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pipeline_world import Clock, World, agent_manifest

from stigmer_operator.api.kinds import Kind
from stigmer_operator.pipeline.kube import ObjectKind
from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
from stigmer_operator.pipeline.runner import CRASH_AFTER_STEP_ENV
from stigmer_operator.store.rocks import RocksStore

CHILD = textwrap.dedent(
    """
    import json, sys
    from stigmer_operator.api.kinds import Kind
    from stigmer_operator.pipeline.context import Operation
    from stigmer_operator.pipeline.deps import Deps
    from stigmer_operator.pipeline.kube import ObjectKind
    from stigmer_operator.pipeline.kube_recording import RecordingKubeEffects
    from stigmer_operator.pipeline.pipelines import run
    from stigmer_operator.store.rocks import RocksStore

    path, manifest = sys.argv[1], json.loads(sys.argv[2])
    kube = RecordingKubeEffects()
    body = kube.put(ObjectKind.AGENT, manifest)
    run(Kind.AGENT, Operation.CREATE, body, Deps(RocksStore.open(path, create=True), kube))
    print("survived", flush=True)
    """
)


@pytest.mark.parametrize("step", ["Persist", "Publish"])
def test_sigkill_after_a_step_then_rerun_converges(tmp_path: Path, step: str) -> None:
    manifest = agent_manifest()
    manifest["metadata"]["uid"] = "6c1f5c1e-0000-4000-8000-00000000cafe"
    path = tmp_path / "store"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(manifest)],
        env={**os.environ, CRASH_AFTER_STEP_ENV: step},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "survived" not in child.stdout

    store = RocksStore.open(path)
    try:
        (entry,) = store.changes()
        assert entry.published is (step == "Publish")
        world = World(store, RecordingKubeEffects(), Clock())
        world.kube.put(ObjectKind.AGENT, manifest)  # the cluster kept the object
        world.run(Kind.AGENT, "support-bot")
        agent_id = entry.id
        assert len(store.history(Kind.AGENT, agent_id)) == 1
        (entry,) = store.changes()
        assert entry.published
        # the Event was posted by the child if it got past Publish; else by the re-run
        expected_events = 0 if step == "Publish" else 1
        assert len(world.kube.events_for("support-bot", "Created")) == expected_events
        assert world.current(Kind.AGENT, "support-bot")["status"]["id"] == agent_id
    finally:
        store.close()
