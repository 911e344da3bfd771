# stigmer-operator developer and CI entry points.
#
#   make venv          .venv with the package and its dev extras (editable)
#   make controlplane  build etcd, kube-apiserver, kube-controller-manager,
#                      kubectl and helm from Go modules into the cache
#                      (hack/controlplane/build.sh; slow only the first time)
#   make image         the operator image (hack/make/image.mk; starts dockerd
#                      and builds a local base image when needed)
#   make kstatus       build hack/kstatus (Flux's status library as a command,
#                      run by tests/e2e/test_kstatus.py) into the same cache
#   make test          venv + controlplane + kstatus + lint + image + pytest
#
# .ci/run calls `make test`, so it must work on a fresh machine that has only
# python3.11 and go (and, as root, Debian's apt-get for Docker).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
# `-P` (safe path): for `python -m ...` run from here the current directory
# would come first on sys.path, and the repo's operator/ folder would shadow
# the standard library's `operator` module.
PY     := $(VENV)/bin/python -P
PYTEST_ARGS ?=

.PHONY: venv controlplane kstatus test

venv: $(VENV)/.installed

# Re-install when the project metadata changes.
# testing/ is the dev-only test-support distribution (stigmer_testing).
$(VENV)/.installed: pyproject.toml testing/pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -P -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]' -e ./testing
	touch $@

controlplane:
	hack/controlplane/build.sh

kstatus:
	hack/kstatus/build.sh

# The image tests (tests/image/) run the image `image` built (IMAGE).
test: venv controlplane kstatus lint image
	STIGMER_TEST_IMAGE=$(IMAGE) $(PY) -m pytest $(PYTEST_ARGS)

# ---- further targets (protos, lint, bench, ...) go below this line ----

.PHONY: run lint protos crds bench

# The operator on this machine: local control plane unless $KUBECONFIG is set.
run: venv controlplane
	$(VENV)/bin/stigmer-operator-dev

# mypy sees the package by its import name through a link (the folder is operator/);
# bench/ (scripts and the reconcile package beside them) is checked as files.
lint: venv
	mkdir -p .typecheck && ln -sfn ../operator .typecheck/stigmer_operator
	$(VENV)/bin/ruff check operator testing tests bench
	$(VENV)/bin/ruff format --check operator testing tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy bench

protos: venv
	PATH="$(VENV)/bin:$$PATH" hack/gen_protos.sh

crds: venv
	$(VENV)/bin/stigmer-operator crds generate

bench: venv controlplane
	$(PY) bench/store_bench.py
	$(PY) bench/pipeline_bench.py
	$(PY) bench/reconcile_bench.py

include hack/make/chart.mk
include hack/make/image.mk
