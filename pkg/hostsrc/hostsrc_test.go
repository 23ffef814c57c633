package hostsrc_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

func TestOpen(t *testing.T) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 2})
	require.NoError(t, err)
	specDir := t.TempDir()
	n, ok := h.Node("nvidia0")
	require.True(t, ok)
	spec := "cdiVersion: 0.6.0\nkind: example.com/fpga\ndevices:\n- name: f0\n  containerEdits:\n    deviceNodes:\n    - {path: /dev/fpga0, hostPath: " + n.Path + "}\n"
	require.NoError(t, os.WriteFile(filepath.Join(specDir, "fpga.yaml"), []byte(spec), 0o644))
	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Injection.CDISpecDirs = []string{specDir}

	facts := 0
	src, err := hostsrc.Open(cfg, hostsrc.WithNodeStater(h.Stater()), hostsrc.WithGPUFacts(func(inv *inventory.Inventory) error {
		facts++
		inv.CUDAVersion = "12.4"
		return nil
	}))
	require.NoError(t, err)
	require.NoError(t, src.CDIErr())
	inv := src.Inventory()
	require.NotNil(t, inv)
	require.Len(t, inv.GPUs, 2)
	require.Equal(t, "12.4", inv.CUDAVersion, "WithGPUFacts replaces NVML")
	require.Equal(t, 1, facts)

	// Rediscovery right after a discovery is refused (rate limit).
	changed, err := src.RefreshIfStale()
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, 1, facts)

	// Third-party CDI devices and their nodes.
	require.NotNil(t, src.CDIDevice("example.com/fpga=f0"))
	require.Nil(t, src.CDIDevice("example.com/fpga=f9"))
	info, err := src.StatNode(n.Path)
	require.NoError(t, err)
	require.Equal(t, n.Major, info.Major)
	require.Equal(t, n.Minor, info.Minor)
	_, err = src.StatNode("/dev/nothing")
	require.True(t, errors.Is(err, os.ErrNotExist), "%v", err)

	_, err = hostsrc.Open(cfg, hostsrc.WithNodeStater(nil))
	require.ErrorContains(t, err, "nil stater")
}

func TestOpenWithoutDriver(t *testing.T) {
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Host.DriverRoot, cfg.Host.DevRoot, cfg.Host.ProcRoot = filepath.Join(dir, "driver"), filepath.Join(dir, "dev"), filepath.Join(dir, "proc")
	cfg.Injection.CDISpecDirs = nil
	src, err := hostsrc.Open(cfg, hostsrc.WithoutFacts())
	require.NoError(t, err, "a host without a driver is not an error")
	require.Nil(t, src.Inventory())
	require.ErrorIs(t, src.Err(), inventory.ErrNoDriver)
	require.Nil(t, src.CDIDevice("example.com/fpga=f0"))
}
