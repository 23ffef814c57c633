//go:build e2e

package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/realdriver"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

const debsDriver550 = "driver-550.163.01"

// nvidiaLibs and nvidiaBins are NVIDIA's own lists of the driver's libraries
// and binaries by capability: libnvidia-container, src/nvc_info.c
// (github.com/NVIDIA/libnvidia-container, commit 00b4b47e2a3e:
// utility_libs, compute_libs, video_libs, graphics_libs plus
// graphics_libs_glvnd, utility_bins, compute_bins), by library base name.
// NVIDIA's CDI generator (nvidia-container-toolkit) starts from the same
// lists. Display and compat32 have no library list there: display adds the
// X.Org modules, compat32 the 32-bit copies (none in these packages).
var (
	nvidiaLibs = map[inventory.Capability][]string{
		inventory.Utility: {"libnvidia-ml", "libnvidia-cfg", "libnvidia-nscq"},
		inventory.Compute: {"libcuda", "libcudadebugger", "libnvidia-opencl", "libnvidia-gpucomp", "libnvidia-ptxjitcompiler",
			"libnvidia-fatbinaryloader", "libnvidia-allocator", "libnvidia-compiler", "libnvidia-pkcs11",
			"libnvidia-pkcs11-openssl3", "libnvidia-nvvm", "libnvidia-tileiras"},
		inventory.Video: {"libvdpau_nvidia", "libnvidia-encode", "libnvidia-opticalflow", "libnvcuvid"},
		inventory.Graphics: {"libnvidia-eglcore", "libnvidia-glcore", "libnvidia-tls", "libnvidia-glsi", "libnvidia-fbc",
			"libnvidia-ifr", "libnvidia-rtcore", "libnvoptix",
			"libGLX_nvidia", "libEGL_nvidia", "libGLESv2_nvidia", "libGLESv1_CM_nvidia", "libnvidia-glvkspirv", "libnvidia-cbl"},
	}
	nvidiaBins = map[inventory.Capability][]string{
		inventory.Utility: {"nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nv-fabricmanager"},
		inventory.Compute: {"nvidia-cuda-mps-control", "nvidia-cuda-mps-server"},
	}
)

// shipped returns the base names of the versioned libraries (lib*.so.<version>)
// and the executables the extracted packages hold, and every file by name.
func shipped(t *testing.T, pkg realdriver.Package) (libs, bins map[string]bool, files map[string]string) {
	t.Helper()
	libs, bins, files = map[string]bool{}, map[string]bool{}, map[string]string{}
	root := filepath.Join(pkg.Dir, "root")
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		name := d.Name()
		files[name] = p
		if base, ok := strings.CutSuffix(name, ".so."+pkg.Version); ok {
			libs[base] = true
		}
		if st, err := d.Info(); err == nil && st.Mode().Perm()&0o111 != 0 && !strings.Contains(name, ".so") {
			bins[name] = true
		}
		return nil
	}))
	return libs, bins, files
}

// realHost builds a simulated host (4 GPUs, real device nodes, driver
// version pkg.Version in /proc) whose driver root holds NVIDIA's real
// userland pkg in layout.
func realHost(t *testing.T, pkg realdriver.Package, layout, cuda string) (*simhost.Host, *realdriver.Installed) {
	t.Helper()
	h, err := simhost.Build(simhost.Options{Dir: t.TempDir(), GPUs: 4, DriverVersion: pkg.Version, CUDAVersion: cuda,
		Layout: layout, RealNodes: true})
	require.NoError(t, err)
	require.NoError(t, realdriver.RemoveSimulated(h))
	in, err := realdriver.Install(pkg, h.Config.DriverRoot, layout)
	require.NoError(t, err)
	return h, in
}

func realConfig(h *simhost.Host) *config.Config {
	cfg := config.Default()
	cfg.Host = h.Config
	return cfg
}

