//go:build k8s

package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"sigs.k8s.io/yaml"

	"github.com/gpu-nri/gpu-nri/pkg/dra"
	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

const draDriver = "gpu.gpu-nri.io"

// kubeletRoot is the suite kubelet's --root-dir.
func (s *k8sSuite) kubeletRoot() string { return filepath.Join(s.dir, "kubelet") }

// draPluginDir is the DRA plugin's directory (socket, checkpoint) at its host path.
func (s *k8sSuite) draPluginDir() string {
	return filepath.Join(s.kubeletRoot(), "plugins", draDriver)
}

// deployDRA applies deploy/kubernetes/overlays/dra with the suite's paths
// (the kubelet's root dir, containerd's CDI dir) and waits until gpu-nri
// registered with containerd and published its ResourceSlices.
func (s *k8sSuite) deployDRA(t *testing.T) {
	t.Helper()
	ov, err := s.makeOverlay("dra", "overlays/dra", "k8s-1")
	require.NoError(t, err)
	cfgPath := filepath.Join(ov, "config.yaml")
	b, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(b, &cfg))
	d := cfg["dra"].(map[string]any)
	d["pluginDir"] = s.draPluginDir()
	b, err = yaml.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgPath, b, 0o644))
	k, err := os.ReadFile(filepath.Join(ov, "kustomization.yaml"))
	require.NoError(t, err)
	k = append(k, fmt.Appendf(nil, `- patch: |-
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: gpu-nri, namespace: gpu-nri}
    spec:
      template:
        spec:
          volumes:
          - {name: kubelet-registry, hostPath: {path: %s, type: DirectoryOrCreate}}
          - {name: kubelet-plugin, hostPath: {path: %s, type: DirectoryOrCreate}}
          - {name: cdi, hostPath: {path: %s, type: DirectoryOrCreate}}
          containers:
          - name: gpu-nri
            # The suite's cluster has no kube-proxy (and no endpoints for the kubernetes
            # Service): the in-cluster client reaches the apiserver on the host network.
            env:
            - {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
            - {name: KUBERNETES_SERVICE_PORT, value: %[4]q}
            volumeMounts:
            - {name: kubelet-plugin, mountPath: %[2]s}
`, filepath.Join(s.kubeletRoot(), "plugins_registry"), s.draPluginDir(), s.n.cdiDir(), apiPort)...)
	require.NoError(t, os.WriteFile(filepath.Join(ov, "kustomization.yaml"), k, 0o644))
	before := s.n.registrations()
	_, err = s.kubectl("apply", "-k", ov)
	t.Cleanup(func() {
		_, _ = s.kubectl("delete", "-k", ov, "--ignore-not-found", "--wait=true", "--timeout=90s")
		s.waitGone(t, "ns", "gpu-nri")
		_, _ = s.kubectl("delete", "resourceslices", "--field-selector", "spec.driver="+draDriver, "--wait=true")
	})
	require.NoError(t, err, "kubectl apply -k overlays/dra")
	if err := s.dsReady(180 * time.Second); err != nil {
		logs, _ := s.kubectl("-n", "gpu-nri", "logs", "ds/gpu-nri", "--previous", "--tail=40")
		t.Fatalf("DaemonSet Ready: %v\n%s\n--- gpu-nri's previous log\n%s", err, s.describePlugin(), logs)
	}
	require.NoError(t, s.n.waitRegistered(before, 30*time.Second))
}

// draDevices are the devices gpu-nri publishes for the node, by name.
func (s *k8sSuite) draDevices(t *testing.T) map[string]resourcev1.Device {
	t.Helper()
	var l resourcev1.ResourceSliceList
	require.NoError(t, s.getJSON(&l, "get", "resourceslices"))
	out := map[string]resourcev1.Device{}
	for _, sl := range l.Items {
		if sl.Spec.Driver != draDriver {
			continue
		}
		require.NotNil(t, sl.Spec.NodeName)
		require.Equal(t, s.nodeName, *sl.Spec.NodeName)
		require.Equal(t, s.nodeName, sl.Spec.Pool.Name)
		for _, d := range sl.Spec.Devices {
			out[d.Name] = d
		}
	}
	return out
}

