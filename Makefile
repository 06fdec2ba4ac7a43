# wechat-operator — run `make help` for the targets.

# Versions of the local control plane built by hack/setup-envtest.sh (see DESIGN section 5).
K8S_VERSION ?= 1.37.2
ETCD_VERSION ?= 3.6.16

GO ?= go
CONTROLLER_GEN ?= $(GO) tool controller-gen
# golangci-lint v2, pinned in its own modfile so its dependencies stay out of go.mod.
GOLANGCI_LINT ?= $(GO) tool -modfile=hack/tools/golangci-lint.mod golangci-lint
# Where the control-plane binaries end up; exported to envtest as KUBEBUILDER_ASSETS.
ENVTEST_ASSETS ?= $(CURDIR)/bin/k8s/$(K8S_VERSION)
# The fault matrix (test/e2e/faults) alone runs ~6 minutes; go test's default timeout is 10.
GO_TEST_FLAGS ?= -timeout 20m

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

.PHONY: lint
lint: ## Run golangci-lint (.golangci.yml); the first run builds it (~3 minutes on 2 cores).
	$(GOLANGCI_LINT) run ./...

.PHONY: envtest
envtest: ## Build etcd and kube-apiserver from Go modules into bin/k8s/<version> (cached).
	K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/setup-envtest.sh >/dev/null

.PHONY: test
test: manifests generate fmt vet envtest ## Run all tests against a real kube-apiserver + etcd.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test $(GO_TEST_FLAGS) ./...

# The Helm chart is generated from config/ (hack/tools/helm/chartgen, in the separate module
# hack/tools/helm with the Helm CLI: Helm's dependencies would raise the operator's own).
HELM_TOOL_DIR := hack/tools/helm
HELM ?= $(GO) -C $(HELM_TOOL_DIR) tool helm

.PHONY: chart
chart: ## Regenerate charts/wechat-operator from config/ (after make manifests or any change under config/).
	$(GO) -C $(HELM_TOOL_DIR) run ./chartgen --root $(CURDIR)

.PHONY: helm
helm: ## Build the Helm CLI of hack/tools/helm into bin/helm (the tests use `go tool helm` there).
	$(GO) -C $(HELM_TOOL_DIR) build -o $(CURDIR)/bin/helm helm.sh/helm/v4/cmd/helm

.PHONY: test-alerts
test-alerts: ## Unit-test the alert rules and the dashboard's queries with promtool (its first build takes minutes).
	$(GO) test -count=1 -run 'TestAlertRules|TestDashboardQueriesParse|TestPrometheusRule|TestDocsCover' ./test/monitoring

.PHONY: prometheus-rule
prometheus-rule: ## Regenerate config/prometheus/prometheusrule.yaml from config/prometheus/alerts.yaml.
	$(GO) test -count=1 -run TestPrometheusRuleCarriesTheRulesFile ./test/monitoring -args -update

.PHONY: verify
verify: manifests generate fmt chart ## Fail if generated or formatted files are out of date.
	@git diff --exit-code -- api config charts || { echo "generated files are out of date: run 'make manifests generate chart' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- charts)" || { echo "charts/ has files that are not committed: run 'make chart' and commit"; git status --porcelain -- charts; exit 1; }
	@$(GO) mod tidy && git diff --exit-code -- go.mod go.sum || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }
	@$(GO) -C $(HELM_TOOL_DIR) mod tidy && git diff --exit-code -- $(HELM_TOOL_DIR)/go.mod $(HELM_TOOL_DIR)/go.sum || { echo "$(HELM_TOOL_DIR)/go.mod is not tidy: run 'go -C $(HELM_TOOL_DIR) mod tidy' and commit"; exit 1; }

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 30s) each.
	hack/fuzz.sh $(or $(FUZZTIME),30s)

##@ Demo

DEMO_FLAGS ?=

# bin/demo builds the control plane itself when it is missing (hack/setup-envtest.sh, with a
# heartbeat while the ~7-minute build runs), then the programs it starts.
.PHONY: demo
demo: ## Run the whole system locally: control plane, simulator, manager, receiver, samples. Ctrl-C stops it.
	@echo "==> building the demo driver (bin/demo)"
	@$(GO) build -o bin/demo ./hack/demo
	@bin/demo --assets "$(ENVTEST_ASSETS)" $(DEMO_FLAGS)

.PHONY: demo-check
demo-check: ## Run the demo non-interactively; fail unless tokens are issued and refreshed (CI runs it).
	@echo "==> building the demo driver (bin/demo)"
	@$(GO) build -o bin/demo ./hack/demo
	@bin/demo --check --assets "$(ENVTEST_ASSETS)" $(DEMO_FLAGS)

##@ Build

