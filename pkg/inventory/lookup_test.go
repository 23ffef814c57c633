package inventory_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

func TestLookups(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 4, version: "550.54.14", mig: map[int]int{2: 2}})
	inv, err := inventory.Discover(h.host, inventory.WithNodeStater(h.nodes),
		inventory.WithGPUFacts(func(inv *inventory.Inventory) error {
			for i := range inv.GPUs {
				inv.GPUs[i].Brand = "Tesla"
				for j := range inv.GPUs[i].MIG {
					inv.GPUs[i].MIG[j].UUID = "MIG-" + strings.Repeat(string(rune('a'+j)), 8) + "-1111-2222-3333-444444444444"
				}
			}
			inv.CUDAVersion = "12.4"
			return nil
		}),
		inventory.WithGPUFacts(func(*inventory.Inventory) error { return errors.New("NVML not found") }))
	require.NoError(t, err)
	require.Equal(t, "12.4", inv.CUDAVersion)
	require.True(t, hasWarning(inv, "gpu facts: NVML not found"))

	gpuTests := []struct {
		name   string
		lookup func() (*inventory.GPU, bool)
		want   int // index, -1 for not found
	}{
		{"index", func() (*inventory.GPU, bool) { return inv.GPUByIndex(3) }, 3},
		{"index out of range", func() (*inventory.GPU, bool) { return inv.GPUByIndex(4) }, -1},
		{"negative index", func() (*inventory.GPU, bool) { return inv.GPUByIndex(-1) }, -1},
		{"uuid", func() (*inventory.GPU, bool) { return inv.GPUByUUID(uuidOf(1)) }, 1},
		{"uuid lower case", func() (*inventory.GPU, bool) { return inv.GPUByUUID(strings.ToLower(uuidOf(2))) }, 2},
		{"unknown uuid", func() (*inventory.GPU, bool) { return inv.GPUByUUID("GPU-nope") }, -1},
		{"empty uuid", func() (*inventory.GPU, bool) { return inv.GPUByUUID("") }, -1},
		{"pci", func() (*inventory.GPU, bool) { return inv.GPUByPCI("0000:3a:00.0") }, 2},
		{"pci 8-digit domain upper case", func() (*inventory.GPU, bool) { return inv.GPUByPCI("00000000:4A:00.0") }, 3},
		{"pci short", func() (*inventory.GPU, bool) { return inv.GPUByPCI("1b:00.0") }, -1},
		{"pci short found", func() (*inventory.GPU, bool) { return inv.GPUByPCI("1A:00.0") }, 0},
		{"pci upper hex", func() (*inventory.GPU, bool) { return inv.GPUByPCI("0000:2A:00.0") }, 1},
		{"pci unknown bus", func() (*inventory.GPU, bool) { return inv.GPUByPCI("0000:2B:00.0") }, -1},
		{"pci malformed", func() (*inventory.GPU, bool) { return inv.GPUByPCI("0000:10:00") }, -1},
	}
	for _, tt := range gpuTests {
		t.Run(tt.name, func(t *testing.T) {
			g, ok := tt.lookup()
			if tt.want < 0 {
				require.False(t, ok)
				require.Nil(t, g)
				return
			}
			require.True(t, ok)
			require.Equal(t, tt.want, g.Index)
			require.Equal(t, "Tesla", g.Brand)
		})
	}

	m, ok := inv.MIGByUUID("mig-bbbbbbbb-1111-2222-3333-444444444444")
	require.True(t, ok)
	require.Equal(t, 2, m.GPU)
	require.Equal(t, 1, m.Index)
	_, ok = inv.MIGByUUID("MIG-cccccccc-1111-2222-3333-444444444444")
	require.False(t, ok)
	_, ok = inv.MIGByUUID(uuidOf(0))
	require.False(t, ok)
	m, ok = inv.MIGByUUID("MIG-" + uuidOf(2) + "/1/0")
	require.True(t, ok)
	require.Equal(t, 0, m.Index)
	_, ok = inv.MIGByUUID("MIG-" + uuidOf(2) + "/1/9")
	require.False(t, ok)

	// A hand-built inventory (other packages' tests) goes through New.
	hand, err := inventory.New(&inventory.Inventory{GPUs: []inventory.GPU{{Index: 0, UUID: "GPU-x", PCIBusID: "0000:3b:00.0",
		MIG: []inventory.MIGDevice{{UUID: "MIG-y"}}}}})
	require.NoError(t, err)
	g, ok := hand.GPUByUUID("gpu-X")
	require.True(t, ok)
	require.Equal(t, "GPU-x", g.UUID)
	_, ok = hand.GPUByPCI("3B:00.0")
	require.True(t, ok)
	_, ok = hand.MIGByUUID("MIG-Y")
	require.True(t, ok)
	_, ok = hand.GPUByIndex(1)
	require.False(t, ok)

	// Out of index order: refused, since GPUByIndex trusts positions.
	_, err = inventory.New(&inventory.Inventory{GPUs: []inventory.GPU{{Index: 1}, {Index: 0}}})
	require.EqualError(t, err, "inventory: GPU at position 0 has index 1: GPUs must be in index order")
}

