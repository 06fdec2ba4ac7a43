# wechat-operator — run `make help` for the targets.

# Versions of the local control plane built by hack/setup-envtest.sh (see DESIGN section 5).
K8S_VERSION ?= 1.37.2
ETCD_VERSION ?= 3.6.16

GO ?= go
CONTROLLER_GEN ?= $(GO) tool controller-gen
# Where the control-plane binaries end up; exported to envtest as KUBEBUILDER_ASSETS.
ENVTEST_ASSETS ?= $(CURDIR)/bin/k8s/$(K8S_VERSION)
GO_TEST_FLAGS ?=

export GOTOOLCHAIN ?= local

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate CRDs (config/crd/bases) and RBAC (config/rbac) from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: envtest
envtest: ## Build etcd and kube-apiserver from Go modules into bin/k8s/<version> (cached).
	K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/setup-envtest.sh >/dev/null

.PHONY: test
test: manifests generate fmt vet envtest ## Run all tests against a real kube-apiserver + etcd.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test $(GO_TEST_FLAGS) ./...

.PHONY: verify
verify: manifests generate fmt ## Fail if generated or formatted files are out of date.
	@git diff --exit-code -- api config || { echo "generated files are out of date: run 'make manifests generate' and commit"; exit 1; }
	@$(GO) mod tidy && git diff --exit-code -- go.mod go.sum || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 30s) each.
	hack/fuzz.sh $(or $(FUZZTIME),30s)

##@ Build

.PHONY: build
build: ## Build the binaries into bin/.
	$(GO) build -o bin/ ./cmd/...

.PHONY: bench-crypto
bench-crypto: ## Benchmark push verification+decryption against silenceper/wechat and the cost floor.
	hack/bench-crypto.sh