.PHONY: build
build: ## Build the binaries into bin/.
	$(GO) build -o bin/ ./cmd/...

.PHONY: krew-archive
krew-archive: ## Build the krew archives of kubectl-wechat and bin/krew/wechat.yaml (VERSION=v0.1.0; KREW_PLATFORMS=linux/amd64 for one).
	@VERSION=$(VERSION) KREW_PLATFORMS="$(KREW_PLATFORMS)" hack/krew-archive.sh

.PHONY: bench
bench: bench-crypto bench-push bench-messages bench-scale ## Run every benchmark and print the figures.

.PHONY: bench-crypto
bench-crypto: ## Benchmark push verification+decryption against silenceper/wechat and the cost floor.
	hack/bench-crypto.sh

# The message path (docs/benchmarks.md, "Message path"): the webhook-receiver binary, the
# silenceper/wechat SDK server and the floor, interleaved; BENCH_MESSAGES_FLAGS takes more
# (bin/messagebench --help), e.g. --soak 1000000 for the memory run.
BENCH_MESSAGES_FLAGS ?=

.PHONY: bench-messages
bench-messages: envtest ## Benchmark the message path against silenceper/wechat and the floor; records the table in docs/benchmarks.md.
	cd test/bench/sdkcompare && $(GO) build -o $(CURDIR)/bin/messagebench ./messages
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" bin/messagebench --root . --write-doc $(BENCH_MESSAGES_FLAGS)

.PHONY: bench-push
bench-push: envtest ## Benchmark ticket push -> token Secret latency and receiver throughput on the local control plane.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" $(GO) test ./test/bench -run '^$$' -bench . -benchtime 1x -v | grep -E '^(Benchmark|    push_bench|ok|FAIL|---)'

# The whole system as processes at scale (docs/benchmarks.md): BENCH_AUTHORIZERS=1000,10000,100000
# runs each count on a fresh control plane; BENCH_FLAGS takes more (bin/scalebench --help).
BENCH_AUTHORIZERS ?= 10000
BENCH_FLAGS ?=

.PHONY: bench-scale
bench-scale: envtest ## Benchmark N authorizers with the real processes; records the table in docs/benchmarks.md.
	$(GO) build -o bin/scalebench ./test/scale
	bin/scalebench --assets "$(ENVTEST_ASSETS)" --authorizers $(BENCH_AUTHORIZERS) --write-doc $(BENCH_FLAGS)

# Images: $(IMG_REGISTRY)/manager:$(IMG_TAG) and $(IMG_REGISTRY)/webhook-receiver:$(IMG_TAG).
IMG_REGISTRY ?= ghcr.io/wechat-operator
IMG_TAG ?= latest
MANAGER_IMG ?= $(IMG_REGISTRY)/manager:$(IMG_TAG)
RECEIVER_IMG ?= $(IMG_REGISTRY)/webhook-receiver:$(IMG_TAG)
CONTAINER_TOOL ?= docker
KUBECTL ?= kubectl

.PHONY: docker-build
docker-build: ## Build the manager and webhook-receiver images (Dockerfile targets; CONTAINER_TOOL=podman works too).
	$(CONTAINER_TOOL) build --target manager -t $(MANAGER_IMG) .
	$(CONTAINER_TOOL) build --target webhook-receiver -t $(RECEIVER_IMG) .

.PHONY: docker-push
docker-push: ## Push both images.
	$(CONTAINER_TOOL) push $(MANAGER_IMG)
	$(CONTAINER_TOOL) push $(RECEIVER_IMG)

##@ Local cluster (a real one-node Kubernetes on this machine, no Docker: docs/cluster.md)

# Images `make images` builds (hack/cluster-images, go-containerregistry) and config/local uses.
LOCAL_IMG_REGISTRY ?= localhost/wechat-operator
LOCAL_IMG_TAG ?= local
IMAGES_DIR ?= bin/images
CLUSTER_SH ?= hack/cluster.sh

.PHONY: cluster
cluster: ## Build (cached in bin/) and start a one-node cluster in network namespace wechat-cluster; prints the kubeconfig.
	@K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) ENVTEST_ASSETS="$(ENVTEST_ASSETS)" $(CLUSTER_SH) up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and remove everything it started or created (also after a killed run).
	@$(CLUSTER_SH) down

