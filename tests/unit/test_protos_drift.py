"""The checked-in protobuf modules are exactly what ``hack/gen_protos.sh`` generates.

The ``.proto`` files are the storage contract; the generated ``*_pb2.py(i)``
modules are committed so a fresh clone needs no protoc step. This test
regenerates them into a temporary directory and fails on any byte of
difference, so a ``.proto`` edit without ``make protos`` cannot land.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = REPO_ROOT / "operator" / "api" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi")


def generated_files(directory: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if path.name.endswith(GENERATED_SUFFIXES)
    }


def test_generated_protobuf_modules_match_the_protos(tmp_path: Path) -> None:
    # The script runs `python -m grpc_tools.protoc`: make it this interpreter.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "gen_protos.sh"), str(tmp_path)],
        check=True,
        env=env,
        timeout=120,
    )

    fresh = generated_files(tmp_path)
    committed = generated_files(CHECKED_IN)

    assert fresh, "hack/gen_protos.sh generated nothing"
    assert sorted(fresh) == sorted(committed), "generated and checked-in module names differ"
    drifted = [name for name in fresh if fresh[name] != committed[name]]
    assert not drifted, f"run `make protos`: these modules drifted from proto/: {drifted}"
