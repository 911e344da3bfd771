# The operator's container image. Included from the top-level Makefile.
#
#   docker   a Docker engine answers (hack/docker/ensure-dockerd.sh installs
#            Debian's docker.io and starts dockerd when it must and can)
#   wheels   the wheelhouse: a wheel of every pinned dependency and build
#            requirement, in $(WHEELHOUSE) on the host (pip, PyPI)
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

.PHONY: docker wheels image

docker:
	hack/docker/ensure-dockerd.sh

wheels: $(WHEELHOUSE)/.complete

# Every runtime dependency and build requirement pyproject.toml pins (the
# project itself is built from source inside the image build, offline).
# Only a change of pyproject.toml refreshes it.
$(WHEELHOUSE)/.complete: pyproject.toml hack/docker/requirements.py | venv
	rm -rf $(WHEELHOUSE) && mkdir -p $(WHEELHOUSE)
	$(PY) hack/docker/requirements.py --build pyproject.toml > $(WHEELHOUSE)/requirements.txt
	$(PY) -m pip wheel --quiet --prefer-binary --wheel-dir $(WHEELHOUSE) -r $(WHEELHOUSE)/requirements.txt
	touch $@

image: docker wheels
	@base=$$(BASE_IMAGE='$(BASE_IMAGE)' DOCKER='$(DOCKER)' hack/docker/base-image.sh); \
	start=$$(date +%s); \
	echo "docker build --build-arg BASE_IMAGE=$$base --tag $(IMAGE) ."; \
	$(DOCKER) build --build-arg BASE_IMAGE=$$base --tag $(IMAGE) .; \
	size=$$($(DOCKER) image inspect --format '{{.Size}}' $(IMAGE)); \
	echo "$(IMAGE): $$((size / 1000000)) MB, built in $$(($$(date +%s) - start)) s on $$base"