// waitDevices waits until the published device names are want.
func (s *k8sSuite) waitDevices(t *testing.T, want []string) map[string]resourcev1.Device {
	t.Helper()
	var got map[string]resourcev1.Device
	err := eventually(60*time.Second, func() error {
		got = s.draDevices(t)
		names := make([]string, 0, len(got))
		for n := range got {
			names = append(names, n)
		}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			return fmt.Errorf("published %v, want %v", names, want)
		}
		return nil
	})
	if err != nil {
		logs, _ := s.kubectl("-n", "gpu-nri", "logs", "ds/gpu-nri", "--tail=30")
		t.Fatalf("ResourceSlices: %v\n%s", err, logs)
	}
	return got
}

// claimPod creates a ResourceClaimTemplate asking for count devices of
// class gpu.gpu-nri.io (with a CEL selector when cel is set) and a pod
// using it that runs the probe (after an init container sleeping initSleep
// seconds, when > 0). Both are deleted in the cleanup.
func (s *k8sSuite) claimPod(t *testing.T, ns, name string, count int, cel string, initSleep int) {
	t.Helper()
	s.claimPodOf(t, ns, name, draDriver, count, cel, initSleep)
}

// claimPodOf is claimPod for devices of class.
func (s *k8sSuite) claimPodOf(t *testing.T, ns, name, class string, count int, cel string, initSleep int) {
	t.Helper()
	init := ""
	if initSleep > 0 {
		init = "sleep " + strconv.Itoa(initSleep)
	}
	s.claimPodInit(t, ns, name, class, count, cel, init)
}

// claimPodInit is claimPodOf with an init container (named "wait") running
// the shell command init, when set.
func (s *k8sSuite) claimPodInit(t *testing.T, ns, name, class string, count int, cel, init string) {
	t.Helper()
	s.namespace(t, ns)
	req := resourcev1.DeviceRequest{Name: "gpus", Exactly: &resourcev1.ExactDeviceRequest{
		DeviceClassName: class, AllocationMode: resourcev1.DeviceAllocationModeExactCount, Count: int64(count)}}
	if cel != "" {
		req.Exactly.Selectors = []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: cel}}}
	}
	tmpl := resourcev1.ResourceClaimTemplate{TypeMeta: metaType("resource.k8s.io/v1", "ResourceClaimTemplate"),
		ObjectMeta: objectMeta(name, ns),
		Spec:       resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{req}}}}}
	pod := probePod(ns, name)
	pod.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpus", ResourceClaimTemplateName: ptr(name)}}
	pod.Spec.Containers[0].Resources.Claims = []corev1.ResourceClaim{{Name: "gpus"}}
	if init != "" {
		pod.Spec.InitContainers = []corev1.Container{{Name: "wait", Image: harness.ImageRef("glibc"), ImagePullPolicy: corev1.PullNever,
			Command: []string{"/bin/sh", "-c", init}}}
	}
	s.applyObjects(t, "dra-"+ns+"-"+name+".yaml", tmpl, pod)
}

// applyObjects writes objs as one YAML stream to s.dir/file, applies it,
// and deletes it (waiting) in the cleanup.
func (s *k8sSuite) applyObjects(t *testing.T, file string, objs ...any) {
	t.Helper()
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		require.NoError(t, err)
		docs = append(docs, string(b))
	}
	f := filepath.Join(s.dir, file)
	require.NoError(t, os.WriteFile(f, []byte(strings.Join(docs, "---\n")), 0o644))
	_, err := s.kubectl("apply", "-f", f)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = s.kubectl("delete", "-f", f, "--ignore-not-found", "--wait=true", "--timeout=60s")
	})
}

