package simhost

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/ldcache"
)

const ldconfig = "/sbin/ldconfig"

func build(t *testing.T, o Options) *Host {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("gcc is needed to build the simulated driver: %v", err)
	}
	o.Dir = t.TempDir()
	h, err := Build(o)
	require.NoError(t, err)
	return h
}

// keyValues reads a "Key: value" proc file.
func keyValues(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		require.True(t, ok, "line %q of %s", sc.Text(), path)
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return kv
}

func TestFacts(t *testing.T) {
	h := build(t, Options{GPUs: 3, MIG: map[int]int{2: 3}})
	require.Len(t, h.GPUs, 3)
	uuids := map[string]bool{}
	for i, g := range h.GPUs {
		require.Equal(t, i, g.Index)
		require.Equal(t, i, g.Minor)
		require.Regexp(t, `^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, g.UUID)
		require.Regexp(t, `^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`, g.PCIBusID)
		if i > 0 {
			require.Less(t, h.GPUs[i-1].PCIBusID, g.PCIBusID, "index order is PCI order")
		}
		uuids[g.UUID] = true
	}
	require.Len(t, uuids, 3)
	require.Empty(t, h.GPUs[0].MIG)
	require.Len(t, h.GPUs[2].MIG, 3)
	for _, m := range h.GPUs[2].MIG {
		require.Regexp(t, `^MIG-[0-9a-f]{8}-`, m.UUID)
		require.NotEqual(t, m.GICapMinor, m.CICapMinor)
	}
	require.Equal(t, "/", h.Config.Root)
	for _, p := range []string{h.Config.DriverRoot, h.Config.DevRoot, h.Config.ProcRoot} {
		require.True(t, filepath.IsAbs(p))
		require.DirExists(t, p)
	}
	require.Equal(t, 12040, h.CUDAAPIVersion)
}

func TestLibrariesAreRealELF(t *testing.T) {
	h := build(t, Options{Lib32: true})
	require.NotEmpty(t, h.LibrariesFor(inventory.Compute))
	sonames := map[string]bool{}
	for _, l := range h.Libraries {
		t.Run(l.Path, func(t *testing.T) {
			require.Equal(t, filepath.Join(h.Config.DriverRoot, l.Path), l.HostPath)
			if !strings.Contains(l.Path, "libnvidia-nvvm70") {
				require.True(t, strings.HasSuffix(l.Path, ".so."+h.DriverVersion), "driver libraries carry the version suffix")
			}
			got, err := ldcache.ReadSONAME(l.HostPath)
			require.NoError(t, err)
			require.Equal(t, l.SONAME, got)
			f, err := elf.Open(l.HostPath)
			require.NoError(t, err)
			defer f.Close()
			if l.Lib32 {
				require.Equal(t, elf.ELFCLASS32, f.Class)
				require.Equal(t, inventory.Compat32, l.Capability)
				require.True(t, strings.HasPrefix(l.Path, i386LibDir+"/"))
			} else {
				require.Equal(t, elf.ELFCLASS64, f.Class)
				require.True(t, strings.HasPrefix(l.Path, x8664LibDir+"/"))
			}
			if l.Link != "" {
				target, err := filepath.EvalSymlinks(filepath.Join(h.Config.DriverRoot, l.Link))
				require.NoError(t, err)
				require.Equal(t, l.HostPath, target)
			}
		})
		if !l.Lib32 {
			sonames[l.SONAME] = true
		}
	}
	for _, want := range []string{"libcuda.so.1", "libcudadebugger.so.1", "libnvidia-ptxjitcompiler.so.1", "libnvidia-nvvm.so.4",
		"libnvidia-opencl.so.1", "libnvidia-ml.so.1", "libnvidia-cfg.so.1", "libnvcuvid.so.1", "libnvidia-encode.so.1",
		"libGLX_nvidia.so.0", "libEGL_nvidia.so.0", "libnvidia-glcore.so." + h.DriverVersion,
		"libnvidia-eglcore.so." + h.DriverVersion, "libnvidia-ngx.so.1"} {
		require.True(t, sonames[want], "missing %s", want)
	}
	cuda, err := elf.Open(h.LibrariesFor(inventory.Compute)[0].HostPath)
	require.NoError(t, err)
	defer cuda.Close()
	syms, err := cuda.DynamicSymbols()
	require.NoError(t, err)
	var names []string
	for _, s := range syms {
		names = append(names, s.Name)
	}
	require.Subset(t, names, []string{"cuInit", "cuDriverGetVersion", "cuDeviceGetCount"})
}

// TestLDCacheMatchesLdconfig checks the cache we write against the one the
// real glibc ldconfig builds for the same driver root, and that
// ldconfig -p reads ours.
func TestLDCacheMatchesLdconfig(t *testing.T) {
	if _, err := os.Stat(ldconfig); err != nil {
		t.Skipf("glibc ldconfig not available: %v", err)
	}
	h := build(t, Options{Lib32: true})
	ours, err := ldcache.ReadFile(h.LDCache)
	require.NoError(t, err)
	require.Len(t, ours, len(h.Libraries))

	out, err := exec.Command(ldconfig, "-p", "-C", h.LDCache).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), fmt.Sprintf("%d libs found in cache", len(h.Libraries)))
	require.Contains(t, string(out), "libcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1")

	conf := "/etc/ld.so.conf.simhost-test"
	require.NoError(t, os.WriteFile(filepath.Join(h.Config.DriverRoot, conf), []byte(x8664LibDir+"\n"+i386LibDir+"\n"), 0o644))
	ref := "/etc/ld.so.cache.ldconfig"
	out, err = exec.Command(ldconfig, "-X", "-r", h.Config.DriverRoot, "-f", conf, "-C", ref).CombinedOutput()
	require.NoError(t, err, "%s", out)
	theirs, err := ldcache.ReadFile(filepath.Join(h.Config.DriverRoot, ref))
	require.NoError(t, err)
	require.Equal(t, theirs, ours, "ldconfig writes the same entries in the same order")
}

func TestCUDALibraryCountsNodes(t *testing.T) {
	h := build(t, Options{GPUs: 3, Omit: []string{"gpu:1-node"}})
	libdir := filepath.Join(h.Config.DriverRoot, x8664LibDir)
	cmd := exec.Command(h.CUDATest)
	cmd.Env = []string{"LD_LIBRARY_PATH=" + libdir, "SIMGPU_DEV_ROOT=" + h.Config.DevRoot}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "dlopen=ok lib=libcuda.so.1 devices=2 cuda=12040\n", string(out))

	cmd = exec.Command(h.CUDATest)
	cmd.Env = []string{"LD_LIBRARY_PATH=/nonexistent"}
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Regexp(t, `^dlopen=FAIL libcuda.so.1: cannot open shared object file`, string(out))

	cmd = exec.Command(filepath.Join(h.Config.DriverRoot, "usr/bin/nvidia-smi"))
	cmd.Env = []string{"SIMGPU_DEV_ROOT=" + h.Config.DevRoot}
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "Driver Version: 550.54.14  CUDA Version: 12.4")
	require.Contains(t, string(out), "GPU 1: "+h.Config.DevRoot+"/nvidia2")
}

func TestProcFiles(t *testing.T) {
	h := build(t, Options{GPUs: 2, MIG: map[int]int{1: 2}, UVMMajor: 499})
	proc := h.Config.ProcRoot
	v, err := os.ReadFile(filepath.Join(proc, "driver/nvidia/version"))
	require.NoError(t, err)
	require.Regexp(t, `^NVRM version: NVIDIA UNIX x86_64 Kernel Module  550\.54\.14  `, string(v))

	for _, g := range h.GPUs {
		kv := keyValues(t, filepath.Join(proc, "driver/nvidia/gpus", g.PCIBusID, "information"))
		require.Equal(t, g.Model, kv["Model"])
		require.Equal(t, g.UUID, kv["GPU UUID"])
		require.Equal(t, g.PCIBusID, kv["Bus Location"])
		require.Equal(t, strconv.Itoa(g.Minor), kv["Device Minor"])
		for _, k := range []string{"IRQ", "Video BIOS", "Bus Type", "DMA Size", "DMA Mask"} {
			require.NotEmpty(t, kv[k], k)
		}
	}
	for _, m := range h.GPUs[1].MIG {
		gi := keyValues(t, filepath.Join(proc, fmt.Sprintf("driver/nvidia/capabilities/gpu1/mig/gi%d/access", m.GI)))
		require.Equal(t, strconv.Itoa(m.GICapMinor), gi["DeviceFileMinor"])
		ci := keyValues(t, filepath.Join(proc, fmt.Sprintf("driver/nvidia/capabilities/gpu1/mig/gi%d/ci%d/access", m.GI, m.CI)))
		require.Equal(t, strconv.Itoa(m.CICapMinor), ci["DeviceFileMinor"])
		n, ok := h.Node(fmt.Sprintf("nvidia-caps/nvidia-cap%d", m.CICapMinor))
		require.True(t, ok)
		require.Equal(t, int64(m.CICapMinor), n.Minor)
	}
	require.Equal(t, "1", keyValues(t, filepath.Join(proc, "driver/nvidia/capabilities/mig/config"))["DeviceFileMinor"])
	require.Equal(t, "2", keyValues(t, filepath.Join(proc, "driver/nvidia/capabilities/mig/monitor"))["DeviceFileMinor"])

	devices, err := os.ReadFile(filepath.Join(proc, "devices"))
	require.NoError(t, err)
	chars, _, ok := strings.Cut(string(devices), "\nBlock devices:")
	require.True(t, ok)
	for _, want := range []string{"195 nvidia-frontend", "499 nvidia-uvm", "234 nvidia-caps"} {
		require.Regexp(t, regexp.MustCompile(`(?m)^`+want+`$`), chars)
	}
}

func TestNodesAndStater(t *testing.T) {
	h := build(t, Options{GPUs: 2, MIG: map[int]int{0: 1}})
	want := map[string][2]int64{"nvidia0": {195, 0}, "nvidia1": {195, 1}, "nvidiactl": {195, 255}, "nvidia-modeset": {195, 254},
		"nvidia-uvm": {511, 0}, "nvidia-uvm-tools": {511, 1}, "nvidia-caps/nvidia-cap1": {234, 1}, "nvidia-caps/nvidia-cap2": {234, 2},
		"dri/card1": {226, 1}, "dri/renderD129": {226, 129}}
	st := h.Stater()
	for name, mm := range want {
		n, ok := h.Node(name)
		require.True(t, ok, name)
		info, err := st.StatNode(filepath.Join(h.Config.DevRoot, name))
		require.NoError(t, err, name)
		require.True(t, info.IsChar)
		require.Equal(t, mm, [2]int64{info.Major, info.Minor}, name)
		require.Equal(t, n.Mode, info.Perm)
		fi, err := os.Stat(n.Path)
		require.NoError(t, err)
		require.Equal(t, n.Mode, fi.Mode().Perm())
	}
	_, err := st.StatNode(filepath.Join(h.Config.DevRoot, "nvidia7"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	link, err := os.Readlink(filepath.Join(h.Config.DevRoot, "dri/by-path", "pci-"+h.GPUs[1].PCIBusID+"-render"))
	require.NoError(t, err)
	require.Equal(t, "../renderD129", link)

	fi, err := os.Lstat(h.Sockets[0].HostPath)
	require.NoError(t, err)
	require.Equal(t, fs.ModeSocket, fi.Mode().Type())
}

func TestRealNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("RealNodes needs root (mknod)")
	}
	h := build(t, Options{GPUs: 2, RealNodes: true, MIG: map[int]int{1: 1}})
	st := h.Stater()
	for _, n := range h.Nodes {
		info, err := st.StatNode(n.Path)
		require.NoError(t, err, n.Name)
		require.True(t, info.IsChar, n.Name)
		require.Equal(t, [2]int64{n.Major, n.Minor}, [2]int64{info.Major, info.Minor}, n.Name)
		require.Equal(t, n.Mode, info.Perm, n.Name)
	}
	_, err := st.StatNode(filepath.Join(h.Config.DevRoot, "nvidia9"))
	require.ErrorIs(t, err, fs.ErrNotExist)

	// With no NVIDIA module loaded an allowed node opens with ENXIO (or
	// ENODEV when the major has no driver), which libcuda counts.
	_, err = os.OpenFile(filepath.Join(h.Config.DevRoot, "nvidia0"), os.O_RDWR, 0)
	require.True(t, errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV), "open: %v", err)
	cmd := exec.Command(h.CUDATest)
	cmd.Env = []string{"LD_LIBRARY_PATH=" + filepath.Join(h.Config.DriverRoot, x8664LibDir), "SIMGPU_DEV_ROOT=" + h.Config.DevRoot}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("cudatest on real nodes: %s", out)
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		check func(t *testing.T, h *Host)
	}{
		{"no ldcache", Options{Omit: []string{"ldcache"}}, func(t *testing.T, h *Host) {
			require.Empty(t, h.LDCache)
			require.NoFileExists(t, filepath.Join(h.Config.DriverRoot, "etc/ld.so.cache"))
		}},
		{"no uvm", Options{Omit: []string{"uvm"}}, func(t *testing.T, h *Host) {
			_, ok := h.Node("nvidia-uvm")
			require.False(t, ok)
			require.NoFileExists(t, filepath.Join(h.Config.DevRoot, "nvidia-uvm"))
			d, err := os.ReadFile(filepath.Join(h.Config.ProcRoot, "devices"))
			require.NoError(t, err)
			require.NotContains(t, string(d), "nvidia-uvm")
		}},
		{"no information for gpu 2", Options{Omit: []string{"gpu:2-information", "firmware", "persistenced"}}, func(t *testing.T, h *Host) {
			require.False(t, h.GPUs[2].Information)
			require.NoFileExists(t, filepath.Join(h.Config.ProcRoot, "driver/nvidia/gpus", h.GPUs[2].PCIBusID, "information"))
			require.FileExists(t, filepath.Join(h.Config.ProcRoot, "driver/nvidia/gpus", h.GPUs[1].PCIBusID, "information"))
			require.Empty(t, h.Firmware)
			require.Empty(t, h.Sockets)
		}},
		{"utility only", Options{Capabilities: []inventory.Capability{inventory.Utility}}, func(t *testing.T, h *Host) {
			for _, l := range h.Libraries {
				require.Equal(t, inventory.Utility, l.Capability)
			}
			require.NoFileExists(t, filepath.Join(h.Config.DriverRoot, x8664LibDir, "libcuda.so.550.54.14"))
			require.FileExists(t, filepath.Join(h.Config.DriverRoot, "usr/bin/nvidia-smi"))
			e, err := ldcache.ReadFile(h.LDCache)
			require.NoError(t, err)
			require.Len(t, e, len(h.Libraries))
		}},
		{"other driver, no libnvidia-ml, no GPUs", Options{GPUs: -1, DriverVersion: "535.161.08", CUDAVersion: "12.2", Omit: []string{"lib:libnvidia-ml"}},
			func(t *testing.T, h *Host) {
				require.Empty(t, h.GPUs)
				require.Equal(t, 12020, h.CUDAAPIVersion)
				for _, l := range h.Libraries {
					require.NotEqual(t, "libnvidia-ml.so.1", l.SONAME)
					require.True(t, strings.HasSuffix(l.Path, ".so.535.161.08") || strings.HasSuffix(l.Path, "libnvidia-nvvm70.so.4"), l.Path)
				}
				require.FileExists(t, filepath.Join(h.Config.DriverRoot, "lib/firmware/nvidia/535.161.08/gsp_ga10x.bin"))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, build(t, tc.opts))
		})
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no dir", Options{}, "Dir is required"},
		{"unknown omission", Options{Dir: "x", Omit: []string{"gpu:9-information"}}, "unknown omission"},
		{"mig on missing gpu", Options{Dir: "x", GPUs: 2, MIG: map[int]int{2: 1}}, "MIG on GPU 2"},
		{"bad cuda", Options{Dir: "x", CUDAVersion: "twelve"}, "not MAJOR.MINOR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestLoaderUsesWrittenCache proves the writer against glibc's ld.so
// itself: a cache holding the system's entries plus the simulated driver's
// (absolute paths) is bind-mounted over /etc/ld.so.cache in a private mount
// namespace, and cudatest finds libcuda.so.1 with no LD_LIBRARY_PATH, which
// only works when ld.so's binary search accepts our sort order.
func TestLoaderUsesWrittenCache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount over /etc/ld.so.cache in a private mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("unshare not available: %v", err)
	}
	system, err := ldcache.ReadFile("/etc/ld.so.cache")
	if err != nil {
		t.Skipf("no readable system ld.so.cache: %v", err)
	}
	h := build(t, Options{GPUs: 3})
	entries := system
	for _, l := range h.Libraries {
		entries = append(entries, ldcache.Entry{Key: l.SONAME, Value: l.HostPath, Flags: ldcache.FlagELFLibc6 | ldcache.FlagX8664Lib64})
	}
	cache := filepath.Join(t.TempDir(), "ld.so.cache")
	require.NoError(t, os.WriteFile(cache, ldcache.Write(entries), 0o644))
	script := `mount --make-rprivate / && mount --bind "$1" /etc/ld.so.cache && exec "$2"`
	cmd := exec.Command(unshare, "--mount", "sh", "-c", script, "sh", cache, h.CUDATest)
	cmd.Env = []string{"SIMGPU_DEV_ROOT=" + h.Config.DevRoot, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unshare failed") {
		t.Skipf("cannot create a mount namespace here: %s", out)
	}
	require.NoError(t, err, "%s", out)
	require.Equal(t, "dlopen=ok lib=libcuda.so.1 devices=3 cuda=12040\n", string(out))
}

// TestDebianLayout checks the Debian layout's links: every usual name is an
// absolute link through /etc/alternatives that resolves, inside the driver
// root, to the real file in nvidia/current; ld.so.cache lists the usual
// names; vdpau exists only under its SONAME.
func TestDebianLayout(t *testing.T) {
	h := build(t, Options{GPUs: 1, Layout: LayoutDebian})
	root := h.Config.DriverRoot
	// resolve follows links as if root were "/", the way the host does.
	resolve := func(rel string) string {
		t.Helper()
		real, err := securejoin.SecureJoin(root, rel)
		require.NoError(t, err)
		require.FileExists(t, real)
		r, err := filepath.Rel(root, real)
		require.NoError(t, err)
		return "/" + r
	}
	require.NotEmpty(t, h.Libraries)
	for _, l := range h.Libraries {
		require.True(t, strings.HasPrefix(l.Path, x8664LibDir+"/nvidia/current/"), l.Path)
		require.NotEmpty(t, l.Alias, l.Path)
		target, err := os.Readlink(filepath.Join(root, l.Alias))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(target, "/etc/alternatives/nvidia--"), "%s -> %s", l.Alias, target)
		require.Equal(t, l.Path, resolve(l.Alias))
		require.Equal(t, filepath.Join(root, l.Path), l.HostPath)
	}
	vdpau := h.LibrariesFor(inventory.Video)
	require.Contains(t, func() []string {
		var a []string
		for _, l := range vdpau {
			a = append(a, l.Alias)
		}
		return a
	}(), x8664LibDir+"/vdpau/libvdpau_nvidia.so.1")
	entries, err := ldcache.ReadFile(h.LDCache)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasPrefix(e.Key, "libvdpau_nvidia"), "ld.so.cache never lists vdpau")
		require.Equal(t, filepath.Join(x8664LibDir, e.Key), e.Value, "ldconfig records the usual name")
	}
	smi := h.Binaries[0]
	require.Equal(t, "/usr/bin/nvidia-smi", smi.Path)
	require.Equal(t, "/usr/lib/nvidia/current/nvidia-smi", resolve(smi.Path))
	require.Equal(t, filepath.Join(root, "usr/lib/nvidia/current/nvidia-smi"), smi.HostPath)
	require.Equal(t, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", resolve("/lib64/ld-linux-x86-64.so.2"))
	require.Equal(t, "/usr/lib/firmware/nvidia/"+h.DriverVersion+"/gsp_ga10x.bin", resolve("/lib/firmware/nvidia/"+h.DriverVersion+"/gsp_ga10x.bin"))

	// The copied loader runs the simulated nvidia-smi with the root's libc.
	loader := filepath.Join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	if _, err := os.Stat(loader); err != nil {
		require.NotEmpty(t, h.Notes, "no loader copied and no note saying why")
		t.Skipf("no x86_64 glibc loader on this machine: %q", h.Notes)
	}
	out, err := exec.Command(loader, "--library-path", filepath.Join(root, "usr/lib/x86_64-linux-gnu"), smi.HostPath, "-q").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "CUDA Version")
}

// TestNvidiaSMIMIG: the simulated nvidia-smi prints MIG UUIDs in NVIDIA's
// -L format, numbering MIG devices in descending GI order (not the
// inventory's), and the plain output's "MIG devices:" table ties each
// "Device N" to its GI and CI.
func TestNvidiaSMIMIG(t *testing.T) {
	h := build(t, Options{GPUs: 2, MIG: map[int]int{1: 2}})
	smi := filepath.Join(h.Config.DriverRoot, "usr/bin/nvidia-smi")
	out, err := exec.Command(smi, "-L").CombinedOutput()
	require.NoError(t, err, "%s", out)
	g0, g1 := h.GPUs[0], h.GPUs[1]
	require.Equal(t, "GPU 0: "+g0.Model+" (UUID: "+g0.UUID+")\n"+
		"GPU 1: "+g1.Model+" (UUID: "+g1.UUID+")\n"+
		"  MIG 1g.10gb     Device  0: (UUID: "+g1.MIG[1].UUID+")\n"+
		"  MIG 1g.10gb     Device  1: (UUID: "+g1.MIG[0].UUID+")\n", string(out))

	cmd := exec.Command(smi)
	cmd.Env = []string{"SIMGPU_DEV_ROOT=" + h.Config.DevRoot}
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "| MIG devices:")
	require.Contains(t, string(out), "| GPU  GI  CI  MIG |")
	require.Regexp(t, fmt.Sprintf(`\|\s+1\s+%d\s+%d\s+0\s+\|`, g1.MIG[1].GI, g1.MIG[1].CI), string(out))
	require.Regexp(t, fmt.Sprintf(`\|\s+1\s+%d\s+%d\s+1\s+\|`, g1.MIG[0].GI, g1.MIG[0].CI), string(out))
}
