//go:build k8s

package k8s

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// draDeviceNames are the devices gpu-nri publishes for the suite's host:
// GPUs 0-3 and the MIG GPU's MIG devices (never that GPU itself), sorted.
func (s *k8sSuite) draDeviceNames() []string {
	var all []string
	for _, g := range s.n.host.GPUs {
		if len(g.MIG) == 0 {
			all = append(all, "gpu-"+strconv.Itoa(g.Index))
		}
		for _, m := range g.MIG {
			all = append(all, fmt.Sprintf("mig-%d-gi%d-ci%d", g.Index, m.GI, m.CI))
		}
	}
	slices.Sort(all)
	return all
}

// testDRAHelm: `helm install --set dra.enabled=true` (the chart's DRA
// values pointed at the suite kubelet's root dir and containerd's CDI
// dir) brings gpu-nri up as the DRA driver: it registers with the kubelet,
// publishes the host's devices, and a claim pod gets exactly its GPU; helm
// uninstall removes it. The suite's cluster has no kube-proxy, so the
// DaemonSet's in-cluster client is pointed at the apiserver's host address
// (kubectl set env) after the install: the one change to what the chart
// renders.
func (s *k8sSuite) testDRAHelm(t *testing.T) {
	vf := s.helmValues(t, "values-dra.yaml", map[string]any{
		"dra": map[string]any{"enabled": true, "kubeletDir": s.kubeletRoot(), "cdiDir": s.n.cdiDir()},
	})
	before := s.n.registrations()
	out, err := s.tool("helm", "install", "gpu-nri", filepath.Join(s.n.repo, "deploy", "helm", "gpu-nri"),
		"-n", "gpu-nri", "--create-namespace", "-f", vf, "--set", "dra.enabled=true")
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled {
			_, _ = s.tool("helm", "uninstall", "gpu-nri", "-n", "gpu-nri", "--wait")
		}
		_, _ = s.kubectl("delete", "ns", "gpu-nri", "--ignore-not-found", "--wait=false")
		s.waitGone(t, "ns", "gpu-nri")
		_, _ = s.kubectl("delete", "resourceslices", "--field-selector", "spec.driver="+draDriver, "--wait=true")
	})
	require.NoError(t, err, "helm install --set dra.enabled=true\n%s", out)
	require.Contains(t, out, "STATUS: deployed")
	_, err = s.kubectl("-n", "gpu-nri", "set", "env", "ds/gpu-nri", "-c", "gpu-nri",
		"KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT="+apiPort)
	require.NoError(t, err)
	if err := s.dsReady(180 * time.Second); err != nil {
		logs, _ := s.kubectl("-n", "gpu-nri", "logs", "ds/gpu-nri", "--tail=40")
		t.Fatalf("helm dra: DaemonSet Ready: %v\n%s\n--- gpu-nri's log\n%s", err, s.describePlugin(), logs)
	}
	require.NoError(t, s.n.waitRegistered(before, 30*time.Second), "helm dra: gpu-nri registered with containerd")
	for _, class := range []string{draDriver, "mig." + draDriver, "any." + draDriver} {
		_, err := s.kubectl("get", "deviceclass", class)
		require.NoError(t, err, "the chart's DeviceClass %s", class)
	}
	s.waitDevices(t, s.draDeviceNames())

	s.claimPod(t, "dra-helm", "one", 1, "", 0)
	s.checkClaimPod(t, "dra-helm", "one", 1)
	require.Len(t, s.checkpointClaims(t), 1)
	_, err = s.kubectl("-n", "dra-helm", "delete", "pod", "one", "--wait=true", "--timeout=60s")
	require.NoError(t, err)
	s.requireUnprepared(t, "pod deleted: its claim unprepared")

	out, err = s.tool("helm", "uninstall", "gpu-nri", "-n", "gpu-nri", "--wait")
	require.NoError(t, err, "helm uninstall")
	uninstalled = true
	require.Contains(t, out, `release "gpu-nri" uninstalled`)
	s.waitGone(t, "-n", "gpu-nri", "ds", "gpu-nri")
}
