//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// NVIDIA's own binaries, as test/nvidia-debs.sh extracts them from Debian's
// non-free archive (test/tools.sh runs it for the e2e suite).
const (
	debsCUDART    = "cudart-12.4.127" // libcudart12 12.4.127 and libcudart11.0 11.8.89
	debsDriver535 = "driver-535.261.03"
	debsLibDir    = "root/usr/lib/x86_64-linux-gnu"
)

// nvidiaDebs returns the extracted package tree name (a directory of
// .cache/tools/nvidia-debs), failing when test/nvidia-debs.sh has not made it.
func nvidiaDebs(t *testing.T, name string) string {
	t.Helper()
	repo, err := harness.RepoRoot()
	require.NoError(t, err)
	dir := filepath.Join(repo, ".cache/tools/nvidia-debs", name)
	_, err = os.Stat(filepath.Join(dir, ".done"))
	require.NoError(t, err, "NVIDIA's Debian packages are missing: run bash test/nvidia-debs.sh all (test/tools.sh does for TOOLS=e2e)")
	return dir
}

// cudartResult is what test/csrc/cudarttest.c prints.
type cudartResult struct {
	runtime, driver, driverRC, countRC, count int
	countErr                                  string
}

var cudartLine = regexp.MustCompile(`^cudart=ok runtime=(-?\d+) driver=(-?\d+) driver_rc=(-?\d+) count_rc=(-?\d+) count_err=(\S+) count=(-?\d+)$`)

func parseCUDART(t *testing.T, out string) cudartResult {
	t.Helper()
	var line string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "cudart=") {
			line = l
		}
	}
	m := cudartLine.FindStringSubmatch(line)
	require.NotNil(t, m, "cudarttest printed no result line:\n%s", out)
	n := func(i int) int {
		v, err := strconv.Atoi(m[i])
		require.NoError(t, err)
		return v
	}
	return cudartResult{runtime: n(1), driver: n(2), driverRC: n(3), countRC: n(4), countErr: m[5], count: n(6)}
}

// buildCUDARTTest compiles test/csrc/cudarttest.c for the host.
func buildCUDARTTest(t *testing.T) string {
	t.Helper()
	repo, err := harness.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "cudarttest")
	out, err := exec.Command("gcc", "-Wall", "-O1", "-o", bin, filepath.Join(repo, "test/csrc/cudarttest.c"), "-ldl").CombinedOutput()
	require.NoError(t, err, "gcc cudarttest.c: %s", out)
	return bin
}

// runCUDART runs cudarttest with libcudart (NVIDIA's, from libcudart12) and
// driverDir (a directory holding libcuda.so.1, or "" for none) on the
// loader path, the way a CUDA program finds both.
func runCUDART(t *testing.T, bin, runtimeLib, driverDir string, extraEnv ...string) cudartResult {
	t.Helper()
	path := filepath.Join(nvidiaDebs(t, debsCUDART), debsLibDir)
	if driverDir != "" {
		path += ":" + driverDir
	}
	cmd := exec.Command(bin, runtimeLib)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=" + path}, extraEnv...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "cudarttest: %s", out)
	return parseCUDART(t, string(out))
}

// libcudaDir makes a directory whose libcuda.so.1 links to lib.
func libcudaDir(t *testing.T, lib string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Symlink(lib, filepath.Join(dir, "libcuda.so.1")))
	return dir
}

// TestCUDARuntimeHost runs NVIDIA's CUDA runtime (libcudart.so.12 12.4.127
// and libcudart.so.11.0 11.8.89 from Debian) on this host, outside
// containers, against NVIDIA's real libcuda 535.261.03, against none and
// against the simulated libcuda (test/csrc/libcuda.c). NVIDIA's outcomes
// without a kernel module are the reference (measured by hand, see
// ../shared/reference/real-peers.md): the real driver reports its CUDA
// version (12020 for 535) and "no CUDA-capable device" (100); no driver
// gives version 0 and "driver version insufficient" (35).
func TestCUDARuntimeHost(t *testing.T) {
	bin := buildCUDARTTest(t)
	real535 := filepath.Join(nvidiaDebs(t, debsDriver535), debsLibDir, "nvidia/current/libcuda.so.535.261.03")
	_, err := os.Stat(real535)
	require.NoError(t, err)

	host, err := simhost.Build(simhost.Options{Dir: t.TempDir(), GPUs: 4})
	require.NoError(t, err)
	var simLib string
	for _, f := range host.Libraries {
		if f.SONAME == "libcuda.so.1" && !f.Lib32 {
			simLib = f.HostPath
		}
	}
	require.NotEmpty(t, simLib, "the simulated host has no libcuda")
	devRoot := filepath.Join(host.Options.Dir, "dev")

	// libcudart.so.11.0's cudaRuntimeGetVersion fails when called first
	// (it prints -1): only 12.4's is checked.
	for _, rt := range []struct{ lib string }{{"libcudart.so.12"}, {"libcudart.so.11.0"}} {
		t.Run(rt.lib, func(t *testing.T) {
			t.Run("real-535", func(t *testing.T) {
				r := runCUDART(t, bin, rt.lib, libcudaDir(t, real535))
				if rt.lib == "libcudart.so.12" {
					require.Equal(t, 12040, r.runtime, "libcudart12 is CUDA 12.4")
				}
				require.Equal(t, 0, r.driverRC)
				require.Equal(t, 12020, r.driver, "driver 535 is CUDA 12.2")
				require.Equal(t, 100, r.countRC, "no kernel module: cudaErrorNoDevice")
				require.Equal(t, "cudaErrorNoDevice", r.countErr)
			})
			t.Run("no-driver", func(t *testing.T) {
				r := runCUDART(t, bin, rt.lib, "")
				require.Equal(t, 0, r.driver)
				require.Equal(t, 35, r.countRC)
				require.Equal(t, "cudaErrorInsufficientDriver", r.countErr)
			})
			t.Run("simulated", func(t *testing.T) {
				r := runCUDART(t, bin, rt.lib, libcudaDir(t, simLib), "SIMGPU_DEV_ROOT="+devRoot)
				require.Equal(t, 0, r.driverRC)
				require.Equal(t, host.CUDAAPIVersion, r.driver, "libcudart reports the simulated driver's CUDA version")
				// Known limit of the simulation (test/csrc/libcuda.c):
				// libcudart resolves every entry point and export table
				// from it, then verifies the driver through a private
				// integrity check the simulation cannot answer. Pinned so
				// that a change (either way) is seen.
				require.Equal(t, 103, r.countRC)
				require.Equal(t, "cudaErrorSoftwareValidityNotEstablished", r.countErr)
			})
		})
	}
}
