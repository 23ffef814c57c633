//go:build k8s

package k8s

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"

	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// requireDeviceCgroup runs a shell in the pod's container "c": each node
// in allowed opens with ENXIO (the device cgroup lets the open through to
// the driver, absent here), and a node made with mknod inside the
// container for each device number in denied gives EPERM (the cgroup
// refuses it): the container's cgroup allows exactly its devices
// (../shared/reference/testbed.md; the e2e suite's gpuScript does the same).
func (s *k8sSuite) requireDeviceCgroup(t *testing.T, ns, name string, allowed []string, denied [][2]int) {
	t.Helper()
	var script []string
	for _, p := range allowed {
		script = append(script, fmt.Sprintf("cat %s 2>&1 | head -1", p))
	}
	for i, d := range denied {
		script = append(script, fmt.Sprintf("mknod /tmp/denied%d c %d %d && cat /tmp/denied%[1]d 2>&1 | head -1", i, d[0], d[1]))
	}
	out, err := s.kubectl("-n", ns, "exec", name, "-c", "c", "--", "/bin/sh", "-c", strings.Join(script, "; "))
	require.NoError(t, err, "kubectl exec %s/%s", ns, name)
	for _, p := range allowed {
		require.Contains(t, out, fmt.Sprintf("can't open '%s': No such device or address", p), "pod %s/%s: the device cgroup allows %s", ns, name, p)
	}
	for i, d := range denied {
		require.Contains(t, out, fmt.Sprintf("can't open '/tmp/denied%d': Operation not permitted", i),
			"pod %s/%s: the device cgroup denies %d:%d", ns, name, d[0], d[1])
	}
}

// migGPU is the suite host's MIG-enabled GPU.
func (s *k8sSuite) migGPU(t *testing.T) simhost.GPU {
	t.Helper()
	for _, g := range s.n.host.GPUs {
		if len(g.MIG) > 0 {
			return g
		}
	}
	t.Fatal("the suite's host has no MIG GPU")
	return simhost.GPU{}
}

// claimDevice is the one device name allocated to the pod's claim, and the claim.
func (s *k8sSuite) claimDevice(t *testing.T, ns, name string) (string, resourcev1.ResourceClaim) {
	t.Helper()
	var p corev1.Pod
	require.NoError(t, s.getJSON(&p, "-n", ns, "get", "pod", name))
	require.Len(t, p.Status.ResourceClaimStatuses, 1, "the pod's generated claim")
	var c resourcev1.ResourceClaim
	require.NoError(t, s.getJSON(&c, "-n", ns, "get", "resourceclaim", *p.Status.ResourceClaimStatuses[0].ResourceClaimName))
	require.NotNil(t, c.Status.Allocation, "claim %s allocated", c.Name)
	require.Len(t, c.Status.Allocation.Devices.Results, 1)
	return c.Status.Allocation.Devices.Results[0].Device, c
}

// checkMIGPod: the pod's claim got one of the MIG GPU's MIG devices; the
// container has no whole GPU, its OCI spec has the parent GPU's node and
// the device's two access nodes once each, and its device cgroup allows
// exactly those (ENXIO) and refuses a whole GPU and the other MIG devices'
// access nodes (EPERM). It returns the allocated MIG device.
func (s *k8sSuite) checkMIGPod(t *testing.T, ns, name string) simhost.MIG {
	t.Helper()
	gpusSeen, _ := s.probe(t, ns, name)
	require.Equal(t, []int{}, gpusSeen, "no whole GPU 0-3")
	dev, _ := s.claimDevice(t, ns, name)
	g := s.migGPU(t)
	i := slices.IndexFunc(g.MIG, func(m simhost.MIG) bool { return dev == fmt.Sprintf("mig-%d-gi%d-ci%d", g.Index, m.GI, m.CI) })
	require.GreaterOrEqual(t, i, 0, "allocated %s is one of the host's MIG devices", dev)
	m := g.MIG[i]
	want := []string{"/dev/nvidia" + strconv.Itoa(g.Minor),
		"/dev/nvidia-caps/nvidia-cap" + strconv.Itoa(m.GICapMinor), "/dev/nvidia-caps/nvidia-cap" + strconv.Itoa(m.CICapMinor)}
	sp := s.spec(t, ns, name)
	var got []string
	for _, d := range sp.Linux.Devices {
		if strings.HasPrefix(d.Path, "/dev/nvidia-caps/") || (strings.HasPrefix(d.Path, "/dev/nvidia") && d.Path[len("/dev/nvidia")] >= '0' && d.Path[len("/dev/nvidia")] <= '9') {
			got = append(got, d.Path)
		}
	}
	require.ElementsMatch(t, want, got, "the MIG device's parent GPU node and its two access nodes, once each")
	denied := [][2]int{{simhost.NvidiaMajor, s.n.host.GPUs[0].Minor}}
	for _, o := range g.MIG {
		if o.GI != m.GI {
			denied = append(denied, [2]int{int(s.n.host.Options.CapsMajor), o.GICapMinor}, [2]int{int(s.n.host.Options.CapsMajor), o.CICapMinor})
		}
	}
	s.requireDeviceCgroup(t, ns, name, want, denied)
	return m
}

