//go:build !cgo

package nvmlfacts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
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
