//go:build k8s

package k8s

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/gpu-nri/gpu-nri/pkg/dra"
	"github.com/gpu-nri/gpu-nri/test/harness"
)

// testCRIO: the cluster again, with the kubelet's runtime a private CRI-O
// v1.34.0 (test/tools.sh builds it; harness.CRIO: cgroupfs, conmon, runc,
// NRI on, CDI from its own directory) instead of containerd, after the
// containerd cluster is torn down (the kubelet's dirs and ports are
// global). CRI-O reads the repository's drop-ins (deploy/runtime/crio/)
// and then the suite's, which moves NRI's socket and plugin dirs back into
// the work dir. The pods use the same CNI bridge as on containerd. Two
// accommodations of this machine (no CAP_SYS_RESOURCE, hugetlb only on the
// v2 hierarchy of a hybrid cgroup layout), which containerd makes by its
// own settings and CRI-O 1.34 has none for: the DaemonSet runs without its
// priority class (node.oomPatch) and runc without the kubelet's hugepage
// limits (test/k8s/runc-nohugetlb).
//
// Scenarios: gpu-pods (an annotated pod, an env pod and a claim pod, whose
// claim reaches gpu-nri through the marker variable: CRI-O 1.34's NRI
// v0.9.1 has no CDI devices in its container message; and CRI-O 1.34's
// fail-closed for a claim pod while gpu-nri is down) and dra (the
// containerd cluster's DRA group, unchanged).
func testCRIO(t *testing.T, n *node) {
	ctx := context.Background()
	toolBin, err := toolDir(n.repo, "test/k8s/tools.sh")
	require.NoError(t, err)
	tools := n.e.Tools
	require.True(t, tools.Crio != "" && tools.Pinns != "" && tools.Conmon != "" && tools.Podman != "",
		"CRI-O needs crio and pinns (test/tools.sh) and Debian's conmon and podman: have %+v", tools)
	runc, err := nohugetlbRunc(n)
	require.NoError(t, err)
	c := &harness.CRIO{Dir: filepath.Join(n.dir, "crio"), Tools: tools, PauseImage: harness.PauseImageRef,
		Handlers: []harness.Runtime{{Name: "runc", Binary: runc}}}
	suiteDropIn := filepath.Join(n.dir, "etc", "90-k8s-suite-private-nri.conf")
	require.NoError(t, os.WriteFile(suiteDropIn, []byte(fmt.Sprintf(`# The suite's CRI-O keeps NRI's socket and plugin dirs in its work dir.
[crio.nri]
nri_listen = %q
nri_plugin_dir = %q
nri_plugin_config_dir = %q
`, c.NRISocket(), c.NRIPluginDir(), c.NRIConfDir())), 0o644))
	c.DropIns = []string{filepath.Join(n.repo, "deploy", "runtime", "crio", "10-gpu-nri.conf"),
		filepath.Join(n.repo, "deploy", "runtime", "crio", "20-gpu-nri-required.conf"), suiteDropIn}
	c.KillStale()
	require.NoError(t, c.LoadImages(filepath.Join(n.dir, "build", "images.tar")), "the suite's images into CRI-O's storage")
	require.NoError(t, linkCNIPlugins(c.CNIBinDir()))
	require.NoError(t, c.Start(ctx, harness.StartOptions{}), "CRI-O with the repository's drop-ins\n%s", c.LogTail(20))
	// A run killed before its cleanup: the next run's newNode (killStale) stops this CRI-O.
	pidFile := filepath.Join(n.dir, "k8s", "run", "crio.pid")
	require.NoError(t, os.MkdirAll(filepath.Dir(pidFile), 0o755))
	require.NoError(t, os.WriteFile(pidFile, fmt.Appendf(nil, "%d %s", c.Pid(), tools.Crio), 0o644))
	prev := n.rt
	n.rt = c
	t.Cleanup(func() {
		// After the cluster's teardown (registered later, run first): the kubelet is
		// gone and its pods removed; Stop removes what is left and stops CRI-O.
		if os.Getenv("E2E_KEEP") == "1" {
			return
		}
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stopping CRI-O: %v", err)
		}
		n.rt = prev
		_ = os.Remove(pidFile)
		requireNoConmon(t, c.Dir)
		unmountUnder(c.Dir)
		_ = os.RemoveAll(c.Dir)
	})

	cl := startCluster(t, n, toolBin)
	out, err := cl.kubectl("get", "node", cl.nodeName, "-o", "jsonpath={.status.nodeInfo.containerRuntimeVersion}")
	require.NoError(t, err)
	require.Equal(t, "cri-o://1.34.0", out, "the kubelet runs on CRI-O")
	_, err = cl.kubectl("label", "node", cl.nodeName, "nvidia.com/gpu.present=true", "--overwrite")
	require.NoError(t, err)
	require.NoError(t, n.importPluginImage("k8s-1", n.bin))
	s := &k8sSuite{cluster: cl}

	t.Run("gpu-pods", s.testCRIOPods)
	t.Run("dra", s.testDRA)
}

