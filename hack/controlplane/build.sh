#!/usr/bin/env bash
# Builds the binaries of the local test control plane from Go modules:
# kube-apiserver, kube-controller-manager and kubectl (k8s.io/kubernetes),
# etcd (go.etcd.io/etcd/server/v3) and helm (helm.sh/helm/v3).
#
# Why: this project's machines reach only package registries, so no prebuilt
# Kubernetes binaries can be downloaded; everything is compiled from the Go
# module proxy. The pinned versions live in the go.mod/go.sum files beside
# this script (one Go module per upstream project), which makes builds
# reproducible.
#
# Output goes to a cache directory keyed by the pinned versions:
#   ${STIGMER_CONTROLPLANE_CACHE:-$HOME/.cache/stigmer-operator/controlplane}/
#     v<k8s>-etcd<etcd>-helm<helm>/bin/
# Binaries already there are not built again. Binaries are built one after
# the other (each `go build` itself limited to -p=2) to keep memory use low
# on a 2-core machine. The last line printed is the bin directory.
#
# Usage: hack/controlplane/build.sh            build what is missing
#        hack/controlplane/build.sh --print-bin-dir   only print the bin dir
#        hack/controlplane/build.sh --force    rebuild everything
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Version of a required module, read from a go.mod beside this script.
mod_version() {
  local gomod="$1" module="$2" v
  v="$(awk -v m="$module" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/ { print $2; exit }
  ' "$gomod")"
  if [[ -z "$v" ]]; then
    echo "build.sh: cannot find $module in $gomod" >&2
    exit 1
  fi
  echo "$v"
}

K8S_VERSION="$(mod_version "$here/kubernetes/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(mod_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
HELM_VERSION="$(mod_version "$here/helm/go.mod" helm.sh/helm/v3)"
HELM_K8S_VERSION="$(mod_version "$here/helm/go.mod" k8s.io/client-go)"

cache_root="${STIGMER_CONTROLPLANE_CACHE:-$HOME/.cache/stigmer-operator/controlplane}"
key="${K8S_VERSION}-etcd${ETCD_VERSION#v}-helm${HELM_VERSION#v}"
bin_dir="$cache_root/$key/bin"

force=0
case "${1:-}" in
  --print-bin-dir) echo "$bin_dir"; exit 0 ;;
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--print-bin-dir|--force]" >&2; exit 2 ;;
esac

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: 'go' is not on PATH; install Go (>= 1.26) first" >&2
  exit 1
fi

mkdir -p "$bin_dir"

# Never switch to another Go toolchain behind our back, never touch go.mod,
# static binaries, no absolute paths, stripped symbol tables.
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-p=2 -mod=readonly -buildvcs=false -trimpath"

k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION"
  k8s_ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean"
  k8s_ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

helm_k8s_minor="${HELM_K8S_VERSION#v0.}"; helm_k8s_minor="${helm_k8s_minor%%.*}"
helm_ldflags="-s -w"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done

etcd_ldflags="-s -w"

total_start=$SECONDS
built=0

# build NAME MODULE_DIR PACKAGE LDFLAGS
build() {
  local name="$1" dir="$2" pkg="$3" ldflags="$4"
  local out="$bin_dir/$name"
  if [[ $force -eq 0 && -x "$out" ]]; then
    echo "== $name: cached ($out)"
    return
  fi
  echo "== $name: building $pkg in $dir"
  local start=$SECONDS
  (cd "$dir" && go build -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv -f "$out.tmp" "$out"
  built=$((built + 1))
  echo "== $name: built in $((SECONDS - start))s, $(du -h "$out" | cut -f1)"
}

echo "== control plane: kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION"
echo "== go: $(go version)"
build etcd "$here/etcd" . "$etcd_ldflags"
build kube-apiserver "$here/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager "$here/kubernetes" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build kubectl "$here/kubernetes" k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build helm "$here/helm" helm.sh/helm/v3/cmd/helm "$helm_ldflags"

cat > "$cache_root/$key/versions.txt" <<EOF
kubernetes=$K8S_VERSION
etcd=$ETCD_VERSION
helm=$HELM_VERSION
EOF

echo "== built $built binaries in $((SECONDS - total_start))s"
echo "$bin_dir"
