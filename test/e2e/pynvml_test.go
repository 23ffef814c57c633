//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// NVIDIA's NVML bindings (nvidia-ml-py, Debian's python3-pynvml
// 12.550.89, fetched by test/nvidia-debs.sh) against the simulated NVML:
// on the host, and inside containers given GPUs by gpu-nri.

// pynvmlProbe lists what NVML shows, one fact a line: "count=N", then per
// GPU "gpu=<index> <uuid> mig=<0|1>" and per MIG device "mig=<parent
// index> <gi> <ci> <uuid>".
const pynvmlProbe = `import pynvml as n
n.nvmlInit()
print("driver=" + n.nvmlSystemGetDriverVersion())
c = n.nvmlDeviceGetCount()
print("count=%d" % c)
for i in range(c):
    h = n.nvmlDeviceGetHandleByIndex(i)
    cur, _ = n.nvmlDeviceGetMigMode(h)
    print("gpu=%d %s mig=%d" % (i, n.nvmlDeviceGetUUID(h), cur))
    if cur:
        for j in range(n.nvmlDeviceGetMaxMigDeviceCount(h)):
            try:
                m = n.nvmlDeviceGetMigDeviceHandleByIndex(h, j)
            except n.NVMLError_NotFound:
                continue
            print("mig=%d %d %d %s" % (i, n.nvmlDeviceGetGpuInstanceId(m), n.nvmlDeviceGetComputeInstanceId(m), n.nvmlDeviceGetUUID(m)))
n.nvmlShutdown()
`

// pynvmlDir returns the directory to put on PYTHONPATH for pynvml.
func pynvmlDir(t *testing.T, e *harness.Env) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(e.Repo, "test/nvidia-debs.sh"), "pynvml")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "test/nvidia-debs.sh pynvml: %s", stderr.String())
	nv := strings.TrimSpace(string(out))
	matches, err := filepath.Glob(filepath.Join(nv, "pynvml-*", "root/usr/lib/python3/dist-packages"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "one pynvml in %s", nv)
	return matches[0]
}

// nvmlView is pynvmlProbe's output parsed.
type nvmlView struct {
	gpus []string // UUIDs in NVML index order
	migs []string // "<parent index> <gi> <ci> <uuid>"
}

func parseNVMLView(t *testing.T, out string) nvmlView {
	t.Helper()
	var v nvmlView
	count := -1
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "count="):
			_, err := fmt.Sscanf(l, "count=%d", &count)
			require.NoError(t, err, l)
		case strings.HasPrefix(l, "gpu="):
			f := strings.Fields(l)
			require.Len(t, f, 3, l)
			v.gpus = append(v.gpus, f[1])
		case strings.HasPrefix(l, "mig="):
			v.migs = append(v.migs, strings.TrimPrefix(l, "mig="))
		}
	}
	require.Equal(t, len(v.gpus), count, "NVML's count and its handles\n%s", out)
	return v
}

func migLine(parent int, m simhost.MIG) string {
	return fmt.Sprintf("%d %d %d %s", parent, m.GI, m.CI, m.UUID)
}

// TestPynvmlSimulatedHost: NVIDIA's Python bindings, unmodified, on the
// host against the simulated driver root list every GPU (UUIDs in PCI bus
// order) and every MIG device with its GPU/compute instance ids and UUID.
func TestPynvmlSimulatedHost(t *testing.T) {
	e := env(t)
	py := pynvmlDir(t, e)
	h, err := simhost.Build(simhost.Options{Dir: t.TempDir(), GPUs: 3, MIG: map[int]int{2: 3}})
	require.NoError(t, err)
	cmd := exec.Command("python3", "-S", "-c", pynvmlProbe)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+py, "SIMGPU_DEV_ROOT="+h.Config.DevRoot,
		"LD_LIBRARY_PATH="+filepath.Join(h.Config.DriverRoot, "usr/lib/x86_64-linux-gnu"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "driver="+h.DriverVersion+"\n")
	v := parseNVMLView(t, string(out))
	var want, wantMIG []string
	for _, g := range h.GPUs {
		want = append(want, g.UUID)
		for _, m := range g.MIG {
			wantMIG = append(wantMIG, migLine(g.Index, m))
		}
	}
	require.Equal(t, want, v.gpus, "%s", out)
	require.Equal(t, wantMIG, v.migs, "%s", out)
}

// pynvmlImageOnce builds and loads the pynvml image once per suite and CRI
// runtime (CRI-O reads its own containers-storage).
var pynvmlImageOnce struct {
	sync.Mutex
	done map[string]bool
}

