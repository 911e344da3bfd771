#!/usr/bin/env bash
# Builds hack/kstatus (Flux's status library as a command, see main.go) into
# a cache directory keyed by the pinned cli-utils version, once:
#   ${STIGMER_CONTROLPLANE_CACHE:-$HOME/.cache/stigmer-operator/controlplane}/kstatus-<version>/kstatus
# The last line printed is the binary's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "sigs.k8s.io/cli-utils" { print $2; exit }' "$here/go.mod")"
cache_root="${STIGMER_CONTROLPLANE_CACHE:-$HOME/.cache/stigmer-operator/controlplane}"
binary="$cache_root/kstatus-$version/kstatus"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$binary"
  exit 0
fi
if [[ ! -x "$binary" ]]; then
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  mkdir -p "$(dirname "$binary")"
  (
    cd "$here"
    GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-p=2 -mod=readonly -buildvcs=false -trimpath" \
      go build -ldflags="-s -w" -o "$binary.tmp" .
  )
  mv "$binary.tmp" "$binary"
fi
echo "$binary"
