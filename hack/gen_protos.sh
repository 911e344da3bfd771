#!/usr/bin/env bash
# Regenerate the checked-in protobuf modules from proto/.
#
# The generated modules are committed so a fresh clone never needs a protoc
# step; tests/unit/test_protos_drift.py fails when they drift from proto/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python -P -m grpc_tools.protoc -I"$root/proto" \
  --python_out="$out" --mypy_out="$out" \
  $(cd "$root/proto" && find stigmer_operator -name '*.proto' | sort)
dest="${1:-$root/operator/api/v1}"
mkdir -p "$dest"
cp "$out"/stigmer_operator/api/v1/*_pb2.py "$out"/stigmer_operator/api/v1/*_pb2.pyi "$dest"/
