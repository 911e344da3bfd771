"""docs/install.md says what the tests and the Makefile fragment actually run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALL_DOC = REPO_ROOT / "docs" / "install.md"
E2E_TEST = REPO_ROOT / "tests" / "e2e" / "test_chart.py"
VALUES = REPO_ROOT / "charts" / "stigmer-operator" / "values.yaml"


def _sh_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)


def _commands(block: str) -> list[list[str]]:
    """Shell commands of a block, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            commands.append(shlex.split(line))
    return commands


def _doc_commands() -> list[list[str]]:
    return [c for block in _sh_blocks(INSTALL_DOC.read_text()) for c in _commands(block)]


def test_helm_install_is_the_one_the_e2e_test_runs() -> None:
    installs = [c for c in _doc_commands() if c[:2] == ["helm", "install"]]
    first = installs[0]
    assert first[2:4] == ["stigmer-operator", "charts/stigmer-operator"]
    assert {"--namespace", "stigmer-system", "--create-namespace"} <= set(first)
    e2e = E2E_TEST.read_text()
    # The e2e test installs release "stigmer-operator" into "stigmer-system" ...
    assert 'release = "stigmer-operator" if mode == "cluster-wide"' in e2e
    assert 'release_ns = "stigmer-system" if mode == "cluster-wide"' in e2e
    assert '"--create-namespace"' in e2e


def test_wait_for_ready_is_the_one_the_e2e_test_runs() -> None:
    commands = _doc_commands()
    assert ["kubectl", "apply", "-f", "examples/agent.yaml"] in commands
    waits = [c for c in commands if c[:2] == ["kubectl", "wait"]]
    assert [
        "kubectl",
        "wait",
        "--for=condition=Ready",
        "agent/code-reviewer",
        "--timeout=120s",
    ] in (waits)
    e2e = E2E_TEST.read_text()
    for fragment in ('"--for=condition=Ready"', '"--timeout=120s"', '"agent/code-reviewer"'):
        assert fragment in e2e
    agent = yaml.safe_load((REPO_ROOT / "examples" / "agent.yaml").read_text())
    assert agent["metadata"]["name"] == "code-reviewer"


def _make_dry_run(*args: str) -> str:
    """What ``make ARGS`` would run, every prerequisite included, lines joined."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    return " ".join(dry.stdout.replace("\\\n", " ").split())


def test_kind_section_lists_what_make_kind_up_runs() -> None:
    # HELM=helm: the recipe as docs/install.md shows it, whatever helm is built.
    # -o image: the image's own commands are checked by the test below.
    recipe = _make_dry_run("-o", "image", "kind-up", "HELM=helm")
    kind_block = next(b for b in _sh_blocks(INSTALL_DOC.read_text()) if "kind load" in b)
    positions = []
    for command in _commands(kind_block):
        text = " ".join(command)
        assert text in recipe, f"{text!r} is not what make runs"
        positions.append(recipe.index(text))
    assert positions == sorted(positions), "docs list the commands in another order than make"


def test_image_build_is_what_make_test_runs() -> None:
    """docs/install.md's `make image` and its steps are the ones `make test` runs."""
    doc = INSTALL_DOC.read_text()
    section = doc.split("## 1. Build the image", 1)[1].split("\n## ", 1)[0]
    assert ["make", "image"] in [c for b in _sh_blocks(section) for c in _commands(b)]
    image_recipe = _make_dry_run("image", "-o", "venv")
    test_recipe = _make_dry_run("test")
    assert image_recipe in test_recipe, "make test does not build the image as make image does"
    assert test_recipe.index(image_recipe) < test_recipe.index("-m pytest")
    steps = [
        "hack/docker/ensure-dockerd.sh",
        "pip wheel",
        "--wheel-dir build/wheels",
        "hack/docker/base-image.sh",
        "docker build --build-arg BASE_IMAGE=",
        "--tag stigmer-operator:dev .",
    ]
    positions = [image_recipe.index(step) for step in steps]
    assert positions == sorted(positions), image_recipe
    for documented in (
        "hack/docker/ensure-dockerd.sh",
        "make wheels",
        "build/wheels/",
        "hack/docker/base-image.sh",
        "--tag stigmer-operator:dev .",
    ):
        assert documented in section, documented
    # The image tests run the image that recipe tagged.
    assert "STIGMER_TEST_IMAGE=stigmer-operator:dev" in test_recipe


def test_documented_value_keys_exist() -> None:
    values = yaml.safe_load(VALUES.read_text())
    table = INSTALL_DOC.read_text().split("## Values", 1)[1].split("\n## ", 1)[0]
    keys = re.findall(r"^\| `([a-zA-Z]+)[.`]", table, flags=re.MULTILINE)
    assert len(keys) > 10
    for key in keys:
        assert key in values, f"docs/install.md documents {key}, values.yaml has no such key"
