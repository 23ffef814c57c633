package engine_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/nvmlfacts"
	"github.com/gpu-nri/gpu-nri/pkg/request"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// TestDecideMIGByUUID asks for MIG devices by UUID, as NVIDIA's device
// plugin names them, on an inventory whose MIG UUIDs were learned the way
// the daemon learns them (nvmlfacts.Fill: nvidia-smi in either build). The
// simulated nvidia-smi numbers GPU 3's MIG devices in another order than
// the inventory, so a UUID must land on the device with its GI/CI.
func TestDecideMIGByUUID(t *testing.T) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 4, MIG: map[int]int{3: 3}})
	require.NoError(t, err)
	inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()),
		inventory.WithGPUFacts(func(inv *inventory.Inventory) error { return nvmlfacts.Fill(inv, h.Config.View(h.Config.DriverRoot)) }))
	require.NoError(t, err)
	eng := newEngine(t, h, nil)

	caps := func(ms ...int) []string {
		var out []string
		for _, i := range ms {
			m := h.GPUs[3].MIG[i]
			out = append(out, "/dev/nvidia-caps/nvidia-cap"+strconv.Itoa(m.GICapMinor), "/dev/nvidia-caps/nvidia-cap"+strconv.Itoa(m.CICapMinor))
		}
		return out
	}
	uuid := func(i int) string { return h.GPUs[3].MIG[i].UUID }
	upper := func(u string) string { return "MIG-" + strings.ToUpper(strings.TrimPrefix(u, "MIG-")) }
	mount := func(id string) []request.Mount {
		return []request.Mount{{Source: "/dev/null", Destination: "/var/run/nvidia-container-devices/" + id}}
	}
	for _, tc := range []struct {
		name   string
		env    string
		mounts []request.Mount
		// mig are the MIG devices of GPU 3 expected; gpu0 whether GPU 0 too.
		mig  []int
		gpu0 bool
	}{
		{"MIG-<uuid>", uuid(2), nil, []int{2}, false},
		{"lower case", strings.ToLower(uuid(0)), nil, []int{0}, false},
		{"upper case after MIG-", upper(uuid(1)), nil, []int{1}, false},
		{"device-plugin volume mount", "/var/run/nvidia-container-devices", mount(uuid(1)), []int{1}, false},
		{"mixed with the GPU:MIG form", "3:0," + uuid(2), nil, []int{0, 2}, false},
		{"mixed with a whole GPU", "0," + strings.ToLower(uuid(1)), nil, []int{1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &request.Input{Namespace: "ns", Pod: "p", Container: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=" + tc.env}, Mounts: tc.mounts}
			a := eng.Decide(engine.Fixed(inv), engine.Query{Input: in})
			require.NoError(t, a.Err)
			require.Equal(t, engine.OutcomeInjected, a.Outcome)
			require.Len(t, a.Result.Selection.MIGs, len(tc.mig))
			got := nodes(a.Result)
			for _, c := range caps(tc.mig...) {
				require.Contains(t, got, c)
			}
			for i := range h.GPUs[3].MIG {
				if !slices.Contains(tc.mig, i) {
					for _, c := range caps(i) {
						require.NotContains(t, got, c, "MIG device 3:%d was not asked for", i)
					}
				}
			}
			require.Contains(t, got, "/dev/nvidia3")
			if tc.gpu0 {
				require.Contains(t, got, "/dev/nvidia0")
			} else {
				require.NotContains(t, got, "/dev/nvidia0")
			}
		})
	}

	// A MIG UUID the host does not have is still "no such device".
	in := &request.Input{Namespace: "ns", Pod: "p", Container: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=MIG-00000000-0000-0000-0000-000000000000"}}
	a := eng.Decide(engine.Fixed(inv), engine.Query{Input: in})
	require.ErrorIs(t, a.Err, engine.ErrUnknownDevice)
	require.NotContains(t, a.Err.Error(), "are unknown", "every MIG UUID is known here")

	// Without the driver's facts (--no-nvml) the error says why.
	bare, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	in.Env = []string{"NVIDIA_VISIBLE_DEVICES=" + uuid(0)}
	a = eng.Decide(engine.Fixed(bare), engine.Query{Input: in})
	require.ErrorIs(t, a.Err, engine.ErrUnknownDevice)
	require.ErrorContains(t, a.Err, "the UUIDs of 3 MIG device(s) are unknown")
}
