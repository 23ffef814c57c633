//go:build k8s

package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/harness"
)

// TestKubernetes proves the deployment files on a real node (`make
// test-k8s`, root only, build tag k8s):
//
//   - dropins: the repository's containerd drop-ins (v2 and v3 configs)
//     merged by a real containerd, which starts with them;
//   - runtime: fail-closed without gpu-nri and `gpu-nri doctor` against the
//     containerd running the v3 drop-ins (K8S_STOP_AFTER=runtime, or
//     -run 'TestKubernetes/(dropins|runtime)', stops here);
//   - cluster: a single-node Kubernetes v1.37 on that containerd, and one
//     subtest per scenario: kubectl apply -k, GPU pods, readiness and
//     metrics across a containerd restart, a rolling update, the strict
//     overlay and helm install;
//   - crio: the cluster again after that one is torn down, with the kubelet
//     on a private CRI-O v1.34.0 (crio_test.go): GPU pods and the DRA group.
//
// Fixtures: the node (simulated GPU host, containerd with the v3 drop-ins,
// images) for runtime and cluster, and the cluster for its scenarios. Each
// cluster scenario deploys gpu-nri itself and removes it (and its pods) in
// its cleanup, so scenarios run alone (-run TestKubernetes/cluster/helm) or
// in any order.
//
// Environment: K8S_E2E_DIR (work dir, default /tmp/gpu-nri-k8s), E2E_KEEP=1
// (leave the cluster running), K8S_STOP_AFTER=runtime.
func TestKubernetes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the Kubernetes suite needs root (it runs containerd, runc, a kubelet and mknod): run `sudo make test-k8s`")
	}
	dir := os.Getenv("K8S_E2E_DIR")
	if dir == "" {
		dir = "/tmp/gpu-nri-k8s"
	}
	n := newNode(t, dir)
	require.NoError(t, n.stopContainerd(false), "stopping the harness's containerd (no drop-ins)")

	t.Run("dropins", func(t *testing.T) { testDropins(t, n) })

	require.NoError(t, n.useDropins("v3"))
	require.NoError(t, n.startContainerd(), "containerd with the v3 drop-ins")

	t.Run("runtime", func(t *testing.T) { testRuntime(t, n) })

	if os.Getenv("K8S_STOP_AFTER") == "runtime" {
		t.Log("K8S_STOP_AFTER=runtime: no cluster")
		return
	}
	t.Run("cluster", func(t *testing.T) { testCluster(t, n) })
	t.Run("crio", func(t *testing.T) { testCRIO(t, n) })
}

// testDropins: containerd's own merge of the drop-ins, and a start with each.
func testDropins(t *testing.T, n *node) {
	for _, v := range []string{"v2", "v3"} {
		t.Run(v, func(t *testing.T) {
			require.NoError(t, n.useDropins(v))
			dump, err := n.run("containerd", "--config", n.ctdConfig(), "config", "dump")
			require.NoError(t, err)
			for name, want := range map[string]string{
				"requires gpu-nri":        "required_plugins = ['gpu-nri']",
				"tolerate annotation":     "tolerate_missing_plugins_annotation = 'tolerate-missing-plugins.gpu-nri.io'",
				"private NRI socket kept": "socket_path = '" + n.nriSocket() + "'",
			} {
				require.Contains(t, dump, want, "merged config: %s", name)
			}
			require.NoError(t, n.startContainerd(), "containerd starts with the %s drop-ins", v)
			t.Cleanup(func() { _ = n.stopContainerd(false) })
			require.FileExists(t, n.nriSocket())
		})
	}
}

