package simhost

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// TestSetMIG: GPU 1 leaves MIG mode and enters it again on the built host;
// the inventory, nvidia-smi -L and libnvidia-ml's GPU table follow.
func TestSetMIG(t *testing.T) {
	h := build(t, Options{GPUs: 2, MIG: map[int]int{1: 2}})
	smi := func(hh *Host) string {
		t.Helper()
		for _, b := range hh.Binaries {
			if strings.HasSuffix(b.Path, "/nvidia-smi") {
				out, err := exec.Command(b.HostPath, "-L").Output()
				require.NoError(t, err)
				return string(out)
			}
		}
		t.Fatal("no nvidia-smi")
		return ""
	}
	nvml := func(hh *Host) string {
		t.Helper()
		for _, l := range hh.Libraries {
			if l.SONAME == "libnvidia-ml.so.1" && !l.Lib32 {
				b, err := os.ReadFile(l.HostPath)
				require.NoError(t, err)
				return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
			}
		}
		t.Fatal("no libnvidia-ml")
		return ""
	}
	discover := func(hh *Host) *inventory.Inventory {
		t.Helper()
		inv, err := inventory.Discover(hh.Config, inventory.WithNodeStater(hh.Stater()))
		require.NoError(t, err)
		require.Empty(t, inv.Warnings)
		return inv
	}
	oldNVML := nvml(h)
	require.Len(t, discover(h).GPUs[1].MIG, 2)
	require.Contains(t, smi(h), "MIG 1g.10gb")

	off, err := h.SetMIG(1, 0)
	require.NoError(t, err)
	require.Empty(t, off.GPUs[1].MIG)
	require.Len(t, h.GPUs[1].MIG, 2, "h still describes the old host")
	inv := discover(off)
	require.Len(t, inv.GPUs, 2)
	require.Empty(t, inv.GPUs[1].MIG, "the inventory sees GPU 1 out of MIG mode")
	require.NotContains(t, smi(off), "MIG ", "nvidia-smi -L lists no MIG device")
	// libnvidia-ml has the new GPU table: it is the library a host built
	// without MIG has.
	require.NotEqual(t, oldNVML, nvml(off))
	require.Equal(t, nvml(build(t, Options{GPUs: 2})), nvml(off), "libnvidia-ml as on a host without MIG")
	for _, m := range h.GPUs[1].MIG {
		_, ok := off.Node("nvidia-caps/nvidia-cap" + strconv.Itoa(m.CICapMinor))
		require.True(t, ok, "the access nodes stay, as nvidia-modprobe leaves them")
	}

	on, err := off.SetMIG(1, 2)
	require.NoError(t, err)
	require.Equal(t, h.GPUs, on.GPUs)
	inv = discover(on)
	require.Len(t, inv.GPUs[1].MIG, 2)
	require.Equal(t, oldNVML, nvml(on), "libnvidia-ml as before")
	require.Len(t, on.Nodes, len(h.Nodes), "no access node twice")

	_, err = h.SetMIG(5, 1)
	require.ErrorContains(t, err, "no GPU 5")
}