func discover(t *testing.T, h *simhost.Host) *inventory.Inventory {
	t.Helper()
	cfg := realConfig(h)
	opts, err := hostsrc.InventoryOptions(cfg, hostsrc.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	inv, err := inventory.Discover(h.Config, opts...)
	require.NoError(t, err)
	return inv
}

func baseNames(files []inventory.File) []string {
	var out []string
	for _, f := range files {
		name := filepath.Base(f.Path)
		if i := strings.Index(name, ".so"); i > 0 {
			name = name[:i]
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func expected(list []string, have map[string]bool, except ...string) []string {
	var out []string
	for _, n := range list {
		if have[n] && !slices.Contains(except, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// TestRealDriverRoot reads NVIDIA's real driver userland (Debian's
// 535.261.03 and 550.163.01 packages) laid out as Debian installs it and as
// NVIDIA's .run installer does, beside the simulated /dev and /proc.
func TestRealDriverRoot(t *testing.T) {
	harness.RequireRoot(t)
	for _, tc := range []struct{ dir, cuda string }{{debsDriver535, "12.2"}, {debsDriver550, "12.4"}} {
		pkg, err := realdriver.Open(nvidiaDebs(t, tc.dir))
		require.NoError(t, err)
		libs, bins, files := shipped(t, pkg)
		for _, layout := range simhost.Layouts() {
			t.Run(pkg.Version+"/"+layout, func(t *testing.T) {
				h, in := realHost(t, pkg, layout, tc.cuda)
				if layout == simhost.LayoutDebian {
					// The links update-alternatives makes, read from the
					// package's postinst (a few of them, end to end).
					alts := map[string]string{}
					for _, a := range in.Alternatives {
						alts[a.Link] = a.Source
					}
					for link, src := range map[string]string{
						"/usr/lib/x86_64-linux-gnu/libcuda.so.1":               "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1",
						"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1":          "/usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-ml.so.1",
						"/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.1": "/usr/lib/x86_64-linux-gnu/nvidia/current/libvdpau_nvidia.so.1",
						"/usr/bin/nvidia-smi":                                  "/usr/lib/nvidia/current/nvidia-smi",
						"/usr/lib/nvidia/nvidia":                               "/usr/lib/nvidia/current",
					} {
						require.Equal(t, src, alts[link], link)
						alt, err := os.Readlink(filepath.Join(h.Config.DriverRoot, link))
						require.NoError(t, err)
						require.True(t, strings.HasPrefix(alt, "/etc/alternatives/nvidia"), alt)
						got, err := os.Readlink(filepath.Join(h.Config.DriverRoot, alt))
						require.NoError(t, err)
						require.Equal(t, src, got)
					}
					// Kernel-module slaves have no source without the module package.
					require.NotContains(t, alts, "/etc/nvidia/nvidia-modprobe.conf")
				}
				inv := discover(t, h)
				require.Equal(t, pkg.Version, inv.DriverVersion)
				require.Len(t, inv.GPUs, 4)

				// Each capability gets NVIDIA's list, as far as the
				// packages ship it. On Debian, libnvidia-cfg.so.1's
				// alternative is /usr/lib/x86_64-linux-gnu/nvidia/ (for
				// X.Org), off the loader's path, so neither ld.so.cache
				// nor NVIDIA's ldcache lookup finds it.
				for c, list := range nvidiaLibs {
					var except []string
					if layout == simhost.LayoutDebian && c == inventory.Utility {
						except = []string{"libnvidia-cfg"}
					}
					require.Equal(t, expected(list, libs, except...), baseNames(inv.Libraries[c]), "%s libraries", c)
				}
				for c, list := range nvidiaBins {
					require.Equal(t, expected(list, bins), baseNames(inv.Binaries[c]), "%s binaries", c)
				}
				require.Empty(t, inv.Libraries[inventory.Compat32], "no 32-bit libraries in these packages")
				for _, f := range inv.Firmware {
					require.True(t, strings.HasPrefix(f.Path, "/lib/firmware/nvidia/"+pkg.Version+"/gsp_"), f.Path)
				}
				require.NotEmpty(t, inv.Firmware, "GSP firmware")
				// Every file is the package's own (the same inode: Install
				// hard-links), never a leftover of the simulation.
				for _, group := range inv.Libraries {
					for _, f := range group {
						orig, ok := files[filepath.Base(f.HostPath)]
						require.True(t, ok, "%s is not from the packages", f.HostPath)
						a, err := os.Stat(f.HostPath)
						require.NoError(t, err)
						b, err := os.Stat(orig)
						require.NoError(t, err)
						require.True(t, os.SameFile(a, b), "%s is not %s", f.HostPath, orig)
					}
				}
				// Display: the X.Org modules, where the .run installer puts
				// them; Debian reaches them through glx-alternative-nvidia
				// (not among these packages), so none there.
				disp := baseNames(inv.ConfigFiles[inventory.Display])
				if layout == simhost.LayoutNVIDIA {
					require.Subset(t, disp, []string{"nvidia_drv", "libglxserver_nvidia"})
				} else {
					require.Empty(t, disp)
				}

				// No kernel module: NVML cannot initialize, the driver's
				// facts (CUDA version, brand, compute capability) are
				// unknown and said so, never invented.
				require.Empty(t, inv.CUDAVersion)
				require.NotEmpty(t, inv.Warnings)
				require.Contains(t, strings.Join(inv.Warnings, "\n"), "gpu facts")
			})
		}
	}
}

// TestRealDriverCLI runs the static gpu-nri (facts from nvidia-smi, which
// exits 9 here) on the real 535 root: explain and cdi generate succeed,
// mount NVIDIA's files and report the facts as unavailable.
func TestRealDriverCLI(t *testing.T) {
	e := env(t)
	pkg, err := realdriver.Open(nvidiaDebs(t, debsDriver535))
	require.NoError(t, err)
	for _, layout := range simhost.Layouts() {
		t.Run(layout, func(t *testing.T) {
			h, _ := realHost(t, pkg, layout, "12.2")
			flags := []string{"--driver-root", h.Config.DriverRoot, "--dev-root", h.Config.DevRoot, "--proc-root", h.Config.ProcRoot}

			// NVIDIA's nvidia-smi, with its libnvidia-ml on the loader's path.
			smi := exec.Command(filepath.Join(h.Config.DriverRoot, "usr/bin/nvidia-smi"), "-L")
			smi.Env = []string{"LD_LIBRARY_PATH=" + filepath.Join(h.Config.DriverRoot, "usr/lib/x86_64-linux-gnu")}
			if layout == simhost.LayoutDebian {
				smi = exec.Command(filepath.Join(h.Config.DriverRoot, "usr/lib/nvidia/current/nvidia-smi"), "-L")
				smi.Env = []string{"LD_LIBRARY_PATH=" + filepath.Join(h.Config.DriverRoot, "usr/lib/x86_64-linux-gnu/nvidia/current")}
			}
			out, err := smi.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
			require.Equal(t, 9, ee.ExitCode(), "NVIDIA's nvidia-smi without a kernel module: %s", out)
			require.Contains(t, string(out), "couldn't communicate with the NVIDIA driver")

			cmd := exec.Command(e.Bins.GPUNRI, append([]string{"explain", "-o", "json", "--env", "NVIDIA_VISIBLE_DEVICES=0,2",
				"--env", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"}, flags...)...)
			out, err = cmd.Output()
			require.NoError(t, err, "explain: %s", out)
			// gpu-nri reports the failed nvidia-smi (exit 9) as facts
			// unavailable, and a CUDA requirement it cannot check refuses
			// the container (requirements.unverifiable: refuse, the default).
			dout, derr := exec.Command(e.Bins.GPUNRI, append([]string{"doctor"}, flags...)...).CombinedOutput()
			require.Error(t, derr, "doctor: %s", dout)
			require.Equal(t, 1, strings.Count(string(dout), "the driver's facts (CUDA version, brands, compute capabilities) are unavailable"),
				"doctor says it once: %s", dout)
			require.Contains(t, string(dout), "nvidia-smi -q: exit status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")
			rout, rerr := exec.Command(e.Bins.GPUNRI, append([]string{"explain", "--env", "NVIDIA_VISIBLE_DEVICES=0",
				"--env", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"}, flags...)...).CombinedOutput()
			require.Error(t, rerr, "explain: %s", rout)
			require.Contains(t, string(rout), "cannot be checked: the host's CUDA driver API version is unknown")
			var rep map[string]any
			require.NoError(t, json.Unmarshal(out, &rep), "%s", out)
			text := string(out)
			for _, want := range []string{"libcuda.so." + pkg.Version, "libnvidia-ml.so." + pkg.Version, "nvidia-smi", "/dev/nvidia0", "/dev/nvidia2"} {
				require.Contains(t, text, want)
			}
			require.NotContains(t, text, "/dev/nvidia1\"")

			cmd = exec.Command(e.Bins.GPUNRI, append([]string{"cdi", "generate", "-o", "-", "--format", "json"}, flags...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err = cmd.Output()
			require.NoError(t, err, "cdi generate: %s", stderr.String())
			var spec struct {
				Kind    string `json:"kind"`
				Devices []struct {
					Name string `json:"name"`
				} `json:"devices"`
			}
			require.NoError(t, json.Unmarshal(out, &spec))
			require.Equal(t, "nvidia.com/gpu", spec.Kind)
			var names []string
			for _, d := range spec.Devices {
				names = append(names, d.Name)
			}
			require.Subset(t, names, []string{"0", "1", "2", "3", "all"})
			require.Contains(t, string(out), "libcuda.so."+pkg.Version)
		})
	}
}

// TestRealDriverUpgrade upgrades the real root from 535.261.03 to
// 550.163.01 (package by package: remove what 535 installed, install 550,
// /proc's version follows) under a running inventory watcher: the next
// inventory has only 550's files, none of 535's.
func TestRealDriverUpgrade(t *testing.T) {
	harness.RequireRoot(t)
	old, err := realdriver.Open(nvidiaDebs(t, debsDriver535))
	require.NoError(t, err)
	next, err := realdriver.Open(nvidiaDebs(t, debsDriver550))
	require.NoError(t, err)
	for _, layout := range simhost.Layouts() {
		t.Run(layout, func(t *testing.T) {
			h, in := realHost(t, old, layout, "12.2")
			cfg := realConfig(h)
			opts, err := hostsrc.InventoryOptions(cfg, hostsrc.WithNodeStater(h.Stater()))
			require.NoError(t, err)
			w, err := inventory.NewWatcher(h.Config, opts...)
			require.NoError(t, err)
			require.NotNil(t, w.Current(), "%v", w.Err())
			require.Equal(t, old.Version, w.Current().DriverVersion)

			require.NoError(t, realdriver.Uninstall(in, h.Config.DriverRoot))
			_, err = realdriver.Install(next, h.Config.DriverRoot, layout)
			require.NoError(t, err)
			version := filepath.Join(h.Config.ProcRoot, "driver/nvidia/version")
			b, err := os.ReadFile(version)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(version, []byte(strings.ReplaceAll(string(b), old.Version, next.Version)), 0o644))

			changed, err := w.Refresh()
			require.NoError(t, err)
			require.True(t, changed)
			inv := w.Current()
			require.Equal(t, next.Version, inv.DriverVersion)
			var paths []string
			for _, group := range inv.Libraries {
				for _, f := range group {
					paths = append(paths, f.Path)
					require.NotContains(t, f.HostPath, old.Version)
				}
			}
			require.Contains(t, strings.Join(paths, "\n"), "libcuda.so."+next.Version)
			// 550 adds NVIDIA's shared compiler (compute).
			require.Contains(t, baseNames(inv.Libraries[inventory.Compute]), "libnvidia-gpucomp")
		})
	}
}