// testRuntime: fail-closed and doctor on the containerd with the v3 drop-ins.
func testRuntime(t *testing.T, n *node) {
	t.Run("fail-closed/refused without gpu-nri", func(t *testing.T) {
		_, err := n.runInPod("fc-plain", "echo started", nil)
		var ce *harness.CreateError
		require.ErrorAs(t, err, &ce)
		require.Contains(t, ce.Message, `required plugin "gpu-nri" not present`)
	})
	t.Run("fail-closed/tolerate annotation starts", func(t *testing.T) {
		out, err := n.runInPod("fc-tol", "echo started", map[string]string{"tolerate-missing-plugins.gpu-nri.io": "true"})
		require.NoError(t, err)
		require.Equal(t, "started\n", out)
	})

	pc := n.e.PluginConfig("hook")
	pc.MetricsAddress = "127.0.0.1:19477"
	text, err := pc.YAML()
	require.NoError(t, err)
	cfg := filepath.Join(n.dir, "etc", "doctor.yaml")
	require.NoError(t, os.WriteFile(cfg, text, 0o644))
	doctor := func() (string, int) {
		out, stderr, err := runCmd(n.env, "", n.bin, "doctor", "--config", cfg, "--containerd-config", n.ctdConfig(), "--cri-socket", n.e.Containerd.Socket())
		return out + stderr, exitCode(err)
	}
	d := n.dropinFiles("v3")
	t.Run("doctor/gpu-nri down", func(t *testing.T) {
		out, rc := doctor()
		for _, want := range []string{
			fmt.Sprintf("(imports %s, %s), version 3", d[0], d[1]),
			`containerd requires plugin "gpu-nri" in its configuration`,
			"has NRI's default validator: fail-closed", // the suite's containerd is 2.2+
			"socket " + n.nriSocket() + " (matches plugin.socket)",
			"accepts connections",
			"gpu-nri's /readyz at http://127.0.0.1:19477/readyz did not answer",
		} {
			require.Contains(t, out, want)
		}
		require.Equal(t, 1, rc, "doctor exits 1 while gpu-nri is down:\n%s", out)
	})
	t.Run("doctor/gpu-nri running", func(t *testing.T) {
		p, err := n.e.StartPlugin(context.Background(), "doctor", pc)
		require.NoError(t, err, "gpu-nri registers with this containerd")
		t.Cleanup(func() { _ = p.Stop() })
		out, rc := doctor()
		require.Contains(t, out, "gpu-nri is registered with the runtime")
		require.Equal(t, 0, rc, "doctor exits 0 with gpu-nri running:\n%s", out)
		got, err := n.runInPod("fc-gpu", "echo started", nil)
		require.NoError(t, err, "with gpu-nri registered the required plugin is present")
		require.Equal(t, "started\n", got)
	})
}

// exitCode is the exit status a runCmd error carries (0 for nil, -1 when it did not run).
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		return -1
	}
}

func metaType(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func objectMeta(name, ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns}
}

func ptr[T any](v T) *T { return &v }

// ---------------------------------------------------------------- cluster

// k8sSuite is the cluster fixture its scenarios share.
type k8sSuite struct {
	*cluster
	// libraryDir, when set, is injection.libraryDir of the overlays the
	// suite applies, a host path under the test bed's shared mount
	// (testLibraryDir).
	libraryDir string
}

func testCluster(t *testing.T, n *node) {
	toolBin, err := toolDir(n.repo, "test/k8s/tools.sh")
	require.NoError(t, err)
	_, err = os.Stat("/usr/lib/cni/bridge")
	require.NoError(t, err, "the CNI bridge plugin (containernetworking-plugins, installed by test/k8s/tools.sh)")
	c := startCluster(t, n, toolBin)
	out, err := c.kubectl("version", "-o", "json")
	require.NoError(t, err)
	require.Contains(t, out, `"gitVersion": "`+kubeVersion+`"`)
	_, err = c.kubectl("label", "node", c.nodeName, "nvidia.com/gpu.present=true", "--overwrite")
	require.NoError(t, err)
	require.NoError(t, n.importPluginImage("k8s-1", n.bin))
	require.NoError(t, n.importPluginImage("k8s-2", n.bin2))
	s := &k8sSuite{cluster: c}

	t.Run("apply-k", s.testApply)
	t.Run("gpu-pods", s.testGPUPods)
	t.Run("readiness-metrics", s.testReadiness)
	t.Run("rolling-update", s.testRollingUpdate)
	t.Run("strict", s.testStrict)
	t.Run("helm", s.testHelm)
	t.Run("device-plugin", s.testDevicePlugin)
	t.Run("dra", s.testDRA)
	t.Run("dra-helm", s.testDRAHelm)
	t.Run("library-dir", s.testLibraryDir)
}

