#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine; start one if needed.
#
# The image tests (tests/image/) build and run the operator image, so
# `make test` needs a Docker engine. On our CI machines (Debian, root, no
# systemd) none is running and only the docker CLI may be present: this
# installs Debian's docker.io (dockerd, containerd, runc) and mmdebstrap (for
# the local base image, hack/docker/base-image.sh) with apt-get when they are
# missing, and starts dockerd in the background, logging to
# $DOCKERD_LOG (default ~/.cache/stigmer-operator/dockerd.log).
#
# Anywhere else (a laptop with Docker Desktop, a CI runner with a Docker
# service) the engine already answers and this script does nothing. When it
# cannot help (not root, no apt-get) it fails and says what to install.
set -euo pipefail

DOCKER=${DOCKER:-docker}
DOCKERD_LOG=${DOCKERD_LOG:-${XDG_CACHE_HOME:-$HOME/.cache}/stigmer-operator/dockerd.log}
WAIT_SECONDS=${DOCKERD_WAIT_SECONDS:-60}

engine_answers() {
  command -v "$DOCKER" >/dev/null 2>&1 && "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

fail() {
  echo "ensure-dockerd: $*" >&2
  echo "ensure-dockerd: the image tests need a Docker engine: install Docker" \
       "(Debian/Ubuntu as root: apt-get install docker.io mmdebstrap; then start dockerd)" \
       "or point DOCKER_HOST at one, then rerun make test." >&2
  exit 1
}

if engine_answers; then
  exit 0
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || fail "no Docker engine answers and I am not root to install ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || fail "no Docker engine answers and there is no apt-get"
  echo "ensure-dockerd: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v "$DOCKER" >/dev/null 2>&1 || fail "no docker CLI ($DOCKER) on PATH"

if [[ -n ${DOCKER_HOST:-} ]]; then
  fail "DOCKER_HOST=$DOCKER_HOST is set but no engine answers there"
fi
[[ $(id -u) == 0 ]] || fail "no Docker engine answers and starting dockerd needs root"

mkdir -p "$(dirname "$DOCKERD_LOG")"
echo "ensure-dockerd: starting dockerd (log: $DOCKERD_LOG)" >&2
# setsid: dockerd outlives make and the test run (later runs reuse it).
setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &

for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
  if engine_answers; then
    echo "ensure-dockerd: dockerd $("$DOCKER" version --format '{{.Server.Version}}') is up" >&2
    exit 0
  fi
  sleep 0.5
done
tail -n 20 "$DOCKERD_LOG" >&2 || true
fail "dockerd did not answer within ${WAIT_SECONDS}s (log: $DOCKERD_LOG)"