// nohugetlbRunc builds test/k8s/runc-nohugetlb and returns a script running
// the node's runc through it: the suite's CRI-O runtime_path (read the
// command's doc for why this machine needs it).
func nohugetlbRunc(n *node) (string, error) {
	bin := filepath.Join(n.dir, "bin", "runc-nohugetlb")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./test/k8s/runc-nohugetlb")
	cmd.Dir = n.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building runc-nohugetlb: %w\n%s", err, out)
	}
	script := filepath.Join(n.dir, "bin", "runc-crio-k8s")
	return script, os.WriteFile(script, fmt.Appendf(nil, "#!/bin/sh\nexec %s %s \"$@\"\n", bin, n.e.Tools.Runc), 0o755)
}

// requireNoConmon fails the test when a conmon of the CRI-O in dir is still
// running after CRI-O stopped (its command line names dir).
func requireNoConmon(t *testing.T, dir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var left []string
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.HasSuffix(strings.SplitN(string(b), "\x00", 2)[0], "conmon") {
			continue
		}
		if strings.Contains(string(b), dir+"/") {
			left = append(left, strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/cmdline"))
		}
	}
	if len(left) > 0 {
		t.Errorf("conmon processes of CRI-O in %s left running: pids %v", dir, left)
	}
}

// testCRIOPods: with gpu-nri as the DRA driver on CRI-O, an annotated pod
// and an NVIDIA_VISIBLE_DEVICES pod see exactly their GPUs, and so does a
// claim pod for 2 GPUs; each final OCI spec has those nodes once and one
// hook. CRI-O resolved the kubelet's CDI names against the claim's
// names-only spec: the claim pod's spec carries each device's marker
// variable exactly once, and that is all gpu-nri was told (NRI v0.9.1).
func (s *k8sSuite) testCRIOPods(t *testing.T) {
	s.deployDRA(t)
	s.waitDevices(t, s.draDeviceNames())
	s.gpuPod(t, "default", "crio-ann", "0,2", "")
	s.gpuPod(t, "default", "crio-env", "", "1")
	s.gpuPod(t, "default", "crio-none", "", "")
	for _, p := range []struct {
		name string
		want []int
	}{{"crio-ann", []int{0, 2}}, {"crio-env", []int{1}}} {
		gpus, cuda := s.probe(t, "default", p.name)
		require.Equal(t, p.want, gpus, "pod %s", p.name)
		require.Equal(t, s.cudaOK(len(p.want)), cuda, "pod %s", p.name)
		specGPU, hooks := specGPUs(s.spec(t, "default", p.name))
		slices.Sort(specGPU)
		require.Equal(t, p.want, specGPU, "pod %s: GPU nodes in the OCI spec, each once", p.name)
		require.Equal(t, []string{s.hookBin()}, hooks, "pod %s: one createContainer hook", p.name)
	}
	gpus, _ := s.probe(t, "default", "crio-none")
	require.Equal(t, []int{}, gpus)
	specGPU, hooks := specGPUs(s.spec(t, "default", "crio-none"))
	require.Equal(t, []int{}, specGPU, "no GPU nodes without a request")
	require.Equal(t, []string{}, hooks, "no hook without a request")

	s.claimPod(t, "dra", "crio-two", 2, "", 0)
	want := s.checkClaimPod(t, "dra", "crio-two", 2)
	_, uid := s.allocated(t, "dra", "crio-two")
	env := s.spec(t, "dra", "crio-two").Process.Env
	r := strings.NewReplacer("-", "_", ".", "_")
	var markers []string
	for _, kv := range env {
		if strings.HasPrefix(kv, dra.MarkerEnvPrefix) {
			markers = append(markers, kv)
		}
	}
	var wantMarkers []string
	for _, g := range want {
		dev := fmt.Sprintf("gpu-%d", g)
		wantMarkers = append(wantMarkers, fmt.Sprintf("%s%s_%s=%s/claim=%s-%s", dra.MarkerEnvPrefix, r.Replace(uid), r.Replace(dev), draDriver, uid, dev))
	}
	require.ElementsMatch(t, wantMarkers, markers,
		"CRI-O injected the claim spec's marker variables (its only edits), once each: gpu-nri found the claim by them")
	require.Len(t, s.checkpointClaims(t), 1)

	t.Run("fail-closed while gpu-nri is down", s.testCRIOFailClosed)
}

