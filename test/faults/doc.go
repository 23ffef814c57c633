// Package faults is gpu-nri's burst-and-faults suite: bursts of GPU pods on
// the e2e test bed (test/harness: a private containerd, runc, the simulated
// GPU host) with gpu-nri killed (SIGKILL), frozen (SIGSTOP for longer than
// the runtime's request timeout) and containerd crashed and restarted in the
// middle of a burst, once failing open (NRI's default) and once failing
// closed (the default validator's required_plugins, the drop-in
// deploy/runtime/containerd/v3/20-gpu-nri-required.toml).
//
// Every pod runs one container that asks for one GPU and looks for its
// /dev/nvidiaN inside; a refused create is retried (as the kubelet does)
// until it starts. The suite reports, per phase, the GPU-less containers,
// the refusals, other CRI errors, gpu-nri's reconnect time and its RSS, open
// fds and goroutines (from its /metrics) before and after; it fails on any
// GPU-less container when gpu-nri was healthy, and under fail-closed on more
// GPU-less containers than docs/deploy.md documents for the runtime version
// (the request in flight when gpu-nri dies or freezes). Timings are
// reported, never asserted.
//
// The tests carry the build tag faults: `make test-faults` runs them (root;
// not root, they skip saying why). FAULTS_PODS (default 60) and
// FAULTS_CONCURRENCY (default 10) size each burst. A burst still running
// after FAULTS_PHASE_TIMEOUT (default 4m), or a minute before go test's
// -timeout, is stopped: its phase fails saying which CRI call each pod was
// waiting on, with the node's load, mounts, shims and the tails of
// containerd's and gpu-nri's logs. FAULTS_OUT names a file
// that receives the figures as a Markdown table; E2E_DIR is the work
// directory (default /tmp/gpu-nri-faults).
package faults
