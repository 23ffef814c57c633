package plugin_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rgen "github.com/opencontainers/runtime-tools/generate"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/dra"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/nritest"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// A DRA claim container as the runtime creates it: the kubelet's CDI names
// resolved against the claim's names-only spec before NRI (the marker
// variable and the guard mount of a source that does not exist), then
// gpu-nri's adjustment applied by NRI's own generator. With gpu-nri's
// answer the container has the claim's GPU and no guard; without it (what
// a runtime that fails open creates while gpu-nri is not registered) the
// guard's missing source makes the runtime's mount fail, instead of a
// container without its GPU.
func TestScenarioDRAGuard(t *testing.T) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 4})
	require.NoError(t, err)
	cdiDir := t.TempDir()
	var d *nritest.Daemon
	cfg := config.Default()
	drv, err := dra.New(dra.Options{DriverName: "gpu.gpu-nri.io", NodeName: "node-a", PluginDir: t.TempDir(), CDISpecDir: cdiDir,
		Inventory: func() *inventory.Inventory { return d.Plugin.Inventory() }, Request: request.OptionsFromConfig(&cfg.Injection)})
	require.NoError(t, err)
	d = nritest.Start(t, h, nil, func(o *plugin.Options) { o.DRA = drv })
	s := &scenario{Daemon: d, t: t, host: h, cfg: d.Config, logs: d.Logs}

	const claimUID = "0b6f3c3e-5d1a-4f0e-9a57-3c1d2e4f5a6b"
	c := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "one", UID: claimUID}}
	c.Status.Allocation = &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{
		Results: []resourceapi.DeviceRequestAllocationResult{{Request: "gpu", Driver: "gpu.gpu-nri.io", Pool: "node-a", Device: "gpu-1"}}}}
	c.Status.ReservedFor = []resourceapi.ResourceClaimConsumerReference{{Resource: "pods", Name: "pod-claim", UID: types.UID("uid-claim")}}
	res, err := drv.PrepareResourceClaims(context.Background(), []*resourceapi.ResourceClaim{c})
	require.NoError(t, err)
	require.NoError(t, res[c.UID].Err)
	ids := res[c.UID].Devices[0].CDIDeviceIDs
	require.Len(t, ids, 1)

	guards := func(sp *rspec.Spec) []string {
		var out []string
		for _, m := range sp.Mounts {
			if strings.HasPrefix(m.Destination, dra.GuardDir+"/") {
				out = append(out, m.Source)
			}
		}
		return out
	}

	// Without gpu-nri: the runtime's CDI injection alone.
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(cdiDir), cdiapi.WithAutoRefresh(false))
	require.NoError(t, err)
	g, err := rgen.New("linux")
	require.NoError(t, err)
	_, err = cache.InjectDevices(g.Config, ids...)
	require.NoError(t, err)
	require.Equal(t, []string{dra.GuardHostPath}, guards(g.Config), "the guard, whose source does not exist, is all the runtime adds")
	require.Empty(t, devicePaths(g.Config))

	// With gpu-nri's answer: the claim's GPU, every edit once, no guard.
	sp, err := s.createAfterCDI("claim", []string{cdiDir}, ids, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia1", "/dev/nvidiactl"}, devicePaths(sp))
	require.Empty(t, guards(sp), "gpu-nri's adjustment removes the guard")
	requireOnce(t, sp, 2)
}
