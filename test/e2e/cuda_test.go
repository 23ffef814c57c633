//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/realdriver"
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

// ---------------------------------------------------------------- in containers

// cudaImages builds and imports the CUDA runtime images (harness.CUDAImages:
// NVIDIA's libcudart 12.4 in a Debian-layout and a RHEL-layout glibc image)
// once per suite run, and loads them into each CRI runtime the first time a
// scenario runs on it (the suite runs one runtime at a time).
var cudaImages struct {
	once    sync.Once
	err     error
	archive string
	mu      sync.Mutex
	loaded  map[string]error
}

func requireCUDAImages(t *testing.T, e *harness.Env) {
	t.Helper()
	cudaImages.once.Do(func() {
		build := filepath.Join(e.Dir, "build", "cuda")
		if cudaImages.err = os.MkdirAll(build, 0o755); cudaImages.err != nil {
			return
		}
		test := filepath.Join(build, "cudarttest")
		out, err := exec.Command("gcc", "-Wall", "-O1", "-o", test, filepath.Join(e.Repo, "test/csrc/cudarttest.c"), "-ldl").CombinedOutput()
		if err != nil {
			cudaImages.err = fmt.Errorf("gcc cudarttest.c: %w: %s", err, out)
			return
		}
		images, err := harness.CUDAImages(harness.CUDAImageInputs{Arch: e.Arch, BuildDir: filepath.Join(build, "rootfs"),
			CUDART: filepath.Join(nvidiaDebs(t, debsCUDART), debsLibDir), CUDARTVersion: "12.4.127",
			CUDARTTest: test, CUDATest: e.Host.CUDATest})
		if err != nil {
			cudaImages.err = err
			return
		}
		archive := filepath.Join(build, "images.tar")
		if cudaImages.err = harness.WriteOCIArchive(archive, e.Arch, images...); cudaImages.err != nil {
			return
		}
		cudaImages.archive = archive
		_ = os.RemoveAll(filepath.Join(build, "rootfs"))
	})
	require.NoError(t, cudaImages.err, "CUDA images")
	cudaImages.mu.Lock()
	defer cudaImages.mu.Unlock()
	name := e.Runtime.Name()
	err, done := cudaImages.loaded[name]
	if !done {
		err = e.Runtime.LoadImages(cudaImages.archive)
		if cudaImages.loaded == nil {
			cudaImages.loaded = map[string]error{}
		}
		cudaImages.loaded[name] = err
	}
	require.NoError(t, err, "CUDA images into %s", name)
}

// cudaImageNames are the CUDA images: glibc laid out like Debian and like RHEL.
var cudaImageNames = []string{"cuda-glibc", "cuda-rhel"}

// cudartScript runs NVIDIA's CUDA runtime (cudarttest) and cudatest.
const cudartScript = "cudarttest\ncudatest libcuda.so.1\n"

// smiScript runs the injected nvidia-smi and prints its exit status and
// first line.
const smiScript = "nvidia-smi -L >/tmp/smi.out 2>&1; echo smi-rc=$?; sed 's/^/smi: /' /tmp/smi.out | head -1\n"

// startRealPlugin stops the suite's gpu-nri and runs one on h with loader
// (stopped with the test; the next scenario's usePlugin restores the suite's).
func startRealPlugin(t *testing.T, e *harness.Env, h *simhost.Host, name, loader string) {
	t.Helper()
	usePlugin(t, "")
	cfg := e.PluginConfig(loader)
	cfg.Host = h.Config
	cfg.Host.Watch = config.Default().Host.Watch // gpu-nri's default (simhost's config has it off)
	logPath := filepath.Join(e.Dir, "logs", "gpu-nri-"+name+".log")
	require.NoError(t, os.WriteFile(logPath, nil, 0o644))
	p, err := harness.StartPlugin(context.Background(), e.Bins.GPUNRI, filepath.Join(e.Dir, "etc", "gpu-nri-"+name+".yaml"), logPath, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop()) })
}

