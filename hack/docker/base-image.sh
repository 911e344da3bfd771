#!/usr/bin/env bash
# Print the base image `make image` builds on: python:3.11-slim when it can be
# had, else a local Debian bookworm image with the same Python minor.
#
#   hack/docker/base-image.sh            -> prints the image reference to use
#
# Why: the Dockerfile starts from $BASE_IMAGE (default python:3.11-slim), but
# our machines reach no container registry, only Debian's package mirrors. So
# when python:3.11-slim is neither present nor pullable, this builds
# $LOCAL_BASE (default stigmer-operator-base:bookworm-py3.11) with mmdebstrap
# from Debian packages (python3 = 3.11 on bookworm, python3-venv for the
# builder stage, passwd for groupadd/useradd) and `docker import`s it. The
# image is cached by its tag: a later run finds it and builds nothing.
#
# Set BASE_IMAGE to skip all of this and use that image as is.
set -euo pipefail

DOCKER=${DOCKER:-docker}
DEFAULT_BASE=${DEFAULT_BASE:-python:3.11-slim}
LOCAL_BASE=${LOCAL_BASE:-stigmer-operator-base:bookworm-py3.11}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

log() { echo "base-image: $*" >&2; }

present() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

if [[ -n ${BASE_IMAGE:-} ]]; then
  echo "$BASE_IMAGE"
  exit 0
fi
for image in "$DEFAULT_BASE" "$LOCAL_BASE"; do
  if present "$image"; then
    echo "$image"
    exit 0
  fi
done
if timeout 60 "$DOCKER" pull --quiet "$DEFAULT_BASE" >/dev/null 2>&1; then
  echo "$DEFAULT_BASE"
  exit 0
fi

log "$DEFAULT_BASE cannot be pulled; building $LOCAL_BASE from Debian $DEBIAN_SUITE packages"
command -v mmdebstrap >/dev/null 2>&1 ||
  { log "mmdebstrap is missing (Debian: apt-get install mmdebstrap)"; exit 1; }

# Documentation, man pages and translations are left out, as in python:*-slim.
mmdebstrap \
  --quiet \
  --variant=minbase \
  --include=python3,python3-venv,passwd,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
  "$DEBIAN_SUITE" - \
  "deb $DEBIAN_MIRROR $DEBIAN_SUITE main" \
  "deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main" \
  "deb $DEBIAN_SECURITY $DEBIAN_SUITE-security main" |
  "$DOCKER" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "Debian $DEBIAN_SUITE minbase + python3 (hack/docker/base-image.sh)" \
    - "$LOCAL_BASE" >/dev/null
log "built $LOCAL_BASE ($("$DOCKER" image inspect --format '{{.Size}}' "$LOCAL_BASE") bytes)"
echo "$LOCAL_BASE"