// allocated are the GPU indexes the pod's claim was allocated (gpu-N device names).
func (s *k8sSuite) allocated(t *testing.T, ns, name string) ([]int, string) {
	t.Helper()
	var p corev1.Pod
	require.NoError(t, s.getJSON(&p, "-n", ns, "get", "pod", name))
	require.Len(t, p.Status.ResourceClaimStatuses, 1, "the pod's generated claim")
	claimName := *p.Status.ResourceClaimStatuses[0].ResourceClaimName
	var c resourcev1.ResourceClaim
	require.NoError(t, s.getJSON(&c, "-n", ns, "get", "resourceclaim", claimName))
	require.NotNil(t, c.Status.Allocation)
	gpus := []int{}
	for _, r := range c.Status.Allocation.Devices.Results {
		require.Equal(t, draDriver, r.Driver)
		i, err := strconv.Atoi(strings.TrimPrefix(r.Device, "gpu-"))
		require.NoError(t, err, "device %s", r.Device)
		gpus = append(gpus, i)
	}
	slices.Sort(gpus)
	return gpus, string(c.UID)
}

// checkClaimPod: the container sees exactly the allocated GPUs (device
// nodes, the CUDA program's device count), its device cgroup lets exactly
// those through (ENXIO) and refuses another GPU (EPERM), and its OCI spec
// has exactly those nodes and one hook.
func (s *k8sSuite) checkClaimPod(t *testing.T, ns, name string, count int) []int {
	t.Helper()
	seen, cuda := s.probe(t, ns, name)
	want, _ := s.allocated(t, ns, name)
	require.Len(t, want, count)
	require.Equal(t, want, seen, "the container sees exactly the allocated GPUs")
	require.Equal(t, s.cudaOK(count), cuda)
	sp := s.spec(t, ns, name)
	specGPU, hooks := specGPUs(sp)
	slices.Sort(specGPU)
	require.Equal(t, want, specGPU, "GPU nodes in the OCI spec, each once")
	require.Equal(t, []string{s.hookBin()}, hooks, "one createContainer hook")
	for _, m := range sp.Mounts {
		require.False(t, strings.HasPrefix(m.Destination, dra.GuardDir), "gpu-nri's answer removed the claim spec's guard mount %s", m.Destination)
	}
	var allowed []string
	for _, g := range want {
		allowed = append(allowed, "/dev/nvidia"+strconv.Itoa(s.n.host.GPUs[g].Minor))
	}
	other := -1
	for i := range 4 {
		if !slices.Contains(want, i) && other < 0 {
			other = i
		}
	}
	var denied [][2]int
	if other >= 0 { // a GPU of the node not allocated to the pod
		denied = append(denied, [2]int{simhost.NvidiaMajor, s.n.host.GPUs[other].Minor})
	}
	s.requireDeviceCgroup(t, ns, name, allowed, denied)
	logs, err := s.kubectl("-n", ns, "logs", name)
	require.NoError(t, err)
	t.Logf("$ kubectl -n %s logs %s\n%s", ns, name, logs) // the README's quick start shows this
	return want
}

// waitInitRunning waits (60 s) until the one init container of pod ns/name
// runs: the pod's claims are prepared, its main container not created yet.
func (s *k8sSuite) waitInitRunning(t *testing.T, ns, name string) {
	t.Helper()
	require.NoError(t, eventually(60*time.Second, func() error {
		var p corev1.Pod
		if err := s.getJSON(&p, "-n", ns, "get", "pod", name); err != nil {
			return err
		}
		if len(p.Status.InitContainerStatuses) != 1 || p.Status.InitContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("init container of %s/%s not running: %+v", ns, name, p.Status.InitContainerStatuses)
		}
		return nil
	}))
}

// checkpointClaims are the claim UIDs in gpu-nri's checkpoint on the node.
// requireUnprepared waits (60 s) until gpu-nri's checkpoint holds no claim
// and no claim CDI spec is left: every claim unprepared, the node clean.
func (s *k8sSuite) requireUnprepared(t *testing.T, why string) {
	t.Helper()
	require.NoError(t, eventually(60*time.Second, func() error {
		if c := s.checkpointClaims(t); len(c) != 0 {
			return fmt.Errorf("claims still prepared: %v", c)
		}
		if m := s.claimSpecs(t); len(m) != 0 {
			return fmt.Errorf("claim CDI specs left: %v", m)
		}
		return nil
	}), why)
}