// s12CUDARuntime: "an unmodified CUDA image works" with NVIDIA's own CUDA
// runtime in the image. With NVIDIA's real 535 userland (Debian's packages,
// in Debian's and in the .run installer's layout) injected, libcudart reports the driver's CUDA version
// (12020) and "no CUDA-capable device" (100: no kernel module here), and
// NVIDIA's nvidia-smi runs and exits 9; without the injection libcudart gets
// 35 (no libcuda). With the simulated driver, libcudart reports the
// simulated CUDA version (its device count stops at NVIDIA's driver validity
// check, see test/csrc/libcuda.c; cudatest counts GPUs 0 and 2), and with
// NVIDIA_DRIVER_CAPABILITIES=utility it gets 35. Hook and hookless, on the
// Debian-layout and the RHEL-layout image.
func s12CUDARuntime(t *testing.T, rt runtimeCase) {
	e := env(t)
	requireCUDAImages(t, e)
	pkg, err := realdriver.Open(nvidiaDebs(t, debsDriver535))
	require.NoError(t, err)
	compute := map[string]string{"NVIDIA_VISIBLE_DEVICES": "0", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
	for _, tc := range []struct{ loader, layout string }{
		{"hook", simhost.LayoutDebian}, {"hookless", simhost.LayoutDebian}, {"hook", simhost.LayoutNVIDIA}, {"hookless", simhost.LayoutNVIDIA},
	} {
		loader := tc.loader
		name := "real-535-" + tc.layout + "-" + loader
		t.Run(name, func(t *testing.T) {
			h, _ := realHost(t, pkg, tc.layout, "12.2")
			startRealPlugin(t, e, h, "s12-"+name, loader)
			for _, img := range cudaImageNames {
				t.Run(img, func(t *testing.T) {
					res := runOne(t, rt, "s12-"+name+"-"+img, nil, container("cuda", img, cudartScript+smiScript, compute))
					r := parseCUDART(t, res.Output)
					require.Equal(t, 12040, r.runtime, "%s", res.Output)
					require.Equal(t, 12020, r.driver, "the real 535 libcuda reached libcudart\n%s", res.Output)
					require.Equal(t, 100, r.countRC, "%s", res.Output)
					require.Equal(t, "cudaErrorNoDevice", r.countErr)
					require.Contains(t, res.Output, "smi-rc=9\n", "NVIDIA's nvidia-smi without a kernel module")
					require.Contains(t, res.Output, "smi: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")

					res = runOne(t, rt, "s12-none-"+name+"-"+img, nil, container("plain", img, cudartScript, nil))
					r = parseCUDART(t, res.Output)
					require.Equal(t, 0, r.driver, "%s", res.Output)
					require.Equal(t, 35, r.countRC, "no injection: no libcuda\n%s", res.Output)
				})
			}
		})
	}
	// The driver upgrade with real file sets, while gpu-nri runs: 550's
	// packages unpacked over 535's the way dpkg does (and /proc's version
	// with them, as after the reboot); gpu-nri's watch picks it up and the next container
	// gets 550's libcuda (CUDA 12.4).
	t.Run("upgrade-535-550", func(t *testing.T) {
		next, err := realdriver.Open(nvidiaDebs(t, debsDriver550))
		require.NoError(t, err)
		h, in := realHost(t, pkg, simhost.LayoutDebian, "12.2")
		startRealPlugin(t, e, h, "s12-upgrade", "hook")
		res := runOne(t, rt, "s12-upgrade-before", nil, container("cuda", "cuda-glibc", cudartScript, compute))
		require.Equal(t, 12020, parseCUDART(t, res.Output).driver, "%s", res.Output)

		_, err = realdriver.Upgrade(in, next, h.Config.DriverRoot)
		require.NoError(t, err)
		version := filepath.Join(h.Config.ProcRoot, "driver/nvidia/version")
		b, err := os.ReadFile(version)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(version, []byte(strings.ReplaceAll(string(b), pkg.Version, next.Version)), 0o644))

		// Until the watch has seen the change (about a second), gpu-nri
		// still answers with 535's files and the runtime fails the mount
		// of a file that is gone; the loop waits that window out.
		var last harness.Result
		swapped := time.Now()
		for i := 0; ; i++ {
			res, err := e.Pod(t, fmt.Sprintf("s12-upgrade-after-%d", i), rt.name, nil).Run(context.Background(),
				container("cuda", "cuda-glibc", cudartScript, compute), time.Minute)
			if err == nil && parseCUDART(t, res.Output).driver == 12040 {
				last = res
				t.Logf("upgrade followed after %d refused or stale containers, %v after the swap", i, time.Since(swapped).Round(time.Millisecond))
				break
			}
			require.Less(t, i, 20, "gpu-nri did not follow the upgrade: %v %s", err, res.Output)
			time.Sleep(250 * time.Millisecond)
		}
		r := parseCUDART(t, last.Output)
		require.Equal(t, 12040, r.driver, "550's libcuda after the upgrade\n%s", last.Output)
		require.Equal(t, 100, r.countRC, "%s", last.Output)
		require.NotContains(t, string(mustJSON(t, last.Spec)), pkg.Version, "no file of 535 in the spec")
		require.Contains(t, string(mustJSON(t, last.Spec)), "libcuda.so."+next.Version)
	})
	for _, loader := range []string{"hook", "hookless"} {
		t.Run("simulated-"+loader, func(t *testing.T) {
			usePlugin(t, loader)
			for _, img := range cudaImageNames {
				t.Run(img, func(t *testing.T) {
					res := runOne(t, rt, "s12-sim-"+loader+"-"+img, nil, container("cuda", img, cudartScript,
						map[string]string{"NVIDIA_VISIBLE_DEVICES": "0,2", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}))
					r := parseCUDART(t, res.Output)
					require.Equal(t, e.Host.CUDAAPIVersion, r.driver, "libcudart found the injected simulated libcuda\n%s", res.Output)
					require.Equal(t, "cudaErrorSoftwareValidityNotEstablished", r.countErr, "%s", res.Output)
					require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 2))

					res = runOne(t, rt, "s12-sim-utility-"+loader+"-"+img, nil, container("utility", img, cudartScript,
						map[string]string{"NVIDIA_VISIBLE_DEVICES": "0,2", "NVIDIA_DRIVER_CAPABILITIES": "utility"}))
					r = parseCUDART(t, res.Output)
					require.Equal(t, 0, r.driver, "%s", res.Output)
					require.Equal(t, 35, r.countRC, "utility only: no libcuda\n%s", res.Output)
				})
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