// pynvmlImage is the suite's glibc image (Debian layout) plus this
// machine's Debian python3.11 (binary, the libraries it links, the
// standard library without tests and tools) and NVIDIA's pynvml in
// /usr/lib/python3/dist-packages; it returns the image name.
func pynvmlImage(t *testing.T, e *harness.Env) string {
	t.Helper()
	pynvmlImageOnce.Lock()
	defer pynvmlImageOnce.Unlock()
	const name = "pynvml"
	if pynvmlImageOnce.done[e.Dir+" "+e.Runtime.Name()] {
		return name
	}
	py := pynvmlDir(t, e)
	a := e.Arch
	// Laid out like the suite's glibc image (Debian: /lib/<multiarch>,
	// the loader link, ld.so.conf + conf.d, ldconfig and its cache).
	r := harness.NewRootFS(filepath.Join(e.Dir, "build", "rootfs-pynvml"))
	for _, lib := range []string{a.Loader, "libc.so.6", "libdl.so.2"} {
		r.Copy(filepath.Join(a.LibDir(), lib), filepath.Join(a.LibDir(), lib), 0o755)
	}
	r.Mkdir(a.LoaderDir, a.UsrLibDir(), "/etc/ld.so.conf.d", "/sbin", "/tmp").
		Symlink(filepath.Join(a.LibDir(), a.Loader), a.LoaderPath()).
		Write("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n", 0o644).
		Write("/etc/ld.so.conf.d/"+a.Multiarch+".conf", fmt.Sprintf("%s\n%s\n", a.LibDir(), a.UsrLibDir()), 0o644).
		Copy("/sbin/ldconfig", "/sbin/ldconfig", 0o755)
	r.Copy("/usr/bin/python3.11", "/usr/bin/python3", 0o755)
	for _, lib := range []string{"libm.so.6", "libz.so.1", "libexpat.so.1", "libffi.so.8"} {
		r.Copy(filepath.Join(a.LibDir(), lib), filepath.Join(a.LibDir(), lib), 0o755)
	}
	r.Mkdir("/usr/lib/python3/dist-packages").
		Run("cp", "-a", "/usr/lib/python3.11", filepath.Join(r.Dir, "usr/lib/")).
		Run("cp", "-a", py+"/.", filepath.Join(r.Dir, "usr/lib/python3/dist-packages/"))
	for _, d := range []string{"test", "idlelib", "tkinter", "lib2to3", "ensurepip", "pydoc_data", "distutils",
		"config-3.11-" + a.Multiarch, "site-packages", "dist-packages"} {
		r.Remove(filepath.Join("/usr/lib/python3.11", d))
	}
	r.Run("find", filepath.Join(r.Dir, "usr/lib/python3.11"), "-name", "__pycache__", "-prune", "-exec", "rm", "-rf", "{}", "+").
		Run("/sbin/ldconfig", "-r", r.Dir)
	require.NoError(t, r.Err(), "building the pynvml image")
	archive := filepath.Join(e.Dir, "build", "pynvml-image.tar")
	require.NoError(t, harness.WriteOCIArchive(archive, a, harness.Image{Name: harness.ImageRef(name), RootFS: r.Dir,
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PYTHONPATH=/usr/lib/python3/dist-packages"}, Cmd: []string{"/usr/bin/python3"}}))
	require.NoError(t, e.Runtime.LoadImages(archive), "pynvml image into %s", e.Runtime.Name())
	if pynvmlImageOnce.done == nil {
		pynvmlImageOnce.done = map[string]bool{}
	}
	pynvmlImageOnce.done[e.Dir+" "+e.Runtime.Name()] = true
	return name
}

// s12Pynvml: in a container given GPUs 0 and 2 by gpu-nri (hook and
// hookless), NVIDIA's pynvml sees exactly those two GPUs, by UUID; given
// one MIG device, it sees that MIG device's parent and only that MIG
// device.
func s12Pynvml(t *testing.T, rt runtimeCase) {
	e := env(t)
	img := pynvmlImage(t, e)
	py := func(env map[string]string) harness.Container {
		return harness.Container{Name: "py", Image: harness.ImageRef(img), Command: []string{"/usr/bin/python3", "-S", "-c", pynvmlProbe}, Env: env}
	}
	for _, loader := range []string{"hook", "hookless"} {
		t.Run(loader, func(t *testing.T) {
			usePlugin(t, loader)
			t.Run("gpus-0-2", func(t *testing.T) {
				res := runOne(t, rt, "s12-pynvml-"+loader, nil, py(map[string]string{"NVIDIA_VISIBLE_DEVICES": "0,2", "NVIDIA_DRIVER_CAPABILITIES": "utility"}))
				require.Zero(t, res.ExitCode, "%s", res.Output)
				v := parseNVMLView(t, res.Output)
				got := append([]string(nil), v.gpus...)
				sort.Strings(got)
				require.Equal(t, []string{e.Host.GPUs[0].UUID, e.Host.GPUs[2].UUID}, got, "%s", res.Output)
				require.Empty(t, v.migs)
			})
			var mg *simhost.GPU
			for i := range e.Host.GPUs {
				if len(e.Host.GPUs[i].MIG) > 1 {
					mg = &e.Host.GPUs[i]
				}
			}
			require.NotNil(t, mg, "the suite host has a GPU with two or more MIG devices")
			t.Run("one-mig", func(t *testing.T) {
				m := mg.MIG[1]
				res := runOne(t, rt, "s12-pynvml-mig-"+loader, nil, py(map[string]string{"NVIDIA_VISIBLE_DEVICES": m.UUID, "NVIDIA_DRIVER_CAPABILITIES": "utility"}))
				require.Zero(t, res.ExitCode, "%s", res.Output)
				v := parseNVMLView(t, res.Output)
				require.Equal(t, []string{mg.UUID}, v.gpus, "%s", res.Output)
				require.Equal(t, []string{migLine(0, m)}, v.migs, "%s", res.Output)
			})
		})
	}
}
