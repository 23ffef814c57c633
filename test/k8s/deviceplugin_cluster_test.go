//go:build k8s

package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/gpu-nri/gpu-nri/test/simhost"
)

const migResource = "nvidia.com/mig-" + simhost.MIGProfile

// dpCase is one configuration of NVIDIA's device plugin.
type dpCase struct{ list, id string }

// testDevicePlugin: NVIDIA's k8s-device-plugin v0.19.0 (--mig-strategy
// mixed) registered with the real kubelet, beside gpu-nri under the
// standalone and the kubernetes-strict profiles, for each
// --device-list-strategy and both --device-id-strategy values (the plugin
// is restarted with new flags; the cluster and gpu-nri stay). Two pods ask
// for two GPUs each (all four whole GPUs between them) and two for one MIG
// device each (both MIG devices between them): each container sees exactly
// the devices the kubelet's checkpoint says the plugin allocated to it, no
// two pods share one, and the final
// OCI spec has each device node, mount and hook once. Under
// kubernetes-strict, envvar (NVIDIA_VISIBLE_DEVICES in a user namespace)
// is refused naming the rule, the others start.
func (s *k8sSuite) testDevicePlugin(t *testing.T) {
	bin := devicePluginBin(t)
	dpDir := pluginapi.DevicePluginPath // the kubelet's, whatever its --root-dir
	cases := []dpCase{
		{"envvar", "uuid"}, {"envvar", "index"},
		{"volume-mounts", "uuid"}, {"volume-mounts", "index"},
		{"cdi-annotations", "uuid"}, {"cdi-annotations", "index"},
		{"cdi-cri", "uuid"}, {"cdi-cri", "index"},
	}
	for _, profile := range []string{"standalone", "kubernetes-strict"} {
		t.Run(profile, func(t *testing.T) {
			s.deploy(t, "dp-"+profile, "overlays/"+profile, "k8s-1")
			for _, tc := range cases {
				ok := t.Run(tc.list+"-"+tc.id, func(t *testing.T) {
					t0 := time.Now()
					s.runDevicePluginCase(t, bin, dpDir, profile, tc)
					t.Logf("%s %s/%s: %d ms", profile, tc.list, tc.id, time.Since(t0).Milliseconds())
				})
				if !ok {
					t.Fatalf("%s/%s failed: the rest of the matrix is not run", tc.list, tc.id)
				}
			}
		})
	}
}

