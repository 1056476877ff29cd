# seccomp-sentinel. `make run` and `make test` are the two commands a fresh machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
# Shared build cache: a fresh clone on the same machine reuses earlier builds (.ci/run sets this).
export CARGO_TARGET_DIR ?= $(CURDIR)/target
KUBECTL := $(CURDIR)/e2e/bin/kubectl
# Test threads per test binary. The integration tests mostly wait on real controllers and kubelets:
# on 2 cores, 4 threads took an integration run from 273 s to 191 s (the cores 78 % busy); 8 gained
# nothing more. At least 4, and one per core where there are more (libtest's own default).
TEST_THREADS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n > 4 ? n : 4 )))
IMG ?= quay.io/seccomp-sentinel/seccomp-sentinel:v$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: help
help: ## Show the targets.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: testenv
testenv: go-prefetch node-prereqs ## Build the pinned control plane and node binaries into e2e/bin (skipped when already built).
	@bash e2e/testenv/build.sh
	@bash e2e/testenv/reference-crds.sh
	@bash e2e/openshift/build.sh
	@bash e2e/monitoring/build.sh

# Background downloads of the Go modules of the builds below (and of bundle-validate's OLM tools).
.PHONY: go-prefetch
go-prefetch:
	@bash e2e/prefetch.sh

.PHONY: node-prereqs
node-prereqs: ## Install the Debian packages of the test nodes (containerd, runc, ...) when missing (as root).
	@bash e2e/node/prereqs.sh

.PHONY: build
build: ## Build the release binary (the Dockerfile runs the same command).
	$(CARGO) build --release --locked --bin seccomp-sentinel

.PHONY: fmt-check
fmt-check:
	$(CARGO) fmt --all -- --check

.PHONY: clippy
clippy:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

.PHONY: crds
crds: ## Regenerate crds/ from the Rust types.
	mkdir -p crds
	$(CARGO) run --locked --quiet --bin seccomp-sentinel -- crds --out-dir crds

.PHONY: test
test: testenv fmt-check clippy bundle-validate ## Format check, clippy, bundle validation, unit and integration tests on the local control plane (Kubernetes 1.37, then 1.33).
	$(CARGO) test --locked --workspace -- --test-threads=$(TEST_THREADS)
	@$(MAKE) --no-print-directory test-oldest

.PHONY: test-oldest
test-oldest: testenv ## The integration tests again, on Kubernetes 1.33 (the oldest supported, OpenShift 4.20's): control plane, kubelet and kubectl.
	SENTINEL_KUBERNETES_BIN=$(CURDIR)/e2e/bin/kubernetes-1.33 $(CARGO) test --locked --test integration -- --test-threads=$(TEST_THREADS)

.PHONY: fuzz
fuzz: ## Fuzz the input readers, the lean decoding and the engine for longer (CASES=..., default 20000).
	PROPTEST_CASES=$(or $(CASES),20000) $(CARGO) test --locked --lib fuzz

.PHONY: run
run: testenv ## Run the operator: on $$KUBECONFIG's cluster if reachable, else on a local control plane.
	@bash e2e/run.sh $(ARGS)

.PHONY: bench
bench: testenv ## Measure the performance targets (not part of `make test`; N=10000 for the full size).
	$(CARGO) build --release --locked --workspace --bin seccomp-sentinel --bin sentinel-bench
	$(CARGO) bench --locked --bench engine -- --quick
	$(CARGO_TARGET_DIR)/release/sentinel-bench --operator $(CARGO_TARGET_DIR)/release/seccomp-sentinel $(if $(N),--pods $(N))

.PHONY: bench-peer
bench-peer: testenv peer-tools ## seccomp-sentinel beside Kyverno's background scan (not part of `make test`; about 72 minutes with the default IDLE_SECONDS=3900).
	$(CARGO) build --release --locked --workspace --bin seccomp-sentinel --bin sentinel-bench-peer
	$(CARGO_TARGET_DIR)/release/sentinel-bench-peer --operator $(CARGO_TARGET_DIR)/release/seccomp-sentinel $(if $(N),--pods $(N)) $(if $(IDLE_SECONDS),--idle-seconds $(IDLE_SECONDS))

.PHONY: peer-tools
peer-tools: ## Build Kyverno's reports-controller, the peer of the side-by-side measurements (not part of `make test`; about 20 minutes cold).
	@bash e2e/peer/build.sh

KUSTOMIZE_TARGET ?= config/default

.PHONY: deploy
deploy: testenv ## Install into the cluster of $$KUBECONFIG (config/default; KUSTOMIZE_TARGET=config/openshift on OpenShift).
	$(KUBECTL) apply --server-side -k $(KUSTOMIZE_TARGET)

.PHONY: undeploy
undeploy: testenv ## Remove what `make deploy` installed (CRDs included, so every SeccompStatus and SeccompPolicy goes).
	$(KUBECTL) delete --ignore-not-found -k $(KUSTOMIZE_TARGET)

.PHONY: docker-build
docker-build: ## Build the image (needs a container engine; not available on the CI machines).
	docker build -t $(IMG) .

.PHONY: bundle
bundle: ## Write the OLM bundle (bundle/, bundle.Dockerfile) from config/ and crds/.
	$(CARGO) run --locked --quiet -p sentinel-devtools --bin sentinel-bundle -- --root . --out bundle

.PHONY: bundle-validate
bundle-validate: bundle ## Validate bundle/ with operator-sdk (suite=operatorframework) and build the OLM tools of the tests.
	@bash e2e/olm/build.sh
	e2e/bin/operator-sdk bundle validate bundle --select-optional suite=operatorframework --optional-values=k8s-version=1.33
