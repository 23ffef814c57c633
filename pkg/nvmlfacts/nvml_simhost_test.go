//go:build cgo

package nvmlfacts

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// simulatedHost is built once: go-nvml binds NVML's symbols to the first
// libnvidia-ml a process loads, so every test of this package that loads
// the simulated NVML must load the same one.
var simulatedHost = sync.OnceValues(func() (*simhost.Host, error) {
	dir, err := os.MkdirTemp("", "nvmlfacts-simhost-")
	if err != nil {
		return nil, err
	}
	return simhost.Build(simhost.Options{Dir: dir, GPUs: 3, MIG: map[int]int{1: 2}, CUDAVersion: "12.6"})
})

// TestFillSimulatedNVML: the cgo build loads the simulated host's
// libnvidia-ml (test/csrc) through go-nvml and learns the CUDA version and
// every GPU's brand and compute capability as the host's manifest has them;
// the MIG devices' UUIDs come out right too.
func TestFillSimulatedNVML(t *testing.T) {
	h, err := simulatedHost()
	require.NoError(t, err)
	// The simulated NVML lists the GPUs whose /dev/nvidiaN this process
	// can open, like the real one: point it at the simulated /dev.
	t.Setenv("SIMGPU_DEV_ROOT", h.Config.DevRoot)
	inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	require.NoError(t, Fill(inv, h.Config.DriverRoot))
	require.Equal(t, "12.6", inv.CUDAVersion)
	require.Len(t, inv.GPUs, 3)
	for i, g := range inv.GPUs {
		require.Equal(t, h.GPUs[i].UUID, g.UUID)
		require.Equal(t, "nvidia", g.Brand, "GPU %d", i)
		require.Equal(t, "9.0", g.Arch, "GPU %d", i)
		require.Equal(t, int64(h.GPUs[i].MemoryMiB), g.MemoryMiB, "GPU %d", i)
	}
	require.Len(t, inv.GPUs[1].MIG, 2)
	for j, m := range inv.GPUs[1].MIG {
		require.Equal(t, h.GPUs[1].MIG[j].UUID, m.UUID)
		require.Equal(t, h.GPUs[1].MIG[j].Profile, m.Profile)
		require.Equal(t, int64(h.GPUs[1].MIG[j].MemoryMiB), m.MemoryMiB, "the MIG devices table's Memory-Usage total")
	}
}

// TestSimulatedNVMLThroughGoNVML asks NVIDIA's Go bindings what gpu-nri's
// MIG handling relies on: MIG mode, MIG device handles with their GPU and
// compute instance ids, UUIDs, parent handles, memory and PCI facts, all as
// the simulated host's manifest says (so the fixture the device plugin and
// pynvml see is the one the inventory is checked against).
func TestSimulatedNVMLThroughGoNVML(t *testing.T) {
	h, err := simulatedHost()
	require.NoError(t, err)
	t.Setenv("SIMGPU_DEV_ROOT", h.Config.DevRoot)
	lib := nvml.New(nvml.WithLibraryPath(filepath.Join(h.Config.DriverRoot, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")))
	require.Equal(t, nvml.SUCCESS, lib.Init())
	defer lib.Shutdown()
	v, ret := lib.SystemGetDriverVersion()
	require.Equal(t, nvml.SUCCESS, ret)
	require.Equal(t, h.DriverVersion, v)
	n, ret := lib.DeviceGetCount()
	require.Equal(t, nvml.SUCCESS, ret)
	require.Equal(t, len(h.GPUs), n)
	for i, g := range h.GPUs {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		require.Equal(t, nvml.SUCCESS, ret)
		uuid, _ := dev.GetUUID()
		require.Equal(t, g.UUID, uuid)
		name, _ := dev.GetName()
		require.Equal(t, g.Model, name)
		minor, _ := dev.GetMinorNumber()
		require.Equal(t, g.Minor, minor)
		mem, ret := dev.GetMemoryInfo()
		require.Equal(t, nvml.SUCCESS, ret)
		require.Equal(t, uint64(g.MemoryMiB)<<20, mem.Total)
		pci, ret := dev.GetPciInfo()
		require.Equal(t, nvml.SUCCESS, ret)
		require.Equal(t, g.PCIDeviceID, pci.PciDeviceId)
		arch, _ := dev.GetArchitecture()
		require.Equal(t, nvml.DeviceArchitecture(nvml.DEVICE_ARCH_HOPPER), arch)
		cur, _, ret := dev.GetMigMode()
		require.Equal(t, nvml.SUCCESS, ret)
		require.Equal(t, len(g.MIG) > 0, cur == nvml.DEVICE_MIG_ENABLE, "GPU %d MIG mode", i)
		for j, m := range g.MIG {
			md, ret := dev.GetMigDeviceHandleByIndex(j)
			require.Equal(t, nvml.SUCCESS, ret, "MIG %d:%d", i, j)
			isMIG, _ := md.IsMigDeviceHandle()
			require.True(t, isMIG)
			mu, _ := md.GetUUID()
			require.Equal(t, m.UUID, mu)
			gi, _ := md.GetGpuInstanceId()
			ci, _ := md.GetComputeInstanceId()
			require.Equal(t, [2]int{m.GI, m.CI}, [2]int{gi, ci})
			parent, ret := md.GetDeviceHandleFromMigDeviceHandle()
			require.Equal(t, nvml.SUCCESS, ret)
			pu, _ := parent.GetUUID()
			require.Equal(t, g.UUID, pu)
			attrs, ret := md.GetAttributes()
			require.Equal(t, nvml.SUCCESS, ret)
			require.Equal(t, uint64(m.MemoryMiB), attrs.MemorySizeMB)
			byUUID, ret := lib.DeviceGetHandleByUUID(m.UUID)
			require.Equal(t, nvml.SUCCESS, ret)
			bu, _ := byUUID.GetUUID()
			require.Equal(t, m.UUID, bu)
		}
		if len(g.MIG) > 0 {
			_, ret := dev.GetMigDeviceHandleByIndex(len(g.MIG))
			require.Equal(t, nvml.ERROR_NOT_FOUND, ret, "past the last MIG device")
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if h, err := simulatedHost(); err == nil {
		_ = os.RemoveAll(h.Options.Dir)
	}
	os.Exit(code)
}
