package inventory_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/nvmlfacts"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// TestDiscoverSimhost checks Discover against the facts of the project's
// simulated host (compiled libraries with real SONAMEs, real ld.so.cache).
func TestDiscoverSimhost(t *testing.T) {
	tests := []struct {
		name string
		opts simhost.Options
		// rooted reads the host as the DaemonSet does: host.root is the
		// simulated host's directory, not "/".
		rooted bool
	}{
		{"four GPUs", simhost.Options{}, false},
		{"eight GPUs with MIG", simhost.Options{GPUs: 8, MIG: map[int]int{0: 2, 5: 3}}, false},
		{"another driver version", simhost.Options{GPUs: 2, DriverVersion: "570.86.15"}, false},
		{"32-bit libraries", simhost.Options{GPUs: 1, Lib32: true}, false},
		{"no ld.so.cache", simhost.Options{GPUs: 1, Omit: []string{"ldcache"}}, false},
		{"no uvm, no firmware", simhost.Options{GPUs: 1, Omit: []string{"uvm", "firmware"}}, false},
		{"real nodes", simhost.Options{GPUs: 2, RealNodes: true}, false},
		{"Debian's packaged driver, host.root set", simhost.Options{GPUs: 2, Layout: simhost.LayoutDebian, MIG: map[int]int{1: 2}}, true},
		{"Debian's packaged driver, no ld.so.cache, host.root set", simhost.Options{GPUs: 1, Layout: simhost.LayoutDebian, Omit: []string{"ldcache"}}, true},
		{"Debian's packaged driver, host.root /", simhost.Options{GPUs: 1, Layout: simhost.LayoutDebian, MIG: map[int]int{0: 1}}, false},
		{"no udev (no dri/by-path): DRI from /sys, host.root set", simhost.Options{GPUs: 2, Omit: []string{"dri-by-path"}}, true},
		{"no SONAME links (no GBM link on the host)", simhost.Options{GPUs: 1, Omit: []string{"soname-links"}}, false},
		{"Debian's packaged driver, no SONAME links", simhost.Options{GPUs: 1, Layout: simhost.LayoutDebian, Omit: []string{"soname-links"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.RealNodes && os.Geteuid() != 0 {
				t.Skip("real device nodes need root (mknod)")
			}
			tt.opts.Dir = t.TempDir()
			h, err := simhost.Build(tt.opts)
			require.NoError(t, err)
			hc := h.Config
			if tt.rooted {
				hc = h.RootedConfig()
			}
			// The driver's own facts, as the daemon asks for them: nvidia-smi
			// (static build) or NVML (cgo), found and run inside the root.
			inv, err := inventory.Discover(hc, inventory.WithNodeStater(h.Stater()),
				inventory.WithGPUFacts(func(inv *inventory.Inventory) error { return nvmlfacts.Fill(inv, hc.View(hc.DriverRoot)) }))
			require.NoError(t, err)
			for _, w := range inv.Warnings {
				require.NotContains(t, w, "gpu facts", "the driver's facts must be learned")
			}
			require.Equal(t, h.CUDAVersion, inv.CUDAVersion)

			require.Equal(t, h.DriverVersion, inv.DriverVersion)
			require.Len(t, inv.GPUs, len(h.GPUs))
			for i, want := range h.GPUs {
				g := inv.GPUs[i]
				require.Equal(t, want.Index, g.Index)
				require.Equal(t, want.Minor, g.Minor)
				require.Equal(t, want.UUID, g.UUID)
				require.Equal(t, strings.ToLower(want.PCIBusID), g.PCIBusID)
				require.Equal(t, want.Model, g.Model)
				if !slices.Contains(tt.opts.Omit, "dri") && (tt.rooted || !slices.Contains(tt.opts.Omit, "dri-by-path")) {
					var dri []string
					for _, n := range g.DRI {
						dri = append(dri, fmt.Sprintf("%s %d:%d", n.Path, n.Major, n.Minor))
					}
					require.Equal(t, []string{fmt.Sprintf("/dev/dri/card%d 226:%d", want.CardMinor, want.CardMinor),
						fmt.Sprintf("/dev/dri/renderD%d 226:%d", want.RenderMinor, want.RenderMinor)}, dri)
				}
				require.Len(t, g.MIG, len(want.MIG))
				for j, m := range want.MIG {
					require.Equal(t, m.GI, g.MIG[j].GI)
					require.Equal(t, m.CI, g.MIG[j].CI)
					// The UUID, learned from nvidia-smi -L in both builds and
					// matched on GI/CI although nvidia-smi numbers the
					// devices in another order.
					require.Equal(t, m.UUID, g.MIG[j].UUID, "MIG %d:%d", i, j)
					require.Equal(t, int64(m.GICapMinor), g.MIG[j].Caps[0].Minor)
					require.Equal(t, int64(m.CICapMinor), g.MIG[j].Caps[1].Minor)
				}
			}
			if slices.Contains(tt.opts.Omit, "uvm") {
				require.Nil(t, inv.UVM)
			} else {
				require.NotNil(t, inv.UVM)
			}

			// Every library simhost installed is found, with its SONAME,
			// under the right capability, and nothing else.
			var want, got []string
			for _, f := range h.Libraries {
				c := f.Capability
				if f.Lib32 {
					c = inventory.Compat32
				}
				want = append(want, string(c)+" "+f.Path+" "+f.SONAME)
			}
			for c, files := range inv.Libraries {
				for _, f := range files {
					require.True(t, strings.HasPrefix(f.HostPath, hc.DriverRoot+"/"), f.HostPath)
					got = append(got, string(c)+" "+f.Path+" "+f.SONAME)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			require.Equal(t, want, got)
			require.Len(t, inv.Firmware, len(h.Firmware))
			// Display: the OutputClass file and the X.Org modules (the
			// unversioned GLX module name as the same file), where found;
			// graphics: GBM's backend, gbm/nvidia-drm_gbm.so, as the
			// allocator itself.
			want, got = nil, nil
			gbm := func(f string) bool { return strings.Contains(f, "/gbm/") }
			for _, f := range h.ConfigFiles {
				if f.Capability == inventory.Display || gbm(f.Path) {
					want = append(want, f.Path+" "+strings.TrimPrefix(f.HostPath, h.Config.DriverRoot))
				}
			}
			for _, f := range append(inv.ConfigFiles[inventory.Display], inv.ConfigFiles[inventory.Graphics]...) {
				if f.Capability == inventory.Display || gbm(f.Path) {
					got = append(got, f.Path+" "+strings.TrimPrefix(f.HostPath, hc.DriverRoot))
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			require.Equal(t, want, got)
			t.Logf("%d libraries (%d 32-bit), %d warnings, simhost notes %q",
				len(got), len(inv.Libraries[inventory.Compat32]), len(inv.Warnings), h.Notes)
		})
	}
}