// testCRIOFailClosed: a claim prepared, then gpu-nri taken off the node
// (the DaemonSet's pod selects no node) before the claim pod's main
// container is created. CRI-O 1.34 has no NRI default validator
// (20-gpu-nri-required.conf is ignored), so it creates the container
// without gpu-nri's answer; the claim spec's guard mount (dra.GuardDir,
// from a source that does not exist, which only gpu-nri's answer removes)
// makes runc fail it, with the guard's path in the kubelet's
// CreateContainerError, instead of starting it without its GPU. Once
// gpu-nri is back the kubelet's retry gets the claim's GPU.
func (s *k8sSuite) testCRIOFailClosed(t *testing.T) {
	s.claimPod(t, "dra", "failclosed", 1, "", 20)
	s.waitInitRunning(t, "dra", "failclosed")
	_, uid := s.allocated(t, "dra", "failclosed")
	require.Contains(t, s.checkpointClaims(t), uid, "prepared before the init container ran")
	_, err := s.kubectl("-n", "gpu-nri", "patch", "ds", "gpu-nri", "--type=merge",
		"-p", `{"spec":{"template":{"spec":{"nodeSelector":{"gpu-nri.io/test-no-node":"none"}}}}}`)
	require.NoError(t, err)
	restore := func() error {
		_, _ = s.kubectl("-n", "gpu-nri", "patch", "ds", "gpu-nri", "--type=json",
			"-p", `[{"op":"remove","path":"/spec/template/spec/nodeSelector/gpu-nri.io~1test-no-node"}]`)
		return s.dsReady(120 * time.Second)
	}
	restored := false
	t.Cleanup(func() { // before the pod's deletion (registered earlier): unprepare needs the driver
		if !restored {
			if err := restore(); err != nil {
				t.Errorf("gpu-nri back: %v", err)
			}
		}
	})
	require.NoError(t, eventually(60*time.Second, func() error {
		var l corev1.PodList
		if err := s.getJSON(&l, "-n", "gpu-nri", "get", "pods"); err != nil {
			return err
		}
		if len(l.Items) != 0 {
			return fmt.Errorf("%d gpu-nri pod(s) left", len(l.Items))
		}
		return nil
	}), "gpu-nri off the node")
	var msg string
	require.NoError(t, eventually(90*time.Second, func() error {
		var p corev1.Pod
		if err := s.getJSON(&p, "-n", "dra", "get", "pod", "failclosed"); err != nil {
			return err
		}
		if len(p.Status.ContainerStatuses) != 1 {
			return fmt.Errorf("no main container status yet")
		}
		st := p.Status.ContainerStatuses[0].State
		if st.Running != nil {
			msg = "" // started: fail-open
			return nil
		}
		if st.Waiting == nil || st.Waiting.Reason != "CreateContainerError" {
			return fmt.Errorf("main container not failed yet: %+v", st)
		}
		msg = st.Waiting.Message
		return nil
	}), "the claim container fails while gpu-nri is down")
	require.NotEmpty(t, msg, "the claim container started while gpu-nri was down (fail-open)")
	t.Logf("CRI-O's CreateContainerError while gpu-nri is down: %s", msg)
	require.Contains(t, msg, dra.GuardHostPath, "the runtime's error names the guard's source")
	require.NoError(t, restore(), "gpu-nri back on the node")
	restored = true
	require.NoError(t, eventually(120*time.Second, func() error {
		var p corev1.Pod
		if err := s.getJSON(&p, "-n", "dra", "get", "pod", "failclosed"); err != nil {
			return err
		}
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("main container not running: %+v", p.Status.ContainerStatuses)
		}
		return nil
	}), "the kubelet's retry starts the container once gpu-nri answers")
	s.checkClaimPod(t, "dra", "failclosed", 1)
}