func (s *k8sSuite) runDevicePluginCase(t *testing.T, bin, dpDir, profile string, tc dpCase) {
	h := s.n.host
	hookDir, err := toolDir(s.n.repo, "test/k8s/tools.sh", "TOOLS=deviceplugin")
	require.NoError(t, err)
	p := startDevicePlugin(t, bin, h, dpDir, s.n.cdiDir(), "--kubelet-socket", pluginapi.KubeletSocket,
		"--device-list-strategy", tc.list, "--device-id-strategy", tc.id, "--mig-strategy", "mixed",
		"--nvidia-cdi-hook-path", filepath.Join(hookDir, "nvidia-cdi-hook"))
	whole, migs := 0, 0
	for _, g := range h.GPUs {
		if len(g.MIG) == 0 {
			whole++
		}
		migs += len(g.MIG)
	}
	err = eventually(30*time.Second, func() error {
		if p.cmd.ProcessState != nil {
			return nil
		}
		var nd corev1.Node
		if err := s.getJSON(&nd, "get", "node", s.nodeName); err != nil {
			return err
		}
		g, m := nd.Status.Allocatable["nvidia.com/gpu"], nd.Status.Allocatable[migResource]
		if g.Value() != int64(whole) || m.Value() != int64(migs) {
			return fmt.Errorf("allocatable nvidia.com/gpu=%s %s=%s", g.String(), migResource, m.String())
		}
		return nil
	})
	require.NoError(t, err, "the node advertises NVIDIA's resources\n%s", p.out.String())
	require.Nil(t, p.cmd.ProcessState, "the device plugin exited\n%s", p.out.String())
	ns := "dp"
	s.namespace(t, ns)
	names := []string{"dp-a", "dp-b", "dp-mig", "dp-mig2"}
	s.resourcePod(t, ns, names[0], "nvidia.com/gpu", whole/2)
	s.resourcePod(t, ns, names[1], "nvidia.com/gpu", whole-whole/2)
	s.resourcePod(t, ns, names[2], migResource, migs/2)
	s.resourcePod(t, ns, names[3], migResource, migs-migs/2)
	t.Cleanup(func() { // all four at once (runs before each pod's own cleanup, which then finds it gone)
		_, _ = s.kubectl(append([]string{"-n", ns, "delete", "pod", "--ignore-not-found", "--wait=true", "--timeout=60s"}, names...)...)
	})
	if profile == "kubernetes-strict" && tc.list == "envvar" {
		for _, n := range names {
			msg := s.waitCreateError(t, ns, n)
			require.Contains(t, msg, "policy.sources.env", "the refusal names the rule")
		}
		return
	}
	alloc := s.allocations(t, ns, names)
	index := map[string]int{}
	for _, g := range h.GPUs {
		index[g.UUID] = g.Index
	}
	var all []int
	for _, n := range names[:2] {
		gpus, _ := s.probe(t, ns, n)
		var want []int
		for _, u := range alloc[n] {
			i, ok := index[u]
			require.True(t, ok, "%s was allocated %s, not a whole GPU", n, u)
			want = append(want, i)
		}
		sort.Ints(want)
		require.Equal(t, want, gpus, "%s sees exactly the GPUs the device plugin allocated (%v)", n, alloc[n])
		sp := s.spec(t, ns, n)
		specGPU, _ := specGPUs(sp)
		sort.Ints(specGPU)
		require.Equal(t, want, specGPU, "%s: GPU nodes in the OCI spec", n)
		requireOnce(t, sp)
		all = append(all, gpus...)
	}
	sort.Ints(all)
	require.Equal(t, []int{0, 1, 2, 3}, all, "the two pods have all GPUs between them, none shared")

	// The MIG pods: each its MIG device's parent node and its compute
	// instance's access node, no other GPU and no other MIG device's access
	// node; the two have both MIG devices between them, none shared.
	byUUID := map[string]simhost.MIG{}
	parent := map[string]int{}
	for _, g := range h.GPUs {
		for _, m := range g.MIG {
			byUUID[m.UUID], parent[m.UUID] = m, g.Index
		}
	}
	var allMIG []string
	for i, n := range names[2:] {
		_, _ = s.probe(t, ns, n)
		require.Len(t, alloc[n], []int{migs / 2, migs - migs/2}[i], "%s's MIG devices", n)
		sp := s.spec(t, ns, n)
		var devs []string
		for _, d := range sp.Linux.Devices {
			devs = append(devs, d.Path)
		}
		var parents []int
		for _, u := range alloc[n] {
			_, ok := byUUID[u]
			require.True(t, ok, "%s was allocated %s, not a MIG device", n, u)
			if !slices.Contains(parents, parent[u]) {
				parents = append(parents, parent[u])
			}
		}
		specGPU, _ := specGPUs(sp)
		sort.Ints(specGPU)
		sort.Ints(parents)
		require.Equal(t, parents, specGPU, "%s gets its MIG devices' parent GPU nodes only", n)
		for u, m := range byUUID {
			node := fmt.Sprintf("/dev/nvidia-caps/nvidia-cap%d", m.CICapMinor)
			if slices.Contains(alloc[n], u) {
				require.Contains(t, devs, node, "%s: its MIG device %s's access node", n, u)
			} else {
				require.NotContains(t, devs, node, "%s: not the access node of %s, which it was not allocated", n, u)
			}
		}
		requireOnce(t, sp)
		allMIG = append(allMIG, alloc[n]...)
	}
	var hostMIG []string
	for u := range byUUID {
		hostMIG = append(hostMIG, u)
	}
	slices.Sort(allMIG)
	slices.Sort(hostMIG)
	require.Equal(t, hostMIG, allMIG, "the two MIG pods have all MIG devices between them, none shared")
}

