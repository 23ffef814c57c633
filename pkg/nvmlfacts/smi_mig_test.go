package nvmlfacts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

const (
	migGPU0 = "GPU-4b5e4c6a-1d2f-4a3b-9c8d-0e1f2a3b4c5d"
	migGPU1 = "GPU-9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	migA    = "MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f"
	migB    = "MIG-cba663e8-9bed-5b25-b243-5985ef7c9beb"
	migC    = "MIG-1f2e3d4c-5b6a-5978-8695-a4b3c2d1e0f9"
)

func TestParseMIG(t *testing.T) {
	list, table := readTestdata(t, "nvidia-smi-L-mig.txt"), readTestdata(t, "nvidia-smi-mig.txt")
	tests := []struct {
		name        string
		list, table string
		want        []MIGFacts
		err         string
	}{
		{"current driver: -L joined with the MIG devices table on (GPU, MIG device)", list, table, []MIGFacts{
			{GPUUUID: migGPU1, GI: 2, CI: 0, UUID: migA, Profile: "3g.40gb", MemoryMiB: 40192},
			{GPUUUID: migGPU1, GI: 9, CI: 0, UUID: migB, Profile: "1g.10gb", MemoryMiB: 9728},
			{GPUUUID: migGPU1, GI: 10, CI: 0, UUID: migC, Profile: "1g.10gb", MemoryMiB: 9728},
		}, ""},
		{"pre-R470 driver: the UUID names its GI and CI, no table needed",
			"GPU 0: A100-SXM4-40GB (UUID: " + migGPU0 + ")\n" +
				"  MIG 3g.20gb Device 0: (UUID: MIG-" + migGPU0 + "/2/0)\n" +
				"  MIG 3g.20gb Device 1: (UUID: MIG-" + migGPU0 + "/1/0)\n", "",
			[]MIGFacts{
				{GPUUUID: migGPU0, GI: 2, CI: 0, UUID: "MIG-" + migGPU0 + "/2/0", Profile: "3g.20gb"},
				{GPUUUID: migGPU0, GI: 1, CI: 0, UUID: "MIG-" + migGPU0 + "/1/0", Profile: "3g.20gb"},
			}, ""},
		{"-L without a profile name (the UUID still read)",
			"GPU 0: A100-SXM4-40GB (UUID: " + migGPU0 + ")\n" +
				"  MIG Device 0: (UUID: MIG-" + migGPU0 + "/2/0)\n", "",
			[]MIGFacts{{GPUUUID: migGPU0, GI: 2, CI: 0, UUID: "MIG-" + migGPU0 + "/2/0"}}, ""},
		{"no MIG device", "GPU 0: NVIDIA H100 (UUID: " + migGPU0 + ")\n", "", nil, ""},
		{"table missing: no guess by position", list, "", nil, "not in nvidia-smi's MIG devices table"},
		{"MIG line before any GPU", "  MIG 1g.10gb Device 0: (UUID: " + migA + ")\n", "", nil, "MIG line before any GPU line"},
		{"a table row twice", list, table + "| MIG devices: |\n|  1    2   0   0  | x |\n", nil, "listed twice"},
		{"a Memory-Usage cell that is not used / total MiB: memory unknown, ids still read",
			"GPU 0: NVIDIA H100 (UUID: " + migGPU0 + ")\n  MIG 1g.10gb Device 0: (UUID: " + migA + ")\n",
			"| MIG devices: |\n|  0    7   0   0  |  N/A  | 16 0 |\n",
			[]MIGFacts{{GPUUUID: migGPU0, GI: 7, CI: 0, UUID: migA, Profile: "1g.10gb"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMIG(tt.list, tt.table)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// migInventory is GPU 1 of the testdata host as package inventory numbers
// it: MIG devices in ascending GI order.
func migInventory() *inventory.Inventory {
	return &inventory.Inventory{GPUs: []inventory.GPU{
		{Index: 0, UUID: migGPU0},
		{Index: 1, UUID: migGPU1, MIG: []inventory.MIGDevice{
			{GPU: 1, Index: 0, GI: 2, CI: 0}, {GPU: 1, Index: 1, GI: 9, CI: 0}, {GPU: 1, Index: 2, GI: 10, CI: 0}}},
	}}
}

func TestApplyMIG(t *testing.T) {
	inv := migInventory()
	// nvidia-smi's order differs from the inventory's: matching is by GI/CI.
	require.NoError(t, applyMIG(inv, []MIGFacts{
		{GPUUUID: "gpu-9A8B7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D", GI: 10, CI: 0, UUID: migC},
		{GPUUUID: migGPU1, GI: 2, CI: 0, UUID: migA, Profile: "3g.40gb", MemoryMiB: 40192},
		{GPUUUID: migGPU1, GI: 9, CI: 0, UUID: migB},
		{GPUUUID: migGPU0, GI: 1, CI: 0, UUID: "MIG-not-in-the-inventory"},
	}))
	require.Equal(t, []string{migA, migB, migC}, []string{inv.GPUs[1].MIG[0].UUID, inv.GPUs[1].MIG[1].UUID, inv.GPUs[1].MIG[2].UUID})
	require.Equal(t, []string{"3g.40gb", "", ""}, []string{inv.GPUs[1].MIG[0].Profile, inv.GPUs[1].MIG[1].Profile, inv.GPUs[1].MIG[2].Profile})
	require.Equal(t, []int64{40192, 0, 0}, []int64{inv.GPUs[1].MIG[0].MemoryMiB, inv.GPUs[1].MIG[1].MemoryMiB, inv.GPUs[1].MIG[2].MemoryMiB})

	inv = migInventory()
	err := applyMIG(inv, []MIGFacts{{GPUUUID: migGPU1, GI: 2, CI: 0, UUID: migA}})
	require.ErrorContains(t, err, "no UUID for MIG device 1:1 (gi9/ci0), 1:2 (gi10/ci0)")
	require.Equal(t, migA, inv.GPUs[1].MIG[0].UUID)
	require.Empty(t, inv.GPUs[1].MIG[1].UUID)
}

// TestFillLearnsMIGUUIDs runs a driver root's nvidia-smi (a script printing
// the captured -L and plain outputs) in either build: MIG UUIDs come from
// nvidia-smi in the cgo build too.
func TestFillLearnsMIGUUIDs(t *testing.T) {
	root := t.TempDir()
	abs := func(name string) string {
		p, err := filepath.Abs(filepath.Join("testdata", name))
		require.NoError(t, err)
		return p
	}
	script := "#!/bin/sh\ncase \"$1\" in\n" +
		"-L) exec cat " + abs("nvidia-smi-L-mig.txt") + ";;\n" +
		"'') exec cat " + abs("nvidia-smi-mig.txt") + ";;\n" +
		"-q) echo 'CUDA Version : 12.4';;\n" +
		"esac\n"
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/bin/nvidia-smi"), []byte(script), 0o755))

	inv := migInventory()
	err := Fill(inv, root)
	if err != nil {
		require.NotContains(t, err.Error(), "MIG UUIDs unknown")
		require.NotContains(t, err.Error(), "no UUID for MIG device")
	}
	require.Equal(t, []string{migA, migB, migC}, []string{inv.GPUs[1].MIG[0].UUID, inv.GPUs[1].MIG[1].UUID, inv.GPUs[1].MIG[2].UUID})

	// Without a table nothing is guessed and the error says which devices.
	script = "#!/bin/sh\n[ \"$1\" = -L ] && exec cat " + abs("nvidia-smi-L-mig.txt") + "\nexit 6\n"
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/bin/nvidia-smi"), []byte(script), 0o755))
	inv = migInventory()
	require.ErrorContains(t, Fill(inv, root), "MIG UUIDs unknown")
	require.Empty(t, inv.GPUs[1].MIG[0].UUID)
}

// FuzzParseMIG: whatever nvidia-smi prints, every MIG device returned has
// a MIG UUID taken from a -L line and a parent GPU UUID.
func FuzzParseMIG(f *testing.F) {
	f.Add("GPU 0: X (UUID: GPU-a)\n  MIG 1g.10gb Device  0: (UUID: MIG-b)\n", "| MIG devices: |\n|  0    1   0   0  | x |\n")
	f.Add("GPU 0: X (UUID: GPU-a)\n  MIG 1g.5gb Device 0: (UUID: MIG-GPU-a/7/0)\n", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, list, table string) {
		migs, _ := ParseMIG(list, table)
		for _, m := range migs {
			require.True(t, strings.HasPrefix(m.UUID, "MIG-"), m.UUID)
			require.Contains(t, list, m.UUID)
			require.True(t, strings.HasPrefix(strings.ToUpper(m.GPUUUID), "GPU-"), m.GPUUUID)
			require.GreaterOrEqual(t, m.GI, 0)
			require.GreaterOrEqual(t, m.CI, 0)
		}
	})
}
