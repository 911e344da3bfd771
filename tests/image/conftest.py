"""Fixtures of the image tests: a Docker engine and the image ``make image`` built.

The image tests never skip. Without a Docker engine, or without the image,
they fail and say how to get it: ``make test`` runs
``hack/docker/ensure-dockerd.sh`` (installs Debian's docker.io and starts
dockerd when it must) and ``make image`` before pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

import pytest

#: The image under test; `make test` passes the one `make image` built.
IMAGE = os.environ.get("STIGMER_TEST_IMAGE", "stigmer-operator:dev")
DOCKER_HINT = (
    "the image tests need a Docker engine: run `hack/docker/ensure-dockerd.sh` "
    "(as root on Debian it installs docker.io with apt-get and starts dockerd; "
    "`make test` runs it), or install Docker and start it"
)

Docker = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def docker() -> Docker:
    """Run ``docker`` with arguments; raises with its stderr unless ``check=False``."""
    binary = shutil.which(os.environ.get("DOCKER", "docker"))
    if binary is None:
        pytest.fail(f"no docker CLI on PATH; {DOCKER_HINT}", pytrace=False)

    def run(
        *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [binary, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stderr}")
        return result

    answer = run("version", "--format", "{{.Server.Version}}", check=False)
    if answer.returncode != 0:
        pytest.fail(
            f"no Docker engine answers ({answer.stderr.strip()}); {DOCKER_HINT}", pytrace=False
        )
    return run


@pytest.fixture(scope="session")
def image(docker: Docker) -> str:
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail(f"the image {IMAGE} is not built: run `make image`", pytrace=False)
    return IMAGE
