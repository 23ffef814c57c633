//go:build !cgo

package nvmlfacts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// TestFillRunsNvidiaSMI builds a driver root whose nvidia-smi is a script
// printing the captured output.
func TestFillRunsNvidiaSMI(t *testing.T) {
	root := t.TempDir()
	q, err := filepath.Abs(filepath.Join("testdata", "nvidia-smi-q.txt"))
	require.NoError(t, err)
	caps, err := filepath.Abs(filepath.Join("testdata", "compute-cap.csv"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	script := "#!/bin/sh\nif [ \"$1\" = -q ]; then exec cat " + q + "; fi\nexec cat " + caps + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/bin/nvidia-smi"), []byte(script), 0o755))

	inv := &inventory.Inventory{GPUs: []inventory.GPU{{Index: 0, UUID: uuidH100}, {Index: 1, UUID: uuidT4}}}
	require.NoError(t, Fill(inv, root))
	require.Equal(t, "12.4", inv.CUDAVersion)
	require.Equal(t, "nvidia", inv.GPUs[0].Brand)
	require.Equal(t, "9.0", inv.GPUs[0].Arch)
	require.Equal(t, "7.5", inv.GPUs[1].Arch)
	require.Equal(t, []int64{81559, 15360}, []int64{inv.GPUs[0].MemoryMiB, inv.GPUs[1].MemoryMiB})
}

// TestFillSimulatedSMI: without cgo, the simulated host's nvidia-smi
// (test/csrc/nvidia-smi.c, NVIDIA's -q and -L formats) gives every GPU's
// framebuffer size and every MIG device's UUID and profile.
func TestFillSimulatedSMI(t *testing.T) {
	h, err := simhost.Build(simhost.Options{Dir: t.TempDir(), GPUs: 3, MIG: map[int]int{1: 2}})
	require.NoError(t, err)
	t.Setenv("SIMGPU_DEV_ROOT", h.Config.DevRoot)
	inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	require.NoError(t, Fill(inv, h.Config.DriverRoot))
	require.Len(t, inv.GPUs, 3)
	for i, g := range inv.GPUs {
		require.Equal(t, int64(h.GPUs[i].MemoryMiB), g.MemoryMiB, "GPU %d", i)
	}
	require.Len(t, inv.GPUs[1].MIG, 2)
	for j, m := range inv.GPUs[1].MIG {
		require.Equal(t, h.GPUs[1].MIG[j].UUID, m.UUID)
		require.Equal(t, h.GPUs[1].MIG[j].Profile, m.Profile)
		require.Equal(t, int64(h.GPUs[1].MIG[j].MemoryMiB), m.MemoryMiB, "the MIG devices table's Memory-Usage total")
	}
}

func TestFillNvidiaSMIFails(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/bin/nvidia-smi"),
		[]byte("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n"), 0o755))
	inv := &inventory.Inventory{GPUs: []inventory.GPU{{UUID: uuidT4}}}
	err := Fill(inv, root)
	require.ErrorContains(t, err, "NVIDIA-SMI has failed")
	require.Empty(t, inv.CUDAVersion)
}

// TestFillDebianAlternatives lays out a driver root as Debian's packages
// do: /usr/bin/nvidia-smi and the loader reached only through absolute
// links (/etc/alternatives, /lib64 -> /lib/x86_64-linux-gnu), the libraries
// in nvidia/current. Followed by the kernel from the plugin's own root,
// those links leave the driver root (exit 127 in the DaemonSet); nvidia-smi
// and its loader must be resolved inside it, and the loader given the
// directory of the inventory's libraries.
func TestFillDebianAlternatives(t *testing.T) {
	root := t.TempDir()
	q, err := filepath.Abs(filepath.Join("testdata", "nvidia-smi-q.txt"))
	require.NoError(t, err)
	caps, err := filepath.Abs(filepath.Join("testdata", "compute-cap.csv"))
	require.NoError(t, err)
	marker := filepath.Join(t.TempDir(), "library-path")
	current := "/usr/lib/x86_64-linux-gnu/nvidia/current"
	for _, d := range []string{"usr/bin", "usr/lib/nvidia/current", "etc/alternatives", "usr/lib/x86_64-linux-gnu/nvidia/current", "usr/lib64"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for link, target := range map[string]string{
		"usr/bin/nvidia-smi":             "/etc/alternatives/nvidia-smi",
		"etc/alternatives/nvidia-smi":    "/usr/lib/nvidia/current/nvidia-smi",
		"lib":                            "usr/lib",
		"lib64":                          "usr/lib64",
		"usr/lib64/ld-linux-x86-64.so.2": "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
		"usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1": "/etc/alternatives/nvidia--libnvidia-ml.so.1-x86_64-linux-gnu",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(root, link)))
	}
	smi := "#!/bin/sh\nif [ \"$1\" = -q ]; then exec cat " + q + "; fi\nexec cat " + caps + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/lib/nvidia/current/nvidia-smi"), []byte(smi), 0o755))
	// The driver root's "loader": checks how it is called, records the
	// library path and runs the program.
	loader := "#!/bin/sh\n[ \"$1\" = --library-path ] || exit 3\nprintf '%s' \"$2\" >" + marker + "\nshift 2\nexec \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), []byte(loader), 0o755))

	inv := &inventory.Inventory{
		GPUs:      []inventory.GPU{{Index: 0, UUID: uuidH100}, {Index: 1, UUID: uuidT4}},
		Libraries: map[inventory.Capability][]inventory.File{inventory.Utility: {{Path: current + "/libnvidia-ml.so.550.54.14"}}},
		Binaries:  map[inventory.Capability][]inventory.File{inventory.Utility: {{Path: "/usr/bin/nvidia-smi"}}},
	}
	require.NoError(t, Fill(inv, root))
	require.Equal(t, "12.4", inv.CUDAVersion)
	require.Equal(t, "9.0", inv.GPUs[0].Arch)
	got, err := os.ReadFile(marker)
	require.NoError(t, err, "nvidia-smi did not run through the driver root's loader")
	require.Equal(t, []string{filepath.Join(root, current), filepath.Join(root, "usr/lib/x86_64-linux-gnu"), filepath.Join(root, "usr/lib64"), filepath.Join(root, "usr/lib")},
		strings.Split(string(got), ":"), "the libraries' directory first, then the standard ones, each resolved inside the root once")
}