// testConfig is the overlay's config.yaml pointed at the simulated host (host
// root at /host in the pod), the work dir's hook and CDI dirs and debug logs;
// its requirements and policy stay as they are.
func (s *k8sSuite) testConfig(overlay string) ([]byte, error) {
	src := filepath.Join(s.n.repo, "deploy", "kubernetes", overlay, "config.yaml")
	if _, err := os.Stat(src); err != nil {
		src = filepath.Join(s.n.repo, "deploy", "kubernetes", "base", "config.yaml")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	host, err := s.n.hostSection()
	if err != nil {
		return nil, err
	}
	host["root"] = "/host"
	cfg["host"] = host
	cfg["plugin"] = map[string]any{"socket": "/var/run/nri/nri.sock", "reconnectMin": "200ms", "reconnectMax": "1s"}
	inj := map[string]any{"hookPath": s.hookBin(), "cdiSpecDirs": []string{s.n.cdiDir()}}
	if s.libraryDir != "" {
		inj["libraryDir"] = s.libraryDir
	}
	cfg["injection"] = inj
	cfg["log"] = map[string]any{"level": "debug", "format": "json"}
	cfg["metrics"] = map[string]any{"address": ":9494"}
	return yaml.Marshal(cfg)
}

// hookBin is the host path of the hook binary the init container installs
// (injection.hookPath); fullBin is the gpu-nri it installs beside it.
func (s *k8sSuite) hookBin() string { return filepath.Join(s.n.dir, "hookbin", "gpu-nri-hook") }

func (s *k8sSuite) fullBin() string { return filepath.Join(s.n.dir, "hookbin", "gpu-nri") }

// removeInstalled removes what the init container installs on the host.
func (s *k8sSuite) removeInstalled() {
	_ = os.Remove(s.hookBin())
	_ = os.Remove(s.fullBin())
}

// checkInstalled checks that the init container installed the image's
// gpu-nri-hook at injection.hookPath and its gpu-nri beside it, both 0755.
func (s *k8sSuite) checkInstalled(t *testing.T, what string) {
	t.Helper()
	for _, b := range []struct{ host, image string }{{s.hookBin(), s.n.e.Bins.Hook}, {s.fullBin(), s.n.bin}} {
		want, err := os.ReadFile(b.image)
		require.NoError(t, err)
		got, err := os.ReadFile(b.host)
		require.NoError(t, err, "%s: the init container installed %s", what, b.host)
		require.True(t, bytes.Equal(want, got), "%s: %s is the image's %s", what, b.host, filepath.Base(b.image))
		st, err := os.Stat(b.host)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o755), st.Mode().Perm(), "%s: mode of %s", what, b.host)
	}
}

// makeOverlay writes a kustomization on top of deploy/kubernetes/OVERLAY that
// only moves host paths into the work dir, uses the imported image TAG, and
// turns the host root's mount propagation off (a private / has no
// HostToContainer). It also mounts the simulated host's proc root at its
// own path: the stand-in nvidia-smi (test/csrc/nvidia-smi.c) reads the GPUs
// there, by a path compiled in, where the real one asks the kernel, which
// the pod shares with the host. gpu-nri itself still reads every driver
// file, nvidia-smi and its loader through host.root (/host).
func (s *k8sSuite) makeOverlay(name, overlay, tag string) (string, error) {
	d := filepath.Join(s.dir, "ov-"+name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(d, filepath.Join(s.n.repo, "deploy", "kubernetes", overlay))
	if err != nil {
		return "", err
	}
	cfg, err := s.testConfig(overlay)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(d, "config.yaml"), cfg, 0o644); err != nil {
		return "", err
	}
	rp := s.n.runtimePatch(filepath.Dir(s.hookBin()))
	if s.libraryDir != "" { // the overlay's /run/gpu-nri/lib moved under the test bed's shared mount
		rp.volumes += fmt.Sprintf("          - {name: library-dir, hostPath: {path: %s, type: DirectoryOrCreate}}\n", s.libraryDir)
		rp.mounts += "            - {mountPath: /host/run/gpu-nri/lib, $patch: delete}\n"
		rp.mounts += fmt.Sprintf("            - {name: library-dir, mountPath: /host%s, mountPropagation: Bidirectional}\n", s.libraryDir)
	}
	k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
images:
- {name: ghcr.io/gpu-nri/gpu-nri, newName: %s, newTag: %q}
configMapGenerator:
- name: gpu-nri-config
  behavior: replace
  files: [config.yaml]
  options: {disableNameSuffixHash: true}
patches:
- patch: |-
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: gpu-nri, namespace: gpu-nri}
    spec:
      template:
        spec:
          terminationGracePeriodSeconds: 3
%[7]s          volumes:
          - {name: nri, hostPath: {path: %[4]s, type: DirectoryOrCreate}}
          - {name: hook-bin, hostPath: {path: %[5]s, type: DirectoryOrCreate}}
          - {name: sim-proc, hostPath: {path: %[6]s, type: Directory}}
%[8]s          containers:
          - name: gpu-nri
            volumeMounts:
