//go:build k8s

package k8s

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	resourcev1 "k8s.io/api/resource/v1"
)

// testDRAUpgrade: the node's driver is upgraded (simhost.Upgrade: every
// driver file of the new version, /proc's version with it, as after the
// package upgrade and a reboot) while gpu-nri runs; the ResourceSlices then
// carry the new driverVersion and cudaDriverVersion on every device, in one
// slice, with no device of the old inventory left, and a claim pod gets the
// new driver's libcuda. The old driver is put back in the cleanup. all are
// the published device names.
func (s *k8sSuite) testDRAUpgrade(t *testing.T, all []string) {
	old := s.n.host
	const version, cuda = "550.90.07", "12.5"
	s.waitDevices(t, all)
	nh, err := old.Upgrade(version, cuda)
	require.NoError(t, err, "simulated driver upgrade")
	t.Cleanup(func() {
		if _, err := nh.Upgrade(old.DriverVersion, old.CUDAVersion); err != nil {
			t.Errorf("putting driver %s back: %v", old.DriverVersion, err)
		}
	})
	err = eventually(90*time.Second, func() error {
		var l resourcev1.ResourceSliceList
		if err := s.getJSON(&l, "get", "resourceslices", "--field-selector", "spec.driver="+draDriver); err != nil {
			return err
		}
		if len(l.Items) != 1 {
			return fmt.Errorf("%d ResourceSlices of %s, want 1", len(l.Items), draDriver)
		}
		var names []string
		for _, d := range l.Items[0].Spec.Devices {
			names = append(names, d.Name)
			dv, cv := d.Attributes["driverVersion"].VersionValue, d.Attributes["cudaDriverVersion"].VersionValue
			if dv == nil || cv == nil || *dv != "550.90.7" || *cv != "12.5.0" {
				return fmt.Errorf("device %s: driverVersion %v cudaDriverVersion %v", d.Name, deref(dv), deref(cv))
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, all) {
			return fmt.Errorf("published %v, want %v", names, all)
		}
		return nil
	})
	if err != nil {
		logs, _ := s.kubectl("-n", "gpu-nri", "logs", "ds/gpu-nri", "--tail=30")
		t.Fatalf("after the upgrade to %s: %v\n%s", version, err, logs)
	}
	out, err := s.kubectl("get", "resourceslices", "-o",
		`custom-columns=NAME:.metadata.name,DRIVER-VERSION:.spec.devices[0].attributes.driverVersion.version,CUDA:.spec.devices[0].attributes.cudaDriverVersion.version`)
	require.NoError(t, err)
	t.Logf("$ kubectl get resourceslices (after the upgrade)\n%s", out)

	s.claimPod(t, "dra", "upgraded", 1, "", 0)
	gpus, cudaLine := s.probe(t, "dra", "upgraded")
	want, _ := s.allocated(t, "dra", "upgraded")
	require.Equal(t, want, gpus)
	require.Equal(t, fmt.Sprintf("dlopen=ok lib=libcuda.so.1 devices=1 cuda=%d", nh.CUDAAPIVersion), cudaLine, "the new driver's libcuda in the claim pod")
}

func deref(p *string) string {
	if p == nil {
		return "<none>"
	}
	return *p
}