func (s *k8sSuite) checkpointClaims(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.draPluginDir(), "checkpoint.json"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var cp struct {
		Claims map[string]json.RawMessage `json:"claims"`
	}
	require.NoError(t, json.Unmarshal(b, &cp))
	var out []string
	for k := range cp.Claims {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// claimSpecs are the claim CDI spec files in containerd's CDI directory.
func (s *k8sSuite) claimSpecs(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(s.n.cdiDir(), "gpu_gpu-nri_io-claim-*.json"))
	require.NoError(t, err)
	return m
}

// testDRA: gpu-nri as the DRA driver, deployed with overlays/dra.
func (s *k8sSuite) testDRA(t *testing.T) {
	s.deployDRA(t)
	// The suite's host: GPUs 0-3, and a last GPU with MIG on (its MIG devices are published, not it).
	var all, gpus []string
	for _, g := range s.n.host.GPUs {
		if len(g.MIG) == 0 {
			gpus = append(gpus, "gpu-"+strconv.Itoa(g.Index))
		}
		for _, m := range g.MIG {
			all = append(all, fmt.Sprintf("mig-%d-gi%d-ci%d", g.Index, m.GI, m.CI))
		}
	}
	all = append(all, gpus...)
	slices.Sort(all)
	require.Equal(t, []string{"gpu-0", "gpu-1", "gpu-2", "gpu-3"}, gpus)
	t.Run("slices", func(t *testing.T) {
		devs := s.waitDevices(t, all)
		out, err := s.kubectl("get", "resourceslices", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,DRIVER:.spec.driver,DEVICES:.spec.devices[*].name")
		require.NoError(t, err)
		t.Logf("$ kubectl get resourceslices\n%s", out)
		for i, g := range s.n.host.GPUs {
			for _, m := range g.MIG {
				d := devs[fmt.Sprintf("mig-%d-gi%d-ci%d", g.Index, m.GI, m.CI)]
				a := func(k string) resourcev1.DeviceAttribute { return d.Attributes[resourcev1.QualifiedName(k)] }
				require.Equal(t, "mig", *a("type").StringValue)
				require.Equal(t, m.UUID, *a("uuid").StringValue)
				require.Equal(t, g.UUID, *a("parentUUID").StringValue)
				require.Equal(t, int64(g.Index), *a("parentIndex").IntValue)
				require.Equal(t, m.Profile, *a("migProfile").StringValue, "the MIG profile nvidia-smi -L names")
				mem := d.Capacity["memory"].Value
				require.Equal(t, int64(m.MemoryMiB)<<20, mem.Value(), "MIG memory capacity: the total of nvidia-smi's MIG devices table")
			}
			if len(g.MIG) > 0 {
				continue
			}
			d := devs["gpu-"+strconv.Itoa(i)]
			a := func(k string) resourcev1.DeviceAttribute { return d.Attributes[resourcev1.QualifiedName(k)] }
			require.Equal(t, "gpu", *a("type").StringValue)
			require.Equal(t, g.UUID, *a("uuid").StringValue)
			require.Equal(t, int64(i), *a("index").IntValue)
			require.Equal(t, int64(g.Minor), *a("minor").IntValue)
			require.Equal(t, g.Model, *a("productName").StringValue)
			require.Equal(t, g.PCIBusID, *a("resource.kubernetes.io/pciBusID").StringValue)
			require.Equal(t, s.n.host.DriverVersion, *a("driverVersion").VersionValue)
			require.Equal(t, s.n.host.CUDAVersion+".0", *a("cudaDriverVersion").VersionValue)
			mem := d.Capacity["memory"].Value
			require.Equal(t, int64(g.MemoryMiB)<<20, mem.Value(), "memory capacity: nvidia-smi -q's FB Memory Usage Total")
		}
	})
	t.Run("slices follow the inventory", func(t *testing.T) {
		// GPU 3's device node disappears from the host (the watch sees /dev), then comes back.
		n3 := filepath.Join(s.n.host.Config.DevRoot, "nvidia3")
		moved := n3 + ".gone"
		require.NoError(t, os.Rename(n3, moved))
		restored := false
		t.Cleanup(func() {
			if !restored {
				_ = os.Rename(moved, n3)
			}
		})
		s.waitDevices(t, slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == "gpu-3" }))
		require.NoError(t, os.Rename(moved, n3))
		restored = true
		s.waitDevices(t, all)
	})

	var one []int
	t.Run("claims", func(t *testing.T) {
		// The CEL-selected pod first, so that the others cannot take GPU 3 before it.
		s.claimPod(t, "dra", "cel", 1, fmt.Sprintf(`device.attributes['%s'].productName == '%s' && device.attributes['%s'].index == 3 && `+
			`device.capacity['%[1]s'].memory.compareTo(quantity('79Gi')) >= 0`, draDriver, s.n.host.GPUs[3].Model, draDriver), 0)
		cel := s.checkClaimPod(t, "dra", "cel", 1)
		require.Equal(t, []int{3}, cel, "the CEL selector picked GPU 3")
		s.claimPod(t, "dra", "one", 1, "", 0)
		s.claimPod(t, "dra", "two", 2, "", 0)
		one = s.checkClaimPod(t, "dra", "one", 1)
		two := s.checkClaimPod(t, "dra", "two", 2)
		used := append(append(append([]int{}, one...), two...), cel...)
		slices.Sort(used)
		require.Equal(t, []int{0, 1, 2, 3}, used, "no two pods share a GPU")
		require.Len(t, s.checkpointClaims(t), 3)
		out, err := s.kubectl("-n", "dra", "get", "resourceclaims")
		require.NoError(t, err)
		t.Logf("$ kubectl -n dra get resourceclaims\n%s", out)
		require.Len(t, s.claimSpecs(t), 3)

		t.Run("exhausted", func(t *testing.T) {
			s.claimPod(t, "dra", "wait", 1, "", 0)
			var cond corev1.PodCondition
			require.NoError(t, eventually(60*time.Second, func() error {
				var p corev1.Pod
				if err := s.getJSON(&p, "-n", "dra", "get", "pod", "wait"); err != nil {
					return err
				}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
						cond = c
						return nil
					}
				}
				return fmt.Errorf("pod conditions %+v", p.Status.Conditions)
			}))
			require.Equal(t, corev1.PodReasonUnschedulable, cond.Reason)
			require.Contains(t, cond.Message, "cannot allocate all claims", "the scheduler's reason")
			_, err := s.kubectl("-n", "dra", "delete", "pod", "one", "--wait=true", "--timeout=60s")
			require.NoError(t, err)
			got := s.checkClaimPod(t, "dra", "wait", 1)
			require.Equal(t, one, got, "the freed GPU")
		})
	})
	s.requireUnprepared(t, "pods deleted: every claim unprepared, the node clean")

	t.Run("bad input", func(t *testing.T) { s.testDRABadInput(t, all) })

	t.Run("restart between prepare and start", func(t *testing.T) {
		s.claimPod(t, "dra", "restart", 2, "", 20)
		s.waitInitRunning(t, "dra", "restart")
		_, uid := s.allocated(t, "dra", "restart")
		require.Equal(t, []string{uid}, s.checkpointClaims(t), "prepared before the init container ran")
		old := s.pluginPod(t).Name
		_, err := s.kubectl("-n", "gpu-nri", "delete", "pod", old, "--wait=true", "--timeout=60s")
		require.NoError(t, err)
		require.NoError(t, s.dsReady(120*time.Second), "gpu-nri back\n%s", s.describePlugin())
		require.NotEqual(t, old, s.pluginPod(t).Name)
		s.checkClaimPod(t, "dra", "restart", 2)
		var p corev1.Pod
		require.NoError(t, s.getJSON(&p, "-n", "dra", "get", "pod", "restart"))
		_, err = s.kubectl("-n", "dra", "delete", "pod", "restart", "--wait=true", "--timeout=60s")
		require.NoError(t, err)
		s.requireUnprepared(t, "claim deleted: unprepared, the node clean")
	})

	t.Run("mig", s.testDRAMIG)
	t.Run("mig left MIG mode", func(t *testing.T) { s.testDRAMIGLeft(t, all) })
	s.requireUnprepared(t, "MIG pods deleted: every claim unprepared, the node clean")

	t.Run("driver upgrade", func(t *testing.T) { s.testDRAUpgrade(t, all) })
}
