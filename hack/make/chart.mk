# Helm chart and local kind cluster (the image: image.mk).
# Included from the top-level Makefile; every variable can be overridden:
#   make kind-up IMAGE_TAG=mine KIND_CLUSTER=dev
#
#   kind-up     kind cluster from kind-config.yaml + image + helm install
#               (needs Docker, kind, helm and a pullable kind node image;
#               see docs/install.md)
#   chart-lint  helm lint --strict with the default values and every
#               charts/stigmer-operator/ci/*-values.yaml

CHART_DIR ?= charts/stigmer-operator
KIND ?= kind
KIND_CLUSTER ?= stigmer
KIND_CONFIG ?= kind-config.yaml
RELEASE ?= stigmer-operator
RELEASE_NAMESPACE ?= stigmer-system

# The helm pinned by hack/controlplane (the one the tests use) when it has
# been built, else whatever `helm` is on PATH.
CONTROLPLANE_BIN_DIR ?= $(shell hack/controlplane/build.sh --print-bin-dir)
HELM ?= $(if $(wildcard $(CONTROLPLANE_BIN_DIR)/helm),$(CONTROLPLANE_BIN_DIR)/helm,helm)

.PHONY: kind-up chart-lint

kind-up: image
	@if $(KIND) get clusters | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster $(KIND_CLUSTER) exists"; \
	else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_CONFIG) --wait 120s; \
	fi
	$(KIND) load docker-image $(IMAGE) --name $(KIND_CLUSTER)
	$(HELM) upgrade --install $(RELEASE) $(CHART_DIR) \
	  --kube-context kind-$(KIND_CLUSTER) \
	  --namespace $(RELEASE_NAMESPACE) --create-namespace \
	  --set image.repository=$(IMAGE_REPOSITORY) \
	  --set image.tag=$(IMAGE_TAG) \
	  --set image.pullPolicy=Never \
	  --wait --timeout 5m

chart-lint:
	$(HELM) lint --strict $(CHART_DIR)
	@set -e; for values in $(CHART_DIR)/ci/*-values.yaml; do \
	  echo "==> helm lint --strict -f $$values"; \
	  $(HELM) lint --strict $(CHART_DIR) --values $$values; \
	done