func TestNormalizePCIBusID(t *testing.T) {
	for in, want := range map[string]string{
		"0000:3b:00.0":     "0000:3b:00.0",
		"00000000:3B:00.0": "0000:3b:00.0",
		"3b:00.0":          "0000:3b:00.0",
		"10000:01:1f.7":    "10000:01:1f.7",
		"3b:00":            "",
		"3b:20.0":          "",
		"3b:00.8":          "",
		"x:3b:00.0":        "",
		"1:2:3b:00.0":      "",
		"":                 "",
	} {
		got, ok := inventory.NormalizePCIBusID(in)
		require.Equal(t, want != "", ok, in)
		require.Equal(t, want, got, in)
	}
}

// TestDriverRootAndView: the driver under /run/nvidia/driver (GPU Operator),
// the host seen under a prefix; every emitted path is a host path.
func TestDriverRootAndView(t *testing.T) {
	const ver = "550.54.14"
	h := newFakeHost(t, fixture{gpus: 1, version: ver})
	driver := filepath.Join(h.dir, "run/nvidia/driver")
	require.NoError(t, os.MkdirAll(driver, 0o755))
	for _, d := range []string{"usr", "etc", "lib"} {
		require.NoError(t, os.Rename(filepath.Join(h.dir, d), filepath.Join(driver, d)))
	}
	// An absolute symlink inside the driver root stays inside it.
	require.NoError(t, os.Symlink("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so."+ver,
		filepath.Join(driver, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.abs")))
	// A persistenced socket on the host wins over the driver root's.
	for _, dir := range []string{filepath.Join(h.dir, "run/nvidia-persistenced"), filepath.Join(driver, "run/nvidia-persistenced")} {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		sock := filepath.Join(dir, "socket")
		if len(sock) > 100 {
			t.Skipf("socket path %s too long for AF_UNIX", sock)
		}
		l, err := net.Listen("unix", sock)
		require.NoError(t, err)
		defer l.Close()
	}
	h.host.DriverRoot = "/run/nvidia/driver"
	inv, err := inventory.Discover(h.host, inventory.WithNodeStater(h.nodes))
	require.NoError(t, err)
	cuda := inv.Libraries[inventory.Compute][0]
	require.Equal(t, "/run/nvidia/driver/usr/lib/x86_64-linux-gnu/libcuda.so."+ver, cuda.HostPath)
	require.Equal(t, "/usr/lib/x86_64-linux-gnu/libcuda.so."+ver, cuda.Path)
	require.Equal(t, "/run/nvidia/driver/usr/bin/nvidia-smi", inv.Binaries[inventory.Utility][0].HostPath)
	require.Equal(t, "/usr/bin/nvidia-smi", inv.Binaries[inventory.Utility][0].Path)
	require.Equal(t, "/run/nvidia/driver/lib/firmware/nvidia/"+ver+"/gsp_ga10x.bin", inv.Firmware[0].HostPath)
	require.Equal(t, []inventory.File{{HostPath: "/run/nvidia-persistenced/socket", Path: "/run/nvidia-persistenced/socket",
		Capability: inventory.Utility, BaseCapability: inventory.Utility}}, inv.Sockets[inventory.Utility])
	require.Equal(t, "/dev/nvidia0", inv.GPUs[0].Node.HostPath)
	for _, files := range inv.Libraries {
		for _, f := range files {
			require.True(t, strings.HasPrefix(f.HostPath, "/run/nvidia/driver/"), f.HostPath)
			require.NotContains(t, f.HostPath, h.dir)
		}
	}
}

// TestSymlinkEscape: a library symlink pointing outside the driver root is
// resolved inside it, never outside.
func TestSymlinkEscape(t *testing.T) {
	const ver = "550.54.14"
	h := newFakeHost(t, fixture{gpus: 1, version: ver, omit: map[string]bool{"ldcache": true}})
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "evil"), elfSO(64, "libcuda.so.1"), 0o644))
	lib := filepath.Join(h.dir, "usr/lib/x86_64-linux-gnu/libcuda.so."+ver)
	require.NoError(t, os.Remove(lib))
	require.NoError(t, os.Symlink("../../../../../../../../../../"+filepath.Join(outside, "evil"), lib))
	inv, err := inventory.Discover(h.host, inventory.WithNodeStater(h.nodes))
	require.NoError(t, err)
	for _, f := range inv.Libraries[inventory.Compute] {
		require.NotContains(t, f.HostPath, "evil")
	}
}
