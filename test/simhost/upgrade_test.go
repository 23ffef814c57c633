package simhost

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

func TestUpgrade(t *testing.T) {
	for _, layout := range Layouts() {
		t.Run(layout, func(t *testing.T) {
			h := build(t, Options{GPUs: 2, MIG: map[int]int{1: 1}, Layout: layout})
			extra := filepath.Join(h.Config.DriverRoot, "added-by-a-test")
			require.NoError(t, os.Symlink(h.Config.DevRoot, extra))

			nh, err := h.Upgrade("550.90.07", "12.5")
			require.NoError(t, err)
			require.Equal(t, h.Config, nh.Config)
			require.Equal(t, "550.90.07", nh.DriverVersion)
			require.Equal(t, 12050, nh.CUDAAPIVersion)
			target, err := os.Readlink(extra)
			require.NoError(t, err, "a link the test added stays")
			require.Equal(t, h.Config.DevRoot, target)
			for _, d := range []string{".upgrade", ".old"} {
				require.NoDirExists(t, h.Config.DriverRoot+d)
			}
			for _, f := range append(append([]File{}, h.Libraries...), h.Firmware...) {
				if strings.Contains(f.Path, "550.54.14") {
					require.NoFileExists(t, f.HostPath, "the old version's file is gone")
				}
			}
			require.NotEmpty(t, nh.Libraries)
			for _, f := range append(append(append([]File{}, nh.Libraries...), nh.Binaries...), nh.Firmware...) {
				require.FileExists(t, f.HostPath)
				require.NotContains(t, f.Path, "550.54.14")
			}

			inv, err := inventory.Discover(nh.Config, inventory.WithNodeStater(nh.Stater()))
			require.NoError(t, err)
			require.Equal(t, "550.90.07", inv.DriverVersion)
			require.Empty(t, inv.Warnings)
			require.Len(t, inv.GPUs, 2)
			var found []inventory.File
			for _, fs := range inv.Libraries {
				found = append(found, fs...)
			}
			for _, fs := range inv.Binaries {
				found = append(found, fs...)
			}
			require.NotEmpty(t, found)
			for _, f := range append(found, inv.Firmware...) {
				require.NotContains(t, f.HostPath, "550.54.14", "discovery finds only the new version's files")
			}

			smi := ""
			for _, b := range nh.Binaries {
				if filepath.Base(b.Path) == "nvidia-smi" {
					smi = b.HostPath
				}
			}
			require.NotEmpty(t, smi)
			cmd := exec.Command(smi)
			cmd.Env = []string{"SIMGPU_DEV_ROOT=" + nh.Config.DevRoot}
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), "Driver Version: 550.90.07  CUDA Version: 12.5")
		})
	}
}
