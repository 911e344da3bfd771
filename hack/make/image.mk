# The operator's container image. Included from the top-level Makefile.
#
#   docker   a Docker engine answers (hack/docker/ensure-dockerd.sh installs
#            Debian's docker.io and starts dockerd when it must and can)
#   wheels   the wheelhouse: the project's wheel and every pinned
#            dependency's, in $(WHEELHOUSE) on the host (pip, PyPI)
#   image    docker build with that wheelhouse (no network in the build) on
#            $(BASE_IMAGE): python:3.11-slim when it can be pulled, else a
#            local Debian bookworm base (hack/docker/base-image.sh, cached by
#            tag); prints the image's size
#
#   make image IMAGE_REPOSITORY=registry.example.com/stigmer-operator IMAGE_TAG=0.1.0
#   make image BASE_IMAGE=python:3.11-slim@sha256:<digest>

IMAGE_REPOSITORY ?= stigmer-operator
IMAGE_TAG ?= dev
IMAGE ?= $(IMAGE_REPOSITORY):$(IMAGE_TAG)
DOCKER ?= docker
WHEELHOUSE ?= build/wheels
# Empty: hack/docker/base-image.sh decides (and builds the local base if needed).
BASE_IMAGE ?=
# Fixed zip timestamps: the same sources give the same wheel, so Docker's
# layer cache is reused when nothing changed.
WHEEL_SOURCE_DATE_EPOCH ?= 315532800

PACKAGE_SOURCES := pyproject.toml README.md $(shell find operator -type f \( -name '*.py' -o -name '*.pyi' -o -name py.typed \) -not -path '*/__pycache__/*')

.PHONY: docker wheels image

docker:
	hack/docker/ensure-dockerd.sh

wheels: $(WHEELHOUSE)/.complete

# setuptools packs whatever is in build/lib, stale files included: start clean.
$(WHEELHOUSE)/.complete: $(PACKAGE_SOURCES) | venv
	rm -rf $(WHEELHOUSE) build/lib build/bdist.*
	SOURCE_DATE_EPOCH=$(WHEEL_SOURCE_DATE_EPOCH) \
	  $(PY) -m pip wheel --quiet --prefer-binary --wheel-dir $(WHEELHOUSE) .
	touch $@

image: docker wheels
	@base=$$(BASE_IMAGE='$(BASE_IMAGE)' DOCKER='$(DOCKER)' hack/docker/base-image.sh); \
	start=$$(date +%s); \
	echo "docker build --build-arg BASE_IMAGE=$$base --tag $(IMAGE) ."; \
	$(DOCKER) build --build-arg BASE_IMAGE=$$base --tag $(IMAGE) .; \
	size=$$($(DOCKER) image inspect --format '{{.Size}}' $(IMAGE)); \
	echo "$(IMAGE): $$((size / 1000000)) MB, built in $$(($$(date +%s) - start)) s on $$base"
