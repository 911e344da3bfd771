# syntax=docker/dockerfile:1
#
# stigmer-operator container image.
#
#   make image                                   (wheelhouse on the host, then docker build)
#   docker build -t stigmer-operator:dev .       (wheels fetched from PyPI inside the build)
#
# Two stages: the builder installs the project and its pinned dependencies
# into a virtualenv from wheels; the final stage gets only that virtualenv on
# a clean copy of the same base image, runs as UID/GID 10001 and carries no
# compiler or build tooling (every dependency ships binary wheels).
#
# Offline and reproducible: `make wheels` (part of `make image`) puts a wheel
# of every pinned dependency and build requirement into build/wheels/ on the
# host. When the build context has them, the builder installs with
# `pip --no-index` and the build touches no network at all (proxies and
# mirrors are then only the host's pip's business). Without them the builder
# downloads the same wheels from PyPI first.
#
# BASE_IMAGE: python:3.11-slim by default. `make image` passes a local Debian
# bookworm image (python3 = 3.11) when no registry is reachable; see
# hack/docker/base-image.sh. For reproducible production builds pin the base
# by digest as well, e.g.
# `--build-arg BASE_IMAGE=python:3.11-slim@sha256:<digest>`.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Two layers: the dependencies (reused until pyproject.toml or the wheelhouse
# changes), then the project itself.
#
# `build/wheel[s]`: a wildcard, so a context without a wheelhouse still
# builds; .dockerignore lets through only pyproject.toml, README.md,
# operator/, hack/docker/requirements.py and build/wheels/. `-P` everywhere: run from /src, `python3 -m`
# would import the repo's operator/ folder instead of the standard library's
# `operator` module.
COPY pyproject.toml hack/docker/requirements.py build/wheel[s] /wheels/
RUN set -eu; \
    cd /wheels; \
    python3 -P -m venv /opt/stigmer; \
    if ls *.whl >/dev/null 2>&1; then \
      echo "installing from the wheelhouse build/wheels/ (no network)"; \
    else \
      echo "no wheelhouse in the build context: fetching wheels from PyPI"; \
      python3 -P requirements.py --build pyproject.toml > all.txt; \
      /opt/stigmer/bin/pip wheel --quiet --prefer-binary --wheel-dir . -r all.txt; \
    fi; \
    python3 -P requirements.py pyproject.toml > runtime.txt; \
    /opt/stigmer/bin/pip install --quiet --no-index --find-links . -r runtime.txt

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN set -eu; \
    /opt/stigmer/bin/pip install --quiet --no-index --find-links /wheels --no-deps .; \
    /opt/stigmer/bin/pip check; \
    /opt/stigmer/bin/pip uninstall --quiet --yes pip setuptools; \
    /opt/stigmer/bin/stigmer-operator --help > /dev/null


FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="stigmer-operator" \
      org.opencontainers.image.description="Kubernetes operator for Agent and AgentInstance custom resources" \
      org.opencontainers.image.source="https://github.com/stigmer/stigmer-operator" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/stigmer/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STIGMER_STORE_PATH=/var/lib/stigmer/store

# An unprivileged user with a fixed numeric UID/GID (Kubernetes checks
# runAsNonRoot against the numeric USER below), owning the store directory.
RUN groupadd --system --gid 10001 stigmer \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/stigmer \
      --no-create-home --shell /usr/sbin/nologin stigmer \
 && mkdir -p /var/lib/stigmer \
 && chown 10001:10001 /var/lib/stigmer

COPY --from=builder /opt/stigmer /opt/stigmer

USER 10001:10001
WORKDIR /var/lib/stigmer

# 8080: Prometheus /metrics; 8081: liveness /healthz.
EXPOSE 8080 8081

ENTRYPOINT ["stigmer-operator"]
CMD ["run"]
