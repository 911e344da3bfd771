# syntax=docker/dockerfile:1
#
# stigmer-operator container image.
#
#   docker build -t stigmer-operator:dev .      (or: make image)
#
# Two stages: the builder turns the project and its pinned dependencies into
# wheels and installs them into a virtualenv; the final stage gets only that
# virtualenv on a clean python:3.11-slim, runs as UID 10001 and carries no
# compiler or build tooling.
#
# The base image is pinned by tag. For reproducible production builds pin it
# by digest as well, e.g. `FROM python:3.11-slim@sha256:<digest>` (get the
# digest with `docker buildx imagetools inspect python:3.11-slim`), and let a
# bot such as Renovate or Dependabot keep it current.

FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Every dependency is pinned in pyproject.toml and ships binary wheels
# (rocksdict, protobuf, pydantic-core, aiohttp, ...), so no compiler is
# needed even here.
COPY pyproject.toml README.md ./
COPY operator/ operator/

RUN pip wheel --wheel-dir /wheels . \
 && python -m venv /opt/stigmer \
 && /opt/stigmer/bin/pip install --no-index --find-links /wheels stigmer-operator \
 && /opt/stigmer/bin/pip uninstall --yes pip \
 && /opt/stigmer/bin/stigmer-operator --help > /dev/null


FROM python:3.11-slim

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
