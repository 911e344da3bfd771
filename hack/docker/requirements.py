"""Print the requirements pyproject.toml pins, one per line (for the wheelhouse).

    python3 -P hack/docker/requirements.py pyproject.toml            # runtime dependencies
    python3 -P hack/docker/requirements.py --build pyproject.toml    # ... and build requirements

`make wheels` downloads wheels of both into build/wheels/; the Dockerfile
installs the runtime ones from there and builds the project with the build
ones, offline. One reader of pyproject.toml for both, standard library only
(it runs on the bare base image).
"""

import sys
import tomllib


def main(argv: list[str]) -> int:
    build = "--build" in argv
    (path,) = [arg for arg in argv if arg != "--build"]
    with open(path, "rb") as file:
        project = tomllib.load(file)
    requirements = list(project["project"]["dependencies"])
    if build:
        requirements += project["build-system"]["requires"]
    print("\n".join(requirements))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
