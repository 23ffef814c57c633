package inventory_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// The GDS files and the MPS pipe directory live on the host root (here the
// plugin sees the host at h.Root, as in the DaemonSet).
func TestDiscoverGDSFilesAndMPSDir(t *testing.T) {
	dir := t.TempDir()
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(dir, "host"), GPUs: 1})
	require.NoError(t, err)
	hostRoot := filepath.Join(dir, "root")
	for _, d := range []string{"run/udev/data", "tmp/nvidia-mps", "etc"} {
		require.NoError(t, os.MkdirAll(filepath.Join(hostRoot, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(hostRoot, "etc/cufile.json"), []byte("{}"), 0o644))

	// View the simulated host through a Root prefix: every emitted path must
	// be a host path, without the prefix.
	require.NoError(t, os.Symlink(filepath.Join(dir, "host"), filepath.Join(hostRoot, "sim")))
	hc := config.Host{Root: hostRoot, DriverRoot: "/sim/driver", DevRoot: "/sim/dev", ProcRoot: "/sim/proc"}

	inv, err := inventory.Discover(hc, inventory.WithNodeStater(h.Stater()), inventory.WithMPSPipeDirectory("/tmp/nvidia-mps"))
	require.NoError(t, err)
	require.Equal(t, []inventory.File{{HostPath: "/run/udev", Path: "/run/udev"}, {HostPath: "/etc/cufile.json", Path: "/etc/cufile.json"}}, inv.ExtraFiles["gds"])
	require.NotNil(t, inv.MPSPipeDir)
	require.Equal(t, "/tmp/nvidia-mps", inv.MPSPipeDir.HostPath)

	inv, err = inventory.Discover(hc, inventory.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	require.Nil(t, inv.MPSPipeDir, "no MPS directory configured")
	_, err = inventory.Discover(hc, inventory.WithMPSPipeDirectory("relative"))
	require.ErrorContains(t, err, "relative")
}
