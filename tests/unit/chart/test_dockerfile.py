"""Static checks of the Dockerfile: what a reader of it must be able to rely on.

The image itself is built and run by tests/image/ (make test builds it); these
checks catch the mistakes a build on one machine would not: a base image that
is not overridable or not Python 3.11, a final stage that copies more than the
virtualenv or installs tooling, a build context that lets in more than the
allowlist. They read the Dockerfile the way the builder would: instructions
with line continuations joined, global ARGs before the first FROM, split into
stages at each FROM.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|make|build-essential|python3?-dev|libc6?-dev|"
    r"cmake|rustc|cargo)\b"
)


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    image: str
    alias: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of (keyword, arguments) instructions."""
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    assert not buffer, "the Dockerfile ends inside a line continuation"

    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "ARG" and not stages:
            continue  # a global build argument (read by global_args)
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], alias=alias))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def global_args(text: str) -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults."""
    args: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            break
        if words and words[0].upper() == "ARG":
            name, _, default = words[1].partition("=")
            args[name] = default
    return args


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())


def test_is_multi_stage(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert stages[0].alias == "builder"


def test_every_stage_starts_from_the_base_image_argument(stages: list[Stage]) -> None:
    """One base for both stages (the venv's python link points into it), overridable."""
    assert [stage.image for stage in stages] == ["${BASE_IMAGE}"] * len(stages)


def test_base_image_defaults_to_a_pinned_python_311_slim() -> None:
    image = global_args(DOCKERFILE.read_text())["BASE_IMAGE"]
    name, _, digest = image.partition("@")
    repo, sep, tag = name.rpartition(":")
    assert sep, f"{image} has no tag"
    assert repo in ("python", "docker.io/library/python")
    assert tag.startswith("3.11") and "slim" in tag and "latest" not in tag
    assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_venv_is_made_with_safe_path(stages: list[Stage]) -> None:
    """Run from /src, `python -m venv` would import the repo's operator/ as `operator`."""
    runs = " ".join(stages[0].all("RUN"))
    for match in re.finditer(r"\bpython3?(?:\.\d+)?((?: -\w+)*) -m\b", runs):
        assert "-P" in match.group(1).split(), match.group(0)


def test_final_stage_runs_as_numeric_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "the final stage sets no USER"
    user = users[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"USER {user} must be numeric (runAsNonRoot checks the UID)"
    assert int(uid) == 10001
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_entrypoint_is_stigmer_operator_run(stages: list[Stage]) -> None:
    final = stages[-1]
    entrypoint = json.loads(final.all("ENTRYPOINT")[-1])
    cmd = json.loads(final.all("CMD")[-1])
    assert entrypoint == ["stigmer-operator"]
    assert cmd == ["run"]


def test_final_stage_has_no_build_tools(stages: list[Stage]) -> None:
    final = stages[-1]
    for command in final.all("RUN"):
        assert not BUILD_TOOLS.search(command), command
        assert "apt-get install" not in command and "apk add" not in command
        assert "pip install" not in command, "the final stage installs nothing with pip"


def test_final_stage_copies_only_the_virtualenv(stages: list[Stage]) -> None:
    final = stages[-1]
    copies = final.all("COPY") + final.all("ADD")
    assert copies, "the final stage copies nothing"
    for copy in copies:
        words = shlex.split(copy)
        assert words[0] == "--from=builder", f"unexpected COPY into the final stage: {copy}"
        assert words[1:] == ["/opt/stigmer", "/opt/stigmer"]


def test_store_lives_under_var_lib_stigmer(stages: list[Stage]) -> None:
    final = stages[-1]
    env = " ".join(final.all("ENV"))
    assert "STIGMER_STORE_PATH=/var/lib/stigmer/store" in env
    assert any("chown 10001:10001 /var/lib/stigmer" in run for run in final.all("RUN"))


def test_builder_installs_from_the_wheelhouse_only(stages: list[Stage]) -> None:
    runs = " ".join(stages[0].all("RUN"))
    installs = re.findall(r"pip install [^;&]*", runs)
    assert installs, "the builder installs nothing"
    for install in installs:
        assert "--no-index" in install and "--find-links" in install, install
    assert "pip check" in runs, "a conflicting dependency set fails the build"


def test_dockerignore_allowlists_the_build_inputs() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded unless allowed"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "operator",
        "hack/docker/requirements.py",
        "build/wheels",
    }
