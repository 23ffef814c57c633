//go:build k8s

package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

// testDRABadInput: a claim allocated a device the node no longer has fails
// its pod at prepare with the kubelet's event naming the claim, the device
// and the reason; a claim pod on the same node runs meanwhile. all are the
// published device names with every GPU present.
//
// The allocation is written into the claim's status (as the scheduler
// would) for a pod bound to the node: that is "allocated, then the device
// went away" without racing the scheduler against the inventory watch.
func (s *k8sSuite) testDRABadInput(t *testing.T, all []string) {
	// GPU 3's device node leaves the host; the slice drops gpu-3.
	n3 := filepath.Join(s.n.host.Config.DevRoot, "nvidia3")
	moved := n3 + ".gone"
	require.NoError(t, os.Rename(n3, moved))
	restored := false
	restore := func() {
		if !restored {
			restored = true
			_ = os.Rename(moved, n3)
		}
	}
	t.Cleanup(restore)
	s.waitDevices(t, slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == "gpu-3" }))

	s.namespace(t, "dra")
	cases := []struct{ name, device, reason string }{
		{"vanished", "gpu-3", fmt.Sprintf("GPU 3 (%s) has no usable device node on this node", s.n.host.GPUs[3].UUID)},
		{"unknown", "gpu-9", fmt.Sprintf("GPU 9 is no longer on this node (%d GPU(s) now)", len(s.n.host.GPUs))},
	}
	for _, c := range cases {
		s.boundClaimPod(t, "dra", c.name, c.device)
	}
	// Another pod's claim on the same node, meanwhile: it gets its GPU.
	s.claimPod(t, "dra", "neighbour", 1, fmt.Sprintf(`device.attributes['%s'].index == 0`, draDriver), 0)
	require.Equal(t, []int{0}, s.checkClaimPod(t, "dra", "neighbour", 1))

	for _, c := range cases {
		s.requirePrepareFailed(t, "dra", c.name, c.device, c.reason)
	}
	require.Len(t, s.checkpointClaims(t), 1, "only the neighbour's claim is prepared")
	restore()
	s.waitDevices(t, all)

	// GPU 3 back: the kubelet prepares the waiting pod's claim on its next
	// look at the pod (its sync interval, docs/dra.md) and the pod runs
	// with GPU 3's node.
	back := time.Now()
	require.NoError(t, eventually(150*time.Second, func() error {
		var p corev1.Pod
		if err := s.getJSON(&p, "-n", "dra", "get", "pod", "vanished"); err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod dra/vanished is %s", p.Status.Phase)
		}
		return nil
	}), "the pod waiting for GPU 3 runs once it is back")
	t.Logf("pod dra/vanished Running %.0f s after GPU 3 was back in the slice", time.Since(back).Seconds())
	_, err := s.kubectl("-n", "dra", "exec", "vanished", "--", "test", "-c", "/dev/nvidia3")
	require.NoError(t, err, "GPU 3's device node in pod dra/vanished")
	require.Len(t, s.checkpointClaims(t), 2, "the neighbour's claim and vanished's are prepared")
}

// requirePrepareFailed: pod ns/name (whose claim is ResourceClaim ns/name)
// stays Pending with exactly the kubelet's FailedPrepareDynamicResources
// event naming the claim, device and reason.
func (s *k8sSuite) requirePrepareFailed(t *testing.T, ns, name, device, reason string) {
	t.Helper()
	var c2 resourcev1.ResourceClaim
	require.NoError(t, s.getJSON(&c2, "-n", ns, "get", "resourceclaim", name))
	want := fmt.Sprintf("Failed to prepare dynamic resources: prepare dynamic resources: NodePrepareResources failed for ResourceClaim %s: "+
		"ResourceClaim %s/%s (uid %s): device %s: %s", name, ns, name, c2.UID, device, reason)
	var got []string
	err := eventually(60*time.Second, func() error {
		var l corev1.EventList
		if err := s.getJSON(&l, "-n", ns, "get", "events", "--field-selector",
			"involvedObject.kind=Pod,involvedObject.name="+name+",reason=FailedPrepareDynamicResources"); err != nil {
			return err
		}
		got = got[:0]
		for _, e := range l.Items {
			got = append(got, e.Message)
		}
		if !slices.Contains(got, want) {
			return fmt.Errorf("pod %s/%s: no FailedPrepareDynamicResources event\n  %s\namong %q", ns, name, want, got)
		}
		return nil
	})
	require.NoError(t, err, "the kubelet's event names the claim, the device and the reason")
	t.Logf("pod %s/%s: Warning FailedPrepareDynamicResources %s", ns, name, want)
	require.Equal(t, []string{want}, got, "pod %s/%s's FailedPrepareDynamicResources events: the driver's reason only", ns, name)
	var p corev1.Pod
	require.NoError(t, s.getJSON(&p, "-n", ns, "get", "pod", name))
	require.Equal(t, corev1.PodPending, p.Status.Phase, "pod %s/%s never starts", ns, name)
	for _, cs := range p.Status.ContainerStatuses {
		require.Nil(t, cs.State.Running, "pod %s/%s: container %s", ns, name, cs.Name)
	}
}

