// Package e2e is gpu-nri's end-to-end suite on a real containerd and a real
// CRI-O, each with runc and crun, driven through CRI (k8s.io/cri-api)
// against a simulated GPU host.
// The tests carry the build tag e2e, so plain `go test ./...` stays unit-only;
// `make test-e2e` runs them (root; not root, every test skips saying why):
//
//	go test -tags e2e -count=1 -json ./test/e2e/ | go run ./test/tally
//
// TestScenarios/<containerd|crio>/<runc|crun>/<scenario> runs every
// scenario once per CRI runtime and runtime handler (crun when
// test/tools.sh built it); where CRI-O 1.34.0 behaves differently the
// scenario asserts CRI-O's behaviour. Each scenario asserts on
// the container's final OCI spec (from CRI's verbose ContainerStatus) and on
// what the container saw (a probe script's output), removes its pods with
// t.Cleanup, and asks the suite fixture for the containerd view and the
// gpu-nri loader it needs (useRuntime, usePlugin), so none depends on another
// having run. The fixture (TestMain) is one containerd and one CRI-O with
// the images loaded and the simulated host, built by test/harness.
//
// It does not run Kubernetes (test/k8s does) or measure start times
// (test/e2e/cmd/bench does).
package e2e