// testDRAMIG: a claim of class mig.gpu.gpu-nri.io selected by profile and
// memory, and one of class any.gpu.gpu-nri.io selected by memory alone
// (only MIG devices have 9-10 GiB), each get one MIG device, not the same.
func (s *k8sSuite) testDRAMIG(t *testing.T) {
	g := s.migGPU(t)
	mem := fmt.Sprintf("device.capacity['%s'].memory", draDriver)
	s.claimPodOf(t, "dra", "mig", "mig."+draDriver, 1, fmt.Sprintf(`device.attributes['%s'].migProfile == '%s' && %s.compareTo(quantity('%dMi')) == 0`,
		draDriver, g.MIG[0].Profile, mem, g.MIG[0].MemoryMiB), 0)
	s.claimPodOf(t, "dra", "mig-mem", "any."+draDriver, 1, fmt.Sprintf(`%s.compareTo(quantity('9Gi')) >= 0 && %[1]s.compareTo(quantity('10Gi')) <= 0`, mem), 0)
	a := s.checkMIGPod(t, "dra", "mig")
	b := s.checkMIGPod(t, "dra", "mig-mem")
	require.NotEqual(t, a.GI, b.GI, "two claims, two MIG devices")
}

// testDRAMIGLeft: the MIG GPU leaves MIG mode (simhost.SetMIG, as
// `nvidia-smi -mig 0` after destroying its instances) under a running
// gpu-nri while one claim for a MIG device is prepared and its pod waits in
// its init container, and another claim for a MIG device was allocated but
// not yet prepared. The slice is republished with the GPU whole and no MIG
// device; the unprepared claim's pod fails at prepare (the kubelet's
// FailedPrepareDynamicResources event names the claim, the device and the
// reason); the prepared claim's container is refused at creation by
// gpu-nri's NRI answer with the same reason (CreateContainerError and the
// kubelet's Failed event); a claim pod for a whole GPU on the same node
// keeps its GPU, and only the prepared claims stay in the checkpoint. MIG is
// put back afterwards.
func (s *k8sSuite) testDRAMIGLeft(t *testing.T, all []string) {
	g := s.migGPU(t)
	s.waitDevices(t, all)
	var off *simhost.Host
	t.Cleanup(func() { // registered first: runs after every pod is gone
		if off == nil {
			return
		}
		if _, err := off.SetMIG(g.Index, len(g.MIG)); err != nil {
			t.Errorf("putting MIG back on GPU %d: %v", g.Index, err)
			return
		}
		s.waitDevices(t, all)
	})

	// A claim allocated by the scheduler and prepared; its pod waits in its
	// init container until told.
	s.claimPodInit(t, "dra", "mig-held", "mig."+draDriver, 1, "",
		`n=0; while [ ! -e /tmp/go ] && [ $n -lt 600 ]; do n=$((n+1)); sleep 0.2; done`)
	var held resourcev1.ResourceClaim
	var heldDev string
	s.waitInitRunning(t, "dra", "mig-held")
	require.NoError(t, eventually(60*time.Second, func() error {
		heldDev, held = s.claimDevice(t, "dra", "mig-held")
		if !slices.Contains(s.checkpointClaims(t), string(held.UID)) {
			return fmt.Errorf("claim %s not prepared", held.Name)
		}
		return nil
	}))
	mi := slices.IndexFunc(g.MIG, func(m simhost.MIG) bool { return heldDev == fmt.Sprintf("mig-%d-gi%d-ci%d", g.Index, m.GI, m.CI) })
	require.GreaterOrEqual(t, mi, 0, "allocated %s", heldDev)
	heldMIG := g.MIG[mi]
	late := g.MIG[(mi+1)%len(g.MIG)]
	lateDev := fmt.Sprintf("mig-%d-gi%d-ci%d", g.Index, late.GI, late.CI)

	// Another pod's claim for a whole GPU, meanwhile.
	s.claimPod(t, "dra", "mig-neighbour", 1, fmt.Sprintf(`device.attributes['%s'].index == 0`, draDriver), 0)
	require.Equal(t, []int{0}, s.checkClaimPod(t, "dra", "mig-neighbour", 1))
	_, neighbour := s.claimDevice(t, "dra", "mig-neighbour")

	var err error
	off, err = s.n.host.SetMIG(g.Index, 0)
	require.NoError(t, err, "GPU %d leaves MIG mode", g.Index)
	var whole []string
	for _, h := range s.n.host.GPUs {
		whole = append(whole, "gpu-"+strconv.Itoa(h.Index))
	}
	slices.Sort(whole)
	devs := s.waitDevices(t, whole) // the GPU whole, none of its MIG devices left
	d := devs["gpu-"+strconv.Itoa(g.Index)]
	require.Equal(t, "gpu", *d.Attributes["type"].StringValue)
	require.Equal(t, g.UUID, *d.Attributes["uuid"].StringValue)

	reason := fmt.Sprintf("GPU %d (%s) has left MIG mode: its MIG devices are gone", g.Index, g.UUID)
	// A claim the scheduler allocated the other MIG device before the
	// republish, reaching the kubelet now: prepare fails.
	s.boundClaimPodOf(t, "dra", "mig-late", "mig."+draDriver, lateDev)
	s.requirePrepareFailed(t, "dra", "mig-late", lateDev, reason)

	// The prepared claim's pod goes on: gpu-nri refuses its container.
	_, err = s.kubectl("-n", "dra", "exec", "mig-held", "-c", "wait", "--", "touch", "/tmp/go")
	require.NoError(t, err)
	want := fmt.Sprintf(`ResourceClaim dra/%s device %s %q: changed since the claim was prepared: %s`, held.Name, heldDev, heldMIG.UUID, reason)
	msg := s.waitCreateError(t, "dra", "mig-held")
	require.Contains(t, msg, "gpu-nri: container dra/mig-held/c: "+want, "the container's CreateContainerError")
	var ev string
	require.NoError(t, eventually(30*time.Second, func() error {
		var l corev1.EventList
		if err := s.getJSON(&l, "-n", "dra", "get", "events", "--field-selector",
			"involvedObject.kind=Pod,involvedObject.name=mig-held,reason=Failed"); err != nil {
			return err
		}
		for _, e := range l.Items {
			if strings.Contains(e.Message, want) {
				ev = e.Message
				return nil
			}
		}
		return fmt.Errorf("no Failed event with %q among %d", want, len(l.Items))
	}), "the kubelet's event names the claim, the device and the reason")
	t.Logf("pod dra/mig-held: Warning Failed %s", ev)

	// Nothing else on the node is affected.
	var p corev1.Pod
	require.NoError(t, s.getJSON(&p, "-n", "dra", "get", "pod", "mig-neighbour"))
	require.Equal(t, corev1.PodRunning, p.Status.Phase, "the neighbour keeps running")
	s.requireDeviceCgroup(t, "dra", "mig-neighbour", []string{"/dev/nvidia" + strconv.Itoa(s.n.host.GPUs[0].Minor)}, nil)
	require.ElementsMatch(t, []string{string(held.UID), string(neighbour.UID)}, s.checkpointClaims(t),
		"the failed prepare recorded nothing; the prepared claims stay until their pods go")
}