%[9]s            - {name: sim-proc, mountPath: %[6]s, readOnly: true}
`, rel, pluginImage, tag, s.n.nriDir(), filepath.Dir(s.hookBin()), s.n.host.Config.ProcRoot, rp.pod, rp.volumes, rp.mounts)
	return d, os.WriteFile(filepath.Join(d, "kustomization.yaml"), []byte(k), 0o644)
}

// apply runs kubectl apply -k of a test overlay and registers its removal
// (waiting until the namespace is gone, so the next scenario starts clean).
func (s *k8sSuite) apply(t *testing.T, name, overlay, tag string) string {
	t.Helper()
	ov, err := s.makeOverlay(name, overlay, tag)
	require.NoError(t, err)
	out, err := s.kubectl("apply", "-k", ov)
	t.Cleanup(func() {
		_, _ = s.kubectl("delete", "-k", ov, "--ignore-not-found", "--wait=true", "--timeout=90s")
		s.waitGone(t, "ns", "gpu-nri")
	})
	require.NoError(t, err, "kubectl apply -k %s", overlay)
	return out
}

// waitGone waits until kubectl get KIND NAME says NotFound.
func (s *k8sSuite) waitGone(t *testing.T, args ...string) {
	t.Helper()
	err := eventually(120*time.Second, func() error {
		_, err := s.kubectl(append([]string{"get"}, args...)...)
		if err == nil {
			return fmt.Errorf("%s still exists", strings.Join(args, " "))
		}
		if !strings.Contains(err.Error(), "NotFound") {
			return err
		}
		return nil
	})
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// dsReady waits until the DaemonSet is rolled out and its pod Ready.
func (s *k8sSuite) dsReady(timeout time.Duration) error {
	return eventually(timeout, func() error {
		_, err := s.kubectl("-n", "gpu-nri", "rollout", "status", "ds/gpu-nri", "--timeout=2s")
		return err
	})
}

// deploy is apply + rollout + registration: the scenarios' gpu-nri.
func (s *k8sSuite) deploy(t *testing.T, name, overlay, tag string) {
	t.Helper()
	before := s.n.registrations()
	s.apply(t, name, overlay, tag)
	require.NoError(t, s.dsReady(180*time.Second), "DaemonSet Ready\n%s", s.describePlugin())
	require.NoError(t, s.n.waitRegistered(before, 30*time.Second))
}

func (s *k8sSuite) describePlugin() string {
	out, _ := s.kubectl("-n", "gpu-nri", "describe", "pods")
	return out
}

// pluginPod is the name of the Running gpu-nri pod.
func (s *k8sSuite) pluginPod(t *testing.T) corev1.Pod {
	t.Helper()
	var l corev1.PodList
	require.NoError(t, s.getJSON(&l, "-n", "gpu-nri", "get", "pods", "-l", "app.kubernetes.io/name=gpu-nri"))
	for _, p := range l.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p
		}
	}
	t.Fatalf("no Running gpu-nri pod among %d", len(l.Items))
	return corev1.Pod{}
}

// probeScript prints nodeN=present|absent for GPUs 0..3, runs cudatest.
const probeScript = `for n in 0 1 2 3; do [ -e /dev/nvidia$n ] && echo node$n=present || echo node$n=absent; done; cudatest libcuda.so.1`

// gpuPod creates a pod running the probe, then sleeping; ann is the
// gpus.gpu-nri.io/pod annotation and env NVIDIA_VISIBLE_DEVICES (both
// optional). The pod is deleted in the cleanup.
func (s *k8sSuite) gpuPod(t *testing.T, ns, name, ann, env string) {
	t.Helper()
	var vars []corev1.EnvVar
	if env != "" {
		vars = []corev1.EnvVar{{Name: "NVIDIA_VISIBLE_DEVICES", Value: env}}
	}
	s.gpuPodEnv(t, ns, name, ann, vars)
}

// gpuPodEnv is gpuPod with the container's environment given whole.
func (s *k8sSuite) gpuPodEnv(t *testing.T, ns, name, ann string, env []corev1.EnvVar) {
	t.Helper()
	s.namespace(t, ns)
	pod := probePod(ns, name)
	if ann != "" {
		pod.Annotations = map[string]string{"gpus.gpu-nri.io/pod": ann}
	}
	pod.Spec.Containers[0].Env = env
	s.applyObjects(t, "pod-"+ns+"-"+name+".yaml", pod)
}

// probePod is the suite's probe pod ns/name: one container "c" of the glibc
// image running probeScript, then sleeping; no GPU request (the callers
// add theirs).
func probePod(ns, name string) corev1.Pod {
	return corev1.Pod{
		TypeMeta:   metaType("v1", "Pod"),
		ObjectMeta: objectMeta(name, ns),
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr(int64(1)),
			RestartPolicy:                 corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "c", Image: harness.ImageRef("glibc"), ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c", probeScript + "; echo probe-done; exec sleep 3600"},
			}},
		},
	}
}

// namespace creates ns unless it exists, and deletes it (waiting) in the cleanup.
func (s *k8sSuite) namespace(t *testing.T, ns string) {
	t.Helper()
	if _, err := s.kubectl("get", "ns", ns); err == nil {
		return
	}
	_, err := s.kubectl("create", "ns", ns)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = s.kubectl("delete", "ns", ns, "--wait=false")
		s.waitGone(t, "ns", ns)
	})
}

// probe waits for the pod's probe output and returns the GPUs it saw and its cudatest line.
func (s *k8sSuite) probe(t *testing.T, ns, name string) ([]int, string) {
	t.Helper()
	var out string
	err := eventually(120*time.Second, func() error {
		var err error
		out, err = s.kubectl("-n", ns, "logs", name)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "probe-done") {
			return fmt.Errorf("no probe-done in %q", out)
		}
		return nil
	})
	if err != nil {
		d, _ := s.kubectl("-n", ns, "describe", "pod", name)
		t.Fatalf("pod %s/%s: %v\n%s", ns, name, err, d)
	}
	return parseProbe(t, out)
}

// parseProbe reads the probe's lines: every GPU 0..3 exactly once.
func parseProbe(t *testing.T, out string) ([]int, string) {
	t.Helper()
	gpus := []int{}
	seen := 0
	cuda := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "dlopen=") {
			cuda = l
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(k, "node") {
			continue
		}
		i, err := strconv.Atoi(strings.TrimPrefix(k, "node"))
		require.NoError(t, err, "probe line %q", l)
		seen++
		switch v {
		case "present":
			gpus = append(gpus, i)
		case "absent":
		default:
			t.Fatalf("probe line %q", l)
		}
	}
	require.Equal(t, 4, seen, "probe output:\n%s", out)
	return gpus, cuda
}

func (s *k8sSuite) cudaOK(devices int) string {
	return fmt.Sprintf("dlopen=ok lib=libcuda.so.1 devices=%d cuda=%d", devices, s.n.host.CUDAAPIVersion)
}

// testApply: kubectl apply -k of the standalone overlay, the DaemonSet
// rolls out, gpu-nri registers from its pod and the init container installs
// the hook binary.
func (s *k8sSuite) testApply(t *testing.T) {
	s.removeInstalled()
	before := s.n.registrations()
	out := s.apply(t, "standalone", "overlays/standalone", "k8s-1")
	require.ElementsMatch(t, []string{
		"namespace/gpu-nri created", "serviceaccount/gpu-nri created",
		"configmap/gpu-nri-config created", "daemonset.apps/gpu-nri created",
	}, strings.Split(strings.TrimSpace(out), "\n"))
	require.NoError(t, s.dsReady(180*time.Second), "DaemonSet Ready\n%s", s.describePlugin())
	require.NoError(t, s.n.waitRegistered(before, 30*time.Second), "gpu-nri registered with containerd from its pod")
	s.checkInstalled(t, "apply -k")
}

// spec is the final OCI spec (after NRI) of the pod's container, from the cluster's runtime over CRI.
func (s *k8sSuite) spec(t *testing.T, ns, name string) *rspec.Spec {
	t.Helper()
	var p corev1.Pod
	require.NoError(t, s.getJSON(&p, "-n", ns, "get", "pod", name))
	require.Len(t, p.Status.ContainerStatuses, 1)
	id, err := s.n.containerID(p.Status.ContainerStatuses[0].ContainerID)
	require.NoError(t, err)
	cri, err := harness.DialCRI(s.n.rt.Socket())
	require.NoError(t, err)
	defer cri.Close()
	sp, err := cri.Spec(context.Background(), id)
	require.NoError(t, err)
	return sp
}

// specGPUs are the GPU device nodes (/dev/nvidiaN) and the createContainer
// hook paths of a spec.
func specGPUs(sp *rspec.Spec) ([]int, []string) {
	gpus := []int{}
	if sp.Linux != nil {
		for _, d := range sp.Linux.Devices {
			if i, err := strconv.Atoi(strings.TrimPrefix(d.Path, "/dev/nvidia")); err == nil && strings.HasPrefix(d.Path, "/dev/nvidia") {
				gpus = append(gpus, i)
			}
		}
	}
	hooks := []string{}
	if sp.Hooks != nil {
		for _, h := range sp.Hooks.CreateContainer {
			hooks = append(hooks, h.Path)
		}
	}
	return gpus, hooks
}

// testGPUPods: on the Debian-packaged driver (libraries in nvidia/current,
// nvidia-smi through /etc/alternatives), an annotated pod whose image asks
// NVIDIA_REQUIRE_CUDA as nvidia/cuda images do sees exactly its GPUs, with
// the libraries mounted from nvidia/current (the requirement is verified
// with the driver facts gpu-nri learned from nvidia-smi inside host.root,
// not refused as unverifiable); a pod without a request sees none; the
// final OCI specs carry exactly those nodes and the hook.
func (s *k8sSuite) testGPUPods(t *testing.T) {
	s.deploy(t, "standalone", "overlays/standalone", "k8s-1")
	s.gpuPodEnv(t, "default", "gpu-02", "0,2", []corev1.EnvVar{
		{Name: "CUDA_VERSION", Value: "12.0.1"}, {Name: "NVIDIA_REQUIRE_CUDA", Value: "cuda>=12.0"}})
	s.gpuPod(t, "default", "no-gpu", "", "")
	gpus, cuda := s.probe(t, "default", "gpu-02")
	require.Equal(t, []int{0, 2}, gpus)
	require.Equal(t, s.cudaOK(2), cuda)
	mountinfo, err := s.kubectl("-n", "default", "exec", "gpu-02", "--", "cat", "/proc/self/mountinfo")
	require.NoError(t, err)
	libs := s.n.host.LibrariesFor(inventory.Compute)
	require.NotEmpty(t, libs)
	for _, f := range libs {
		require.Contains(t, f.Path, "/nvidia/current/", "the simulated host is in Debian's layout")
		require.True(t, mountedFrom(mountinfo, f.Path), "%s is mounted into the container from the driver root's %s:\n%s", f.SONAME, f.Path, mountinfo)
	}
	specGPU, hooks := specGPUs(s.spec(t, "default", "gpu-02"))
	require.ElementsMatch(t, []int{0, 2}, specGPU, "GPU nodes in the OCI spec")
	require.Equal(t, []string{s.hookBin()}, hooks, "createContainer hooks in the OCI spec")
	gpus, cuda = s.probe(t, "default", "no-gpu")
	require.Equal(t, []int{}, gpus)
	specGPU, hooks = specGPUs(s.spec(t, "default", "no-gpu"))
	require.Equal(t, []int{}, specGPU, "no GPU nodes in the OCI spec without a request")
	require.Equal(t, []string{}, hooks, "no hook without a request")
	require.Equal(t, "dlopen=FAIL libcuda.so.1: cannot open shared object file: No such file or directory", cuda)
}

// mountedFrom tells whether a mount in mountinfo (a container's
// /proc/self/mountinfo) has its root at hostPath: the path ends with it
// (the root is relative to the source filesystem, which may be mounted
// below the host's /).
func mountedFrom(mountinfo, hostPath string) bool {
	for _, l := range strings.Split(mountinfo, "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasSuffix(f[3], hostPath) {
			return true
		}
	}
	return false
}

func httpGet(url string) (int, string, error) {
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric reads one sample of gpu-nri's /metrics (0 when absent).
func metric(t *testing.T, name string) float64 {
	t.Helper()
	code, body, err := httpGet(metricsURL + "/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	for _, l := range strings.Split(body, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == name {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, "metric line %q", l)
			return f
		}
	}
	return 0
}

// testReadiness: health and readiness endpoints, counters, and /readyz
// following containerd going away and coming back.
func (s *k8sSuite) testReadiness(t *testing.T) {
	s.deploy(t, "standalone", "overlays/standalone", "k8s-1")
	for _, ep := range []string{"/healthz", "/readyz"} {
		code, body, err := httpGet(metricsURL + ep)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, ep)
		require.Equal(t, "ok", strings.TrimSpace(body), ep)
	}
	require.Equal(t, 1.0, metric(t, "gpu_nri_nri_connected"))
	inj0 := metric(t, `gpu_nri_containers_total{outcome="injected"}`)
	dev0 := metric(t, "gpu_nri_devices_injected_total")
	s.gpuPod(t, "default", "gpu-metrics", "1", "")
	gpus, _ := s.probe(t, "default", "gpu-metrics")
	require.Equal(t, []int{1}, gpus)
	require.Equal(t, inj0+1, metric(t, `gpu_nri_containers_total{outcome="injected"}`), "one more container injected")
	require.Equal(t, dev0+1, metric(t, "gpu_nri_devices_injected_total"), "one more device injected")
	var ready corev1.ConditionStatus
	for _, c := range s.pluginPod(t).Status.Conditions {
		if c.Type == corev1.PodReady {
			ready = c.Status
		}
	}
	require.Equal(t, corev1.ConditionTrue, ready, "the pod's Ready condition (its readiness probe is /readyz)")
	require.Equal(t, 0.0, metric(t, "gpu_nri_nri_reconnects_total"))

	// containerd killed: the NRI socket goes away; the pod mounts its directory.
	require.NoError(t, s.n.stopContainerd(true))
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = s.n.startContainerd()
		}
	})
	require.NoError(t, eventually(20*time.Second, func() error {
		code, _, err := httpGet(metricsURL + "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz %d", code)
		}
		return nil
	}), "/readyz is 503 while the runtime is gone")
	require.NoError(t, s.n.startContainerd())
	restarted = true
	require.NoError(t, eventually(60*time.Second, func() error { return httpOK(metricsURL + "/readyz") }),
		"/readyz ready again after the runtime restarted (reconnected through the mounted directory)")
	require.GreaterOrEqual(t, metric(t, "gpu_nri_nri_reconnects_total"), 1.0)
	require.Equal(t, 1.0, metric(t, "gpu_nri_nri_connected"))
}

// testRollingUpdate: kubectl set image to a second build; a running GPU pod
// keeps its devices, the hook on the host is the new build, and a pod created
// while the old gpu-nri is terminating starts once, with its GPUs (never
// without: fail-closed makes the runtime refuse it until gpu-nri is back).
func (s *k8sSuite) testRollingUpdate(t *testing.T) {
	s.deploy(t, "standalone", "overlays/standalone", "k8s-1")
	s.gpuPod(t, "default", "keep-02", "0,2", "")
	gpus, _ := s.probe(t, "default", "keep-02")
	require.Equal(t, []int{0, 2}, gpus)
	old := s.pluginPod(t).Name
	_, err := s.kubectl("-n", "gpu-nri", "set", "image", "ds/gpu-nri",
		"gpu-nri="+pluginImage+":k8s-2", "install-hook="+pluginImage+":k8s-2")
	require.NoError(t, err)
	require.NoError(t, eventually(60*time.Second, func() error {
		var p corev1.Pod
		if err := s.getJSON(&p, "-n", "gpu-nri", "get", "pod", old); err != nil {
			if strings.Contains(err.Error(), "NotFound") {
				return nil
			}
			return err
		}
		if p.DeletionTimestamp == nil {
			return fmt.Errorf("pod %s not terminating yet", old)
		}
		return nil
	}))
	s.gpuPod(t, "default", "during-roll", "0,2", "")
	require.NoError(t, s.dsReady(180*time.Second), "roll-out to k8s-2\n%s", s.describePlugin())
	var ds appsv1.DaemonSet
	require.NoError(t, s.getJSON(&ds, "-n", "gpu-nri", "get", "ds", "gpu-nri"))
	images := []string{}
	for _, c := range append(ds.Spec.Template.Spec.InitContainers, ds.Spec.Template.Spec.Containers...) {
		images = append(images, c.Image)
	}
	require.Equal(t, []string{pluginImage + ":k8s-2", pluginImage + ":k8s-2"}, images)
	require.NotEqual(t, old, s.pluginPod(t).Name)

	v, err := s.tool(s.fullBin(), "version")
	require.NoError(t, err)
	require.Equal(t, "gpu-nri k8s-test-2", strings.SplitN(v, "\n", 2)[0], "the gpu-nri binary on the host is the new build")
	_, err = os.Stat(s.hookBin())
	require.NoError(t, err, "the new init container installed the hook binary")

	out, err := s.kubectl("-n", "default", "exec", "keep-02", "--", "sh", "-c", probeScript)
	require.NoError(t, err)
	gpus, cuda := parseProbe(t, out)
	require.Equal(t, []int{0, 2}, gpus, "the running pod keeps its devices")
	require.Equal(t, s.cudaOK(2), cuda)

	gpus, cuda = s.probe(t, "default", "during-roll")
	require.Equal(t, []int{0, 2}, gpus, "the pod created during the roll got its GPUs")
	require.Equal(t, s.cudaOK(2), cuda)
	var p corev1.Pod
	require.NoError(t, s.getJSON(&p, "-n", "default", "get", "pod", "during-roll"))
	require.Len(t, p.Status.ContainerStatuses, 1)
	require.Equal(t, int32(0), p.Status.ContainerStatuses[0].RestartCount, "started once")
}

// testStrict: the kubernetes-strict overlay refuses gpu-nri annotations and
// NVIDIA_VISIBLE_DEVICES outside kube-system, naming the rule.
func (s *k8sSuite) testStrict(t *testing.T) {
	s.deploy(t, "strict", "overlays/kubernetes-strict", "k8s-1")
	s.namespace(t, "team-a")
	for _, tc := range []struct{ name, ann, env, rule string }{
		{name: "strict-ann", ann: "0", rule: "policy.sources.annotation"},
		{name: "strict-env", env: "0", rule: "policy.sources.env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.gpuPod(t, "team-a", tc.name, tc.ann, tc.env)
			var st corev1.ContainerStateWaiting
			err := eventually(90*time.Second, func() error {
				var p corev1.Pod
				if err := s.getJSON(&p, "-n", "team-a", "get", "pod", tc.name); err != nil {
					return err
				}
				if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
					return fmt.Errorf("container state %+v", p.Status.ContainerStatuses)
				}
				st = *p.Status.ContainerStatuses[0].State.Waiting
				if st.Reason != "CreateContainerError" {
					return fmt.Errorf("waiting: %s", st.Reason)
				}
				return nil
			})
			require.NoError(t, err, "the pod does not start")
			require.Contains(t, st.Message, tc.rule, "the refusal names the rule")
			d, err := s.kubectl("-n", "team-a", "describe", "pod", tc.name)
			require.NoError(t, err)
			require.Contains(t, d, tc.rule, "kubectl describe shows the refusal")
		})
	}
}

// helmValues writes the chart values the suite installs with (the plugin
// image, the node's NRI socket, hook dir and simulated host, containerd's
// CDI dir), plus extra top-level values, to s.dir/name and returns its path.
func (s *k8sSuite) helmValues(t *testing.T, name string, extra map[string]any) string {
	t.Helper()
	host, err := s.n.hostSection()
	require.NoError(t, err)
	host["root"] = "/host"
	values := map[string]any{
		"image":        map[string]any{"repository": pluginImage, "tag": "k8s-1"},
		"nriSocketDir": s.n.nriDir(),
		"hookDir":      filepath.Dir(s.hookBin()),
		"hostRoot":     map[string]any{"mountPropagation": "None"},
		"config": map[string]any{
			"host":      host,
			"plugin":    map[string]any{"reconnectMin": "200ms", "reconnectMax": "1s"},
			"injection": map[string]any{"cdiSpecDirs": []string{s.n.cdiDir()}},
			"log":       map[string]any{"level": "debug", "format": "json"},
		},
	}
	for k, v := range extra {
		values[k] = v
	}
	b, err := yaml.Marshal(values)
	require.NoError(t, err)
	vf := filepath.Join(s.dir, name)
	require.NoError(t, os.WriteFile(vf, b, 0o644))
	return vf
}

// testHelm: helm install of deploy/helm/gpu-nri, the same checks as apply -k,
// and helm uninstall.
func (s *k8sSuite) testHelm(t *testing.T) {
	vf := s.helmValues(t, "values-test.yaml", nil)
	s.removeInstalled()
	before := s.n.registrations()
	out, err := s.tool("helm", "install", "gpu-nri", filepath.Join(s.n.repo, "deploy", "helm", "gpu-nri"),
		"-n", "gpu-nri", "--create-namespace", "-f", vf)
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled {
			_, _ = s.tool("helm", "uninstall", "gpu-nri", "-n", "gpu-nri", "--wait")
		}
		_, _ = s.kubectl("delete", "ns", "gpu-nri", "--ignore-not-found", "--wait=false")
		s.waitGone(t, "ns", "gpu-nri")
	})
	require.NoError(t, err, "helm install")
	require.Contains(t, out, "STATUS: deployed")
	require.NoError(t, s.dsReady(180*time.Second), "helm: DaemonSet Ready\n%s", s.describePlugin())
	require.NoError(t, s.n.waitRegistered(before, 30*time.Second), "helm: gpu-nri registered from its pod")
	s.checkInstalled(t, "helm")

	t.Run("annotated pod", func(t *testing.T) {
		s.gpuPod(t, "default", "helm-02", "0,2", "")
		gpus, cuda := s.probe(t, "default", "helm-02")
		require.Equal(t, []int{0, 2}, gpus)
		require.Equal(t, s.cudaOK(2), cuda)
	})

	out, err = s.tool("helm", "uninstall", "gpu-nri", "-n", "gpu-nri", "--wait")
	require.NoError(t, err, "helm uninstall")
	uninstalled = true
	require.Contains(t, out, `release "gpu-nri" uninstalled`)
	s.waitGone(t, "-n", "gpu-nri", "ds", "gpu-nri")
}