// boundClaimPod creates ResourceClaim ns/name (1 device of class
// gpu.gpu-nri.io) and an unscheduled pod using it, writes the claim's
// allocation of device (this node's pool) reserved for that pod, and then
// binds the pod to the node: the scheduler's order, so the kubelet never
// sees the pod before its reservation. (The kubelet does not requeue a pod
// whose prepare failed before its sandbox on the error backoff but at the
// sync interval, 60-90 s: a pod bound first and reserved later could wait
// that long for its first look at the allocation.)
func (s *k8sSuite) boundClaimPod(t *testing.T, ns, name, device string) {
	t.Helper()
	s.boundClaimPodOf(t, ns, name, draDriver, device)
}

// boundClaimPodOf is boundClaimPod for a device of class.
func (s *k8sSuite) boundClaimPodOf(t *testing.T, ns, name, class, device string) {
	t.Helper()
	claim := resourcev1.ResourceClaim{TypeMeta: metaType("resource.k8s.io/v1", "ResourceClaim"), ObjectMeta: objectMeta(name, ns),
		Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{Name: "gpus",
			Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: class, AllocationMode: resourcev1.DeviceAllocationModeExactCount, Count: 1}}}}}}
	pod := corev1.Pod{
		TypeMeta:   metaType("v1", "Pod"),
		ObjectMeta: objectMeta(name, ns),
		Spec: corev1.PodSpec{
			// No scheduler serves this name: the pod waits for the binding below.
			SchedulerName:                 "gpu-nri-test-binds-by-hand",
			TerminationGracePeriodSeconds: ptr(int64(1)),
			RestartPolicy:                 corev1.RestartPolicyNever,
			ResourceClaims:                []corev1.PodResourceClaim{{Name: "gpus", ResourceClaimName: ptr(name)}},
			Containers: []corev1.Container{{
				Name: "c", Image: harness.ImageRef("glibc"), ImagePullPolicy: corev1.PullNever,
				Command:   []string{"/bin/sh", "-c", "exec sleep 3600"},
				Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpus"}}},
			}},
		},
	}
	s.applyObjects(t, "dra-"+ns+"-"+name+".yaml", claim, pod)
	var p corev1.Pod
	require.NoError(t, s.getJSON(&p, "-n", ns, "get", "pod", name))
	status := map[string]any{"status": map[string]any{
		"allocation": map[string]any{"devices": map[string]any{"results": []any{map[string]any{
			"request": "gpus", "driver": draDriver, "pool": s.nodeName, "device": device}}}},
		"reservedFor": []any{map[string]any{"resource": "pods", "name": name, "uid": string(p.UID)}},
	}}
	js, err := json.Marshal(status)
	require.NoError(t, err)
	_, err = s.kubectl("-n", ns, "patch", "resourceclaim", name, "--subresource=status", "--type=merge", "-p", string(js))
	require.NoError(t, err, "the claim's allocation of %s", device)

	binding := corev1.Binding{TypeMeta: metaType("v1", "Binding"), ObjectMeta: objectMeta(name, ns),
		Target: corev1.ObjectReference{Kind: "Node", Name: s.nodeName}}
	js, err = json.Marshal(binding)
	require.NoError(t, err)
	f := filepath.Join(s.dir, "dra-"+ns+"-"+name+"-binding.json")
	require.NoError(t, os.WriteFile(f, js, 0o644))
	_, err = s.kubectl("create", "--raw", "/api/v1/namespaces/"+ns+"/pods/"+name+"/binding", "-f", f)
	require.NoError(t, err, "binding pod %s/%s to %s", ns, name, s.nodeName)
}