// resourcePod is a probe pod with resources.limits[res] = n; deleted
// (waiting) in the cleanup, so that the next case's plugin can allocate.
func (s *k8sSuite) resourcePod(t *testing.T, ns, name, res string, n int) {
	t.Helper()
	pod := probePod(ns, name)
	c := &pod.Spec.Containers[0]
	c.Env = []corev1.EnvVar{{Name: "NVIDIA_DRIVER_CAPABILITIES", Value: "compute,utility"}}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceName(res): *resource.NewQuantity(int64(n), resource.DecimalSI)}
	s.applyObjects(t, "pod-"+ns+"-"+name+".yaml", pod)
}

// waitCreateError waits for the pod's container to be refused and returns
// the runtime's message.
func (s *k8sSuite) waitCreateError(t *testing.T, ns, name string) string {
	t.Helper()
	var msg string
	err := eventually(90*time.Second, func() error {
		var p corev1.Pod
		if err := s.getJSON(&p, "-n", ns, "get", "pod", name); err != nil {
			return err
		}
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil ||
			p.Status.ContainerStatuses[0].State.Waiting.Reason != "CreateContainerError" {
			return fmt.Errorf("container state %+v", p.Status.ContainerStatuses)
		}
		msg = p.Status.ContainerStatuses[0].State.Waiting.Message
		return nil
	})
	require.NoError(t, err, "pod %s/%s is refused", ns, name)
	return msg
}

// allocations reads, from the kubelet's device-manager checkpoint, which
// device ids (UUIDs) the device plugin allocated to each named pod.
func (s *k8sSuite) allocations(t *testing.T, ns string, names []string) map[string][]string {
	t.Helper()
	uids := map[string]string{}
	for _, n := range names {
		var p corev1.Pod
		require.NoError(t, s.getJSON(&p, "-n", ns, "get", "pod", n))
		uids[string(p.UID)] = n
	}
	var ck struct {
		Data struct {
			PodDeviceEntries []struct {
				PodUID, ContainerName, ResourceName string
				DeviceIDs                           map[string][]string
			}
		}
	}
	out := map[string][]string{}
	err := eventually(60*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(pluginapi.DevicePluginPath, "kubelet_internal_checkpoint"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &ck); err != nil {
			return err
		}
		clear(out)
		for _, e := range ck.Data.PodDeviceEntries {
			if n, ok := uids[e.PodUID]; ok {
				for _, ids := range e.DeviceIDs {
					out[n] = append(out[n], ids...)
				}
			}
		}
		if len(out) != len(names) {
			return fmt.Errorf("allocations for %d of %d pods", len(out), len(names))
		}
		return nil
	})
	require.NoError(t, err)
	for n := range out {
		slices.Sort(out[n])
		out[n] = slices.Compact(out[n])
	}
	return out
}

// requireOnce: each device node, mount destination and hook is in the
// final spec once.
func requireOnce(t *testing.T, sp *rspec.Spec) {
	t.Helper()
	count := map[string]int{}
	if sp.Linux != nil {
		for _, d := range sp.Linux.Devices {
			count["device "+d.Path]++
		}
	}
	for _, m := range sp.Mounts {
		count["mount "+m.Destination]++
	}
	if sp.Hooks != nil {
		for _, h := range append(append(slices.Clone(sp.Hooks.CreateRuntime), sp.Hooks.CreateContainer...), sp.Hooks.StartContainer...) {
			count["hook "+h.Path+" "+strings.Join(h.Args, " ")]++
		}
	}
	for what, n := range count {
		require.Equal(t, 1, n, "%s is in the final spec %d times", what, n)
	}
}
