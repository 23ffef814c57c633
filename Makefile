# gpu-nri Makefile. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TOOLS := $(CURDIR)/.cache/tools/bin
GOLANGCI := $(TOOLS)/golangci-lint
FUZZTIME ?= 20000x
# go-nvml's header marks functions deprecated; keep cgo builds quiet.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

.PHONY: help tools build test test-unit test-e2e test-faults test-k8s test-image fuzz-smoke lint bench bench-e2e bench-nrirtt demo clean gpu-vectoradd gpu-check-bundle gpu-check-dry-run

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

tools: ## install what the tests use (apt packages as root; containerd, crictl, helm from the module proxy)
	TOOLS=e2e bash test/tools.sh >/dev/null
	TOOLS=helm bash test/k8s/tools.sh >/dev/null

build: ## build the static gpu-nri binary (and the small gpu-nri-hook) into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/gpu-nri ./plugin/cmd/gpu-nri
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/gpu-nri-hook ./plugin/cmd/gpu-nri-hook

test: ## the README's test command: tools, unit tests, then e2e, k8s and image suites (root)
	$(MAKE) tools
	$(MAKE) test-unit
	$(MAKE) test-e2e
	$(MAKE) test-k8s
	$(MAKE) test-image

test-unit: ## go tests with -race (includes fuzz seed corpora)
	$(GO) test -race -count=1 ./...

test-e2e: build ## end-to-end suite (Go, tag e2e): private containerd + runc/crun + CRI + simulated GPU host (root)
	set -o pipefail; $(GO) test -tags e2e -count=1 -timeout 30m -json $(if $(E2E_RUN),-run '$(E2E_RUN)') ./test/e2e/ | $(GO) run ./test/tally

# FAULTS_PODS and FAULTS_CONCURRENCY size each burst (default 60 at 10); FAULTS_OUT receives the table.
test-faults: build ## burst-and-faults suite (Go, tag faults): gpu-nri killed, frozen and containerd restarted mid-burst, fail-open and fail-closed (root)
	set -o pipefail; $(GO) test -tags faults -count=1 -timeout 15m -json ./test/faults/ | $(GO) run ./test/tally

# K8S_RUN selects scenarios, e.g. K8S_RUN='TestKubernetes/(dropins|runtime)' or TestKubernetes/cluster/helm.
K8S_RUN ?= ^(TestKubernetes|TestPKI|TestDevicePluginSimulatedHost)$$
test-k8s: build ## real single-node Kubernetes suite, Go tests with tag k8s (root)
	set -o pipefail; $(GO) test -tags k8s -count=1 -timeout 60m -json -run '$(K8S_RUN)' ./test/k8s/ | $(GO) run ./test/tally

test-image: ## build deploy/image/Dockerfile with Podman (offline, stand-in base images) and check the image (root)
	bash test/image/run.sh

fuzz-smoke: ## run every fuzz target for $(FUZZTIME) executions (a count: see test/fuzz-smoke.sh)
	bash test/fuzz-smoke.sh $(FUZZTIME)

lint: ## golangci-lint (built from the module proxy into .cache/tools) and shellcheck of the shell harnesses
	@[ -x $(GOLANGCI) ] || TOOLS=lint bash test/tools.sh >/dev/null
	$(GOLANGCI) run ./...
	$(GOLANGCI) run --build-tags e2e ./test/e2e/...
	$(GOLANGCI) run --build-tags k8s ./test/k8s/...
	$(GOLANGCI) run --build-tags faults ./test/faults/...
	@command -v shellcheck >/dev/null || TOOLS=none bash test/tools.sh >/dev/null
	git ls-files -z '*.sh' .ci/run | xargs -0 shellcheck -x -S warning

bench: ## Go benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/... ./plugin/...

# BENCH_ROUNDS (default 40), BENCH_OUT=FILE (a scratch file, written even on a busy machine); see test/e2e/cmd/bench.
bench-e2e: build ## container start through CRI: plain, gpu-nri hooked/hookless, NVIDIA's spec and runtime, runc and crun, CRI-O; writes docs/benchmarks-e2e.md only on a quiet machine (root)
	$(GO) run ./test/e2e/cmd/bench

# NRIRTT_ROUNDS (default 3000), NRIRTT_LIBDIR=0 (per-file mounts), NRIRTT_OUT=FILE; see test/e2e/cmd/nrirtt.
bench-nrirtt: ## NRI's CreateContainer round trip to gpu-nri's process beside the smallest NRI plugin, no container runtime (root)
	$(GO) run ./test/e2e/cmd/nrirtt

demo: build ## private containerd + gpu-nri + simulated GPU host; a pod asks for GPUs 0 and 2 (root)
	$(GO) run ./test/e2e/cmd/demo

gpu-vectoradd: ## build test/gpu/vectoradd.cu with nvcc 11.8 (Debian bookworm non-free, cached; not CI: ~1.6 GB download)
	bash test/gpu/nvcc.sh >/dev/null
	mkdir -p _output
	NV=.cache/tools/nvcc-11.8; $$NV/bin/nvcc -ccbin $$NV/root/usr/bin/g++-11 -O2 -gencode arch=compute_90,code='[sm_90,compute_90]' -o _output/vectoradd test/gpu/vectoradd.cu

gpu-check-bundle: ## what test/gpu/check.sh carries to a GPU machine, in _output/gpu-check (docs/gpu-check.md)
	bash test/gpu/bundle.sh

gpu-check-dry-run: gpu-check-bundle ## test/gpu/check.sh against a simulated host, up to the kernel launch (root)
	bash test/gpu/dry-run.sh

clean: ## remove build outputs
	rm -rf $(BIN)