.PHONY: images
images: ## Build the manager, receiver and simulator images without a daemon into bin/images; load them into the local cluster if it is up.
	@echo "==> building static binaries for the images"
	@mkdir -p $(IMAGES_DIR)
	@CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(IMAGES_DIR)/ ./cmd/manager ./cmd/webhook-receiver ./cmd/wechat-sim ./test/cluster/consumer
	@echo "==> packing the images (hack/cluster-images)"
	@$(GO) run ./hack/cluster-images --out $(IMAGES_DIR) \
	  manager=$(LOCAL_IMG_REGISTRY)/manager:$(LOCAL_IMG_TAG)=$(IMAGES_DIR)/manager \
	  webhook-receiver=$(LOCAL_IMG_REGISTRY)/webhook-receiver:$(LOCAL_IMG_TAG)=$(IMAGES_DIR)/webhook-receiver \
	  wechat-sim=$(LOCAL_IMG_REGISTRY)/wechat-sim:$(LOCAL_IMG_TAG)=$(IMAGES_DIR)/wechat-sim \
	  token-consumer=$(LOCAL_IMG_REGISTRY)/token-consumer:$(LOCAL_IMG_TAG)=$(IMAGES_DIR)/consumer
	@if $(CLUSTER_SH) status >/dev/null 2>&1; then \
	  $(CLUSTER_SH) import $(IMAGES_DIR)/manager.tar $(IMAGES_DIR)/webhook-receiver.tar $(IMAGES_DIR)/wechat-sim.tar $(IMAGES_DIR)/token-consumer.tar; \
	else echo "the local cluster is not up: images left in $(IMAGES_DIR) (make cluster, then make images, loads them)"; fi

# The suite on real pods (test/cluster, build tag "cluster"): cluster up, images, deploy, tests,
# and everything torn down again, also when a step fails. CI runs it (.ci/run).
.PHONY: test-cluster
test-cluster: ## Run test/cluster on a fresh local cluster (~10 minutes once the node binaries are built; CLUSTER_TEST_RUN selects steps), then tear it down.
	@hack/cluster-test.sh

##@ Deployment (to the local cluster of `make cluster` when it is up, else the current kubeconfig's)

# bin/deploy is a generated overlay of config/default that sets the images.
.PHONY: deploy-manifests
deploy-manifests:
	@mkdir -p bin/deploy
	@printf '%s\n' '# Generated by make deploy: config/default with the images to deploy.' \
	  'resources:' '- ../../config/default' 'images:' \
	  '- name: ghcr.io/wechat-operator/manager' '  newName: $(IMG_REGISTRY)/manager' '  newTag: "$(IMG_TAG)"' \
	  '- name: ghcr.io/wechat-operator/webhook-receiver' '  newName: $(IMG_REGISTRY)/webhook-receiver' '  newTag: "$(IMG_TAG)"' \
	  > bin/deploy/kustomization.yaml

.PHONY: install
install: ## Install (or update) the CRDs only.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Delete the CRDs, and with them EVERY WeChatComponent/WeChatAuthorizer and their Secrets (refresh tokens!). Needs CONFIRM=yes.
	@[ "$(CONFIRM)" = yes ] || { echo "uninstall deletes every WeChatComponent and WeChatAuthorizer in the cluster, and through owner references their token and state Secrets (authorizer refresh tokens: accounts must authorize again). Back them up first (docs/operations.md), then run: make uninstall CONFIRM=yes"; exit 1; }
	$(KUBECTL) delete --ignore-not-found -k config/crd

# With the cluster of `make cluster` up, deploy and undeploy use config/local (the images of
# `make images`, wechat-sim as WeChat) there; DEPLOY_TARGET=kubeconfig deploys bin/deploy
# (config/default with IMG_REGISTRY/IMG_TAG) to the current kubeconfig's cluster instead.
DEPLOY_TARGET ?= $(if $(wildcard bin/cluster/kubeconfig),local,kubeconfig)
ifeq ($(DEPLOY_TARGET),local)
DEPLOY_KUBECTL = $(CLUSTER_SH) kubectl
DEPLOY_DIR = config/local
else
DEPLOY_KUBECTL = $(KUBECTL)
DEPLOY_DIR = bin/deploy
endif

.PHONY: deploy
deploy: deploy-manifests ## Deploy CRDs, RBAC, manager, receiver, NetworkPolicies and the example Ingress (IMG_REGISTRY, IMG_TAG).
	@echo "==> deploying $(DEPLOY_DIR) ($(if $(filter local,$(DEPLOY_TARGET)),the local cluster of make cluster,the current kubeconfig's cluster))"
	$(DEPLOY_KUBECTL) apply --server-side -k $(DEPLOY_DIR)

.PHONY: undeploy
undeploy: deploy-manifests ## Remove the operator but keep the CRDs, so custom resources and their Secrets survive.
	$(DEPLOY_KUBECTL) kustomize $(DEPLOY_DIR) | $(DEPLOY_KUBECTL) delete --ignore-not-found --wait=false -l 'app.kubernetes.io/part-of=wechat-operator,app.kubernetes.io/component!=crd' -f -
