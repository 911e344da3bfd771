"""What the shipped wheel and image contain: only what works there.

The dev-only harness (``stigmer_testing``: control plane, ``stigmer-operator-dev``)
must be in neither; ``stigmer-operator --help`` in the image lists only
subcommands that run there, each of which answers its own ``--help``; and the
image carries no compiler.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.image.conftest import Docker

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO_ROOT / "build" / "wheels"
SHIPPED_COMMANDS = {"run", "store", "crds"}

#: The installed files of the image's stigmer-operator distribution, and
#: whether the dev-only package can be imported there.
INSPECT = """
import importlib.metadata, importlib.util, json
print(json.dumps({
    "files": [str(f) for f in importlib.metadata.files("stigmer-operator")],
    "stigmer_testing": importlib.util.find_spec("stigmer_testing") is not None,
    "distributions": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()),
}))
"""


def _build_wheel(out: Path) -> Path:
    """The project's wheel as the image build makes it: from a clean copy, offline."""
    if not any(WHEELHOUSE.glob("setuptools-*.whl")):
        pytest.fail(f"no wheelhouse in {WHEELHOUSE}: run `make wheels`", pytrace=False)
    source = out / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "operator", source / "operator", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-index",
            f"--find-links={WHEELHOUSE}",
            f"--wheel-dir={out}",
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("stigmer_operator-*.whl")
    return wheel


def test_wheel_has_no_test_support(tmp_path: Path) -> None:
    wheel = zipfile.ZipFile(_build_wheel(tmp_path))
    names = wheel.namelist()
    assert any(n.startswith("stigmer_operator/store/") for n in names), names[:20]
    assert not [n for n in names if "testing" in n.split("/")[0:2]], "test support in the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "stigmer-operator-dev" not in wheel.read(entry_points).decode()


def test_image_has_no_test_support(docker: Docker, image: str) -> None:
    out = docker("run", "--rm", "--entrypoint=python", image, "-c", INSPECT).stdout
    inspected = json.loads(out)
    assert inspected["files"], "stigmer-operator is not installed in the image"
    assert not [
        f for f in inspected["files"] if "/testing/" in f or f.startswith("stigmer_testing")
    ]
    assert inspected["stigmer_testing"] is False
    assert "stigmer-testing" not in inspected["distributions"]


def _commands(help_text: str) -> set[str]:
    """The subcommands an argparse ``--help`` lists under ``COMMAND``."""
    listed = help_text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return set(re.findall(r"^ {4}(\w[\w-]*)\s", listed, flags=re.MULTILINE))


def test_help_lists_only_commands_that_work_in_the_image(docker: Docker, image: str) -> None:
    help_text = docker("run", "--rm", image, "--help").stdout
    assert _commands(help_text) == SHIPPED_COMMANDS, help_text
    assert "dev" not in _commands(help_text)
    for command in sorted(SHIPPED_COMMANDS):
        answer = docker("run", "--rm", image, command, "--help", check=False)
        assert answer.returncode == 0, f"{command} --help in the image:\n{answer.stderr}"


def test_no_compiler_or_pip_in_the_image(docker: Docker, image: str) -> None:
    tools = "gcc cc c++ g++ clang make ld pip pip3 /opt/stigmer/bin/pip"
    found = docker(
        "run",
        "--rm",
        "--entrypoint=sh",
        image,
        "-c",
        f"for t in {tools}; do command -v $t; done; true",
    ).stdout.split()
    assert found == [], f"build tooling in the image: {found}"
