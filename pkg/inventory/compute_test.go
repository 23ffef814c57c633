package inventory_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// TestComputeProblems: Discover finds, once, what stops CUDA in a
// container, and CheckCompute answers per request from that alone.
func TestComputeProblems(t *testing.T) {
	tests := []struct {
		name string
		opts simhost.Options
		// kernel, when set, replaces the loaded kernel module's version
		// (the userland was upgraded without a reboot).
		kernel    string
		wantCause []string
		wantFix   []string
	}{
		{name: "healthy", opts: simhost.Options{GPUs: 1}},
		{name: "nvidia-uvm not loaded", opts: simhost.Options{GPUs: 1, Omit: []string{"uvm"}},
			wantCause: []string{"the nvidia-uvm kernel module is not loaded (no nvidia-uvm in "},
			wantFix:   []string{"modprobe nvidia-uvm && nvidia-modprobe -u -c 0"}},
		{name: "userland 560, kernel module 550", opts: simhost.Options{GPUs: 1, DriverVersion: "560.35.03"}, kernel: "550.54.14",
			wantCause: []string{"are version 560.35.03 but the loaded kernel module is 550.54.14"},
			wantFix:   []string{"reboot the node"}},
		{name: "userland 560 without ld.so.cache, kernel module 550", opts: simhost.Options{GPUs: 1, DriverVersion: "560.35.03", Omit: []string{"ldcache"}}, kernel: "550.54.14",
			wantCause: []string{"are version 560.35.03 but the loaded kernel module is 550.54.14"},
			wantFix:   []string{"reboot the node"}},
		{name: "kernel module upgraded, Debian layout", opts: simhost.Options{GPUs: 1, Layout: simhost.LayoutDebian}, kernel: "570.86.15",
			wantCause: []string{"are version 550.54.14 but the loaded kernel module is 570.86.15"},
			wantFix:   []string{"reboot the node"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Dir = t.TempDir()
			h, err := simhost.Build(tt.opts)
			require.NoError(t, err)
			if tt.kernel != "" {
				v := filepath.Join(h.Config.ProcRoot, "driver/nvidia/version")
				require.NoError(t, os.Chmod(v, 0o644))
				require.NoError(t, os.WriteFile(v, []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  "+tt.kernel+"  Thu Feb 22 01:44:30 UTC 2024\n"), 0o444))
			}
			inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
			require.NoError(t, err)
			require.Len(t, inv.ComputeProblems, len(tt.wantCause), "%+v", inv.ComputeProblems)
			for i := range tt.wantCause {
				require.Contains(t, inv.ComputeProblems[i].Cause, tt.wantCause[i])
				require.Contains(t, inv.ComputeProblems[i].Fix, tt.wantFix[i])
			}

			w, err := inv.CheckCompute([]inventory.Capability{inventory.Utility, inventory.Graphics}, false)
			require.NoError(t, err, "no compute asked for")
			require.Empty(t, w)
			w, err = inv.CheckCompute([]inventory.Capability{inventory.Compute, inventory.Utility}, false)
			require.Empty(t, w)
			w2, err2 := inv.CheckCompute([]inventory.Capability{inventory.Compute}, true)
			require.NoError(t, err2, "allowed")
			if len(tt.wantCause) == 0 {
				require.NoError(t, err)
				require.Empty(t, w2)
				return
			}
			require.True(t, errors.Is(err, inventory.ErrComputeNotReady), err)
			for i := range tt.wantCause {
				require.ErrorContains(t, err, tt.wantCause[i])
				require.ErrorContains(t, err, tt.wantFix[i])
				require.Contains(t, w2, tt.wantCause[i])
			}
		})
	}
}
