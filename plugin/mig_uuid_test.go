package plugin_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/nritest"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// TestScenarioMIGByUUID: the daemon, reading the host with the driver's
// facts as it does in production (nvidia-smi -L for MIG UUIDs, in either
// build), injects MIG devices asked for by UUID in any letter case, by a
// device-plugin volume mount named after the UUID, and mixed with the
// GPU:MIG form. GPU 3 has three MIG devices, which the simulated
// nvidia-smi numbers in the reverse of the inventory's order.
func TestScenarioMIGByUUID(t *testing.T) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 4, MIG: map[int]int{3: 3}})
	require.NoError(t, err)
	d := nritest.Start(t, h, nil, func(o *plugin.Options) {
		o.HostOptions = []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())} // facts on
	})
	s := &scenario{Daemon: d, t: t, host: h, cfg: d.Config, logs: d.Logs}

	capsOf := func(i int) []string {
		m := h.GPUs[3].MIG[i]
		return []string{"/dev/nvidia-caps/nvidia-cap" + itoa(int64(m.GICapMinor)), "/dev/nvidia-caps/nvidia-cap" + itoa(int64(m.CICapMinor))}
	}
	uuid := func(i int) string { return h.GPUs[3].MIG[i].UUID }
	dpMount := func(id string) []*api.Mount {
		return []*api.Mount{{Source: "/dev/null", Destination: "/var/run/nvidia-container-devices/" + id}}
	}
	for _, tc := range []struct {
		name   string
		env    string
		mounts []*api.Mount
		mig    []int // GPU 3's MIG devices expected
	}{
		{"MIG-<uuid>", uuid(0), nil, []int{0}},
		{"lower case", strings.ToLower(uuid(2)), nil, []int{2}},
		{"upper case", "MIG-" + strings.ToUpper(strings.TrimPrefix(uuid(1), "MIG-")), nil, []int{1}},
		{"device-plugin volume mount", "/var/run/nvidia-container-devices", dpMount(uuid(2)), []int{2}},
		{"mixed with 3:0", "3:0," + uuid(1), nil, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := s.create("default", "mig", nil, []string{"NVIDIA_VISIBLE_DEVICES=" + tc.env}, tc.mounts)
			require.NoError(t, err)
			got := devicePaths(spec)
			require.Contains(t, got, "/dev/nvidia3")
			for i := range h.GPUs[3].MIG {
				for _, c := range capsOf(i) {
					if slices.Contains(tc.mig, i) {
						require.Contains(t, got, c, "MIG device 3:%d", i)
					} else {
						require.NotContains(t, got, c, "MIG device 3:%d was not asked for", i)
					}
				}
			}
		})
	}
}
