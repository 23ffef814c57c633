package nvmlfacts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

const (
	uuidH100 = "GPU-a1b2c3d4-e5f6-7890-abcd-ef1234567890"
	uuidT4   = "GPU-11111111-2222-3333-4444-555555555555"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(b)
}

func TestParseSMI(t *testing.T) {
	q, caps := readTestdata(t, "nvidia-smi-q.txt"), readTestdata(t, "compute-cap.csv")
	f, err := ParseSMI(q, caps)
	require.NoError(t, err)
	require.Equal(t, Facts{CUDAVersion: "12.4", GPUs: map[string]GPUFacts{
		uuidH100: {Brand: "nvidia", Arch: "9.0", MemoryMiB: 81559},
		uuidT4:   {Brand: "tesla", Arch: "7.5", MemoryMiB: 15360},
	}}, f)

	// FB memory of the GPU only: not BAR1's Total, not a MIG device's, not an N/A.
	f, err = ParseSMI("CUDA Version : 12.4\nGPU 00000000:01:00.0\n    GPU UUID : GPU-x\n    MIG Devices\n        MIG Device\n"+
		"            FB Memory Usage\n                Total : 9984 MiB\n    BAR1 Memory Usage\n        Total : 256 MiB\n"+
		"GPU 00000000:02:00.0\n    GPU UUID : GPU-y\n    FB Memory Usage\n        Total : N/A\n", "")
	require.NoError(t, err)
	require.Equal(t, Facts{CUDAVersion: "12.4", GPUs: map[string]GPUFacts{"GPU-x": {}, "GPU-y": {}}}, f)

	// Old driver: no compute_cap field; N/A CUDA version.
	f, err = ParseSMI("CUDA Version : N/A\nGPU 00000000:01:00.0\n    Product Brand : Quadro RTX\n    GPU UUID : GPU-x\n", "")
	require.NoError(t, err)
	require.Equal(t, Facts{GPUs: map[string]GPUFacts{"GPU-x": {Brand: "quadrortx"}}}, f)

	// Junk compute_cap values are ignored.
	f, err = ParseSMI("CUDA Version : 12.8\n", "GPU-x, [N/A]\nnonsense\n")
	require.NoError(t, err)
	require.Equal(t, Facts{CUDAVersion: "12.8", GPUs: map[string]GPUFacts{}}, f)

	_, err = ParseSMI("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", "")
	require.ErrorContains(t, err, "no CUDA Version and no GPU section")
}

func TestNormalizeBrand(t *testing.T) {
	for in, want := range map[string]string{
		"Tesla": "tesla", "GeForce RTX": "geforcertx", "NVIDIA": "nvidia", "Quadro RTX": "quadrortx",
		"NVIDIA Virtual Compute Server": "nvidiavcs", "NVIDIA Virtual Applications": "nvidiavapps",
		"NVIDIA Virtual PC": "nvidiavpc", "NVIDIA RTX Virtual Workstation": "nvidiavws", "TITAN RTX": "titanrtx",
		"Unknown": "", "N/A": "", "": "",
	} {
		require.Equal(t, want, NormalizeBrand(in), in)
	}
}

func TestApply(t *testing.T) {
	inv := &inventory.Inventory{GPUs: []inventory.GPU{
		{Index: 0, UUID: "GPU-A1B2C3D4-E5F6-7890-ABCD-EF1234567890"},
		{Index: 1, UUID: uuidT4},
		{Index: 2, UUID: "GPU-gone"},
	}}
	err := Apply(inv, Facts{CUDAVersion: "12.4", GPUs: map[string]GPUFacts{
		uuidH100: {Brand: "nvidia", Arch: "9.0"}, uuidT4: {Brand: "tesla"},
	}})
	require.ErrorContains(t, err, "GPU 2 (GPU-gone)")
	require.Equal(t, "12.4", inv.CUDAVersion)
	require.Equal(t, "nvidia", inv.GPUs[0].Brand)
	require.Equal(t, "9.0", inv.GPUs[0].Arch)
	require.Equal(t, "tesla", inv.GPUs[1].Brand)
	require.Empty(t, inv.GPUs[1].Arch)
	require.Empty(t, inv.GPUs[2].Brand)

	// Nothing learned: nothing changed, no complaint about GPUs.
	inv2 := &inventory.Inventory{CUDAVersion: "12.0", GPUs: []inventory.GPU{{UUID: "GPU-x", Brand: "tesla"}}}
	require.NoError(t, Apply(inv2, Facts{}))
	require.Equal(t, "12.0", inv2.CUDAVersion)
	require.Equal(t, "tesla", inv2.GPUs[0].Brand)
}

func TestCUDAVersion(t *testing.T) {
	require.Equal(t, "12.4", cudaVersion(12040))
	require.Equal(t, "12.10", cudaVersion(12100))
	require.Equal(t, "11.8", cudaVersion(11080))
}

func TestFillNoDriver(t *testing.T) {
	inv := &inventory.Inventory{GPUs: []inventory.GPU{{UUID: uuidT4}}}
	err := Fill(inv, t.TempDir())
	require.Error(t, err)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Empty(t, inv.CUDAVersion)
}

func FuzzParseSMI(f *testing.F) {
	f.Add("CUDA Version : 12.4\nGPU 0000:01:00.0\n    GPU UUID : GPU-x\n    Product Brand : Tesla\n", "GPU-x, 9.0\n")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, q, caps string) {
		fa, err := ParseSMI(q, caps)
		if err != nil {
			return
		}
		if fa.CUDAVersion != "" {
			require.True(t, validVersion(fa.CUDAVersion))
		}
		for _, g := range fa.GPUs {
			if g.Arch != "" {
				require.True(t, validArch(g.Arch))
			}
		}
	})
}
