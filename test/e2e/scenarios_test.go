//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// scenario is one end-to-end scenario, run once per runtime.
type scenario struct {
	name string
	run  func(t *testing.T, rt runtimeCase)
	// only names the one CRI runtime the scenario applies to ("" = all).
	only string
}

// TestScenarios runs every scenario on containerd and on CRI-O, each with
// runc and crun: the runtime is a parameter of the same tests
// (TestScenarios/<containerd|crio>/<runc|crun>/<scenario>). A scenario with
// only set runs on that CRI runtime alone (it pins that runtime's own
// behaviour; it is not registered, not skipped, elsewhere).
func TestScenarios(t *testing.T) {
	scenarios := []scenario{
		{name: "s1-visible-devices", run: s1VisibleDevices},
		{name: "s2-request-sources", run: s2RequestSources},
		{name: "s3-capabilities", run: s3Capabilities},
		{name: "s4-void-unset-none", run: s4VoidUnsetNone},
		{name: "s5-bad-requests", run: s5BadRequests},
		{name: "s7-multi-container", run: s7MultiContainer},
		{name: "s8-mig", run: s8MIG},
		{name: "s9-requirements", run: s9Requirements},
		{name: "s10-compute-not-ready", run: s10ComputeNotReady},
		{name: "s11-cdi-once", run: s11CDIOnce},
		{name: "s12-cuda-runtime", run: s12CUDARuntime},
		{name: "s13-pynvml", run: s12Pynvml},
		{name: "crio-differences", run: crioDifferences, only: "crio"},
		{name: "loader", run: loaderMatrix},
		{name: "hostile", run: hostileImages},
		{name: "hookless", run: hookless},
		{name: "library-dir", run: libraryDir},
		{name: "s6-faults", run: s6Faults},
		{name: "prereg", run: preregistered},
	}
	harness.RequireRoot(t)
	for _, cri := range criRuntimes {
		t.Run(cri, func(t *testing.T) {
			for _, rt := range runtimes(cri) {
				t.Run(rt.name, func(t *testing.T) {
					if rt.name == "crun" && env(t).Tools.Crun == "" {
						t.Skip("crun not installed (test/tools.sh builds it; its build failed or was skipped)")
					}
					for _, sc := range scenarios {
						if sc.only != "" && sc.only != cri {
							continue
						}
						t.Run(sc.name, func(t *testing.T) {
							useRuntime(t, rt)
							sc.run(t, rt)
						})
					}
				})
			}
		})
	}
}

// gpuScript is the probe plus the device-cgroup proof and cudatest.
func gpuScript() string {
	return probe + fmt.Sprintf(`cat /dev/nvidia0 2>&1 | head -1
mknod /tmp/gpu1 c %d 1 && cat /tmp/gpu1 2>&1 | head -1
`, simhost.NvidiaMajor) + cudatest
}

// 1. NVIDIA_VISIBLE_DEVICES=0,2 on a glibc image, hook loader.
func s1VisibleDevices(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hook")
	p := e.Pod(t, "s1", rt.name, nil)
	st, err := p.Status(context.Background())
	require.NoError(t, err)
	if rt.crio() {
		// CRI-O 1.34.0's PodSandboxStatus leaves runtimeHandler empty; the
		// container's state in the handler's runtime_root (below) proves it.
		require.Empty(t, st.RuntimeHandler, "CRI-O's pod status runtime handler")
	} else {
		require.Equal(t, rt.name, st.RuntimeHandler, "the pod's runtime handler")
		require.DirExists(t, filepath.Join(e.Runtime.RuntimeRoot(rt.name), "k8s.io", p.ID), "the pod's state in %s's root", rt.name)
	}

	res := p.MustRun(t, container("s1", "glibc", gpuScript(), env1("NVIDIA_VISIBLE_DEVICES", "0,2")))
	if rt.crio() {
		// CRI-O runs no infra container here (per-container PID namespaces):
		// the container's state is in the handler's runtime_root.
		require.DirExists(t, filepath.Join(e.Runtime.RuntimeRoot(rt.name), res.ID), "the container's state in %s's root", rt.name)
	}
	requireCgroupRules(t, e, rt, res.Spec, 0, 2)
	s := parseProbe(res.Output)
	requireGPUs(t, e, s, 0, 2)
	requireSpecGPUs(t, e, res.Spec, 0, 2)
	require.True(t, s.ctl["nvidiactl"], "/dev/nvidiactl\n%s", res.Output)
	require.True(t, s.ctl["nvidia-uvm"], "/dev/nvidia-uvm\n%s", res.Output)
	require.Contains(t, res.Output, "can't open '/dev/nvidia0': No such device or address", "open of an allowed node reaches the (absent) driver")
	require.Contains(t, res.Output, "can't open '/tmp/gpu1': Operation not permitted", "the device cgroup denies GPU 1")
	require.Empty(t, s.ldlp, "no LD_LIBRARY_PATH in the container")
	require.NotContains(t, specEnv(res.Spec), "LD_LIBRARY_PATH")
	require.True(t, hasCreateContainerHook(res.Spec, e.Bins.Hook), "createContainer hook %s in the spec", e.Bins.Hook)
	require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 2))
}

// 2. Other request sources: annotations, UUIDs, device-plugin mounts, CDI.
func s2RequestSources(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hook")
	script := probe + cudatest

	t.Run("container-annotation", func(t *testing.T) {
		ann := map[string]string{"gpus.gpu-nri.io/container.main": "1", "gpus.gpu-nri.io/container.other": "3"}
		res := runOne(t, rt, "s2-ctrann", ann, container("main", "glibc", script, nil))
		requireGPUs(t, e, parseProbe(res.Output), 1)
		requireSpecGPUs(t, e, res.Spec, 1)
		require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 1))
		// containerd's pod_annotations copies it into the spec; CRI-O copies every pod annotation.
		require.Equal(t, "1", res.Spec.Annotations["gpus.gpu-nri.io/container.main"], "the runtime copies the pod annotation into the spec")
	})
	t.Run("pod-annotation", func(t *testing.T) {
		res := runOne(t, rt, "s2-podann", map[string]string{"gpus.gpu-nri.io/pod": "3"}, container("c", "glibc", script, nil))
		requireGPUs(t, e, parseProbe(res.Output), 3)
	})
	t.Run("uuid", func(t *testing.T) {
		res := runOne(t, rt, "s2-uuid", nil, container("c", "glibc", script, env1("NVIDIA_VISIBLE_DEVICES", e.Host.GPUs[2].UUID)))
		requireGPUs(t, e, parseProbe(res.Output), 2)
	})
	t.Run("device-plugin-volume-mounts", func(t *testing.T) {
		c := container("c", "glibc", script, env1("NVIDIA_VISIBLE_DEVICES", "/var/run/nvidia-container-devices"))
		c.Mounts = []*runtime.Mount{
			{ContainerPath: "/var/run/nvidia-container-devices/1", HostPath: "/dev/null"},
			{ContainerPath: "/var/run/nvidia-container-devices/" + e.Host.GPUs[3].UUID, HostPath: "/dev/null"},
		}
		res := runOne(t, rt, "s2-volmounts", nil, c)
		requireGPUs(t, e, parseProbe(res.Output), 1, 3)
		requireSpecGPUs(t, e, res.Spec, 1, 3)
	})
	t.Run("cdi-annotations", func(t *testing.T) {
		dir := filepath.Join(e.Dir, "fpga")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		node := filepath.Join(dir, "fpga0")
		_ = os.Remove(node)
		require.NoError(t, unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(240, 7))))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "bitstream"), []byte("fpga bitstream\n"), 0o644))
		spec := filepath.Join(e.Runtime.CDIDir(), "example.com-fpga.yaml")
		require.NoError(t, os.WriteFile(spec, []byte(fmt.Sprintf(`cdiVersion: "0.6.0"
kind: example.com/fpga
devices:
- name: fpga0
  containerEdits:
    deviceNodes:
    - {path: /dev/fpga0, hostPath: %s, type: c, major: 240, minor: 7, permissions: rw}
    env: [FPGA_E2E=fpga0]
containerEdits:
  mounts:
  - {hostPath: %s, containerPath: /etc/fpga-bitstream, options: [ro, nosuid, nodev, bind]}
`, node, filepath.Join(dir, "bitstream"))), 0o644))
		t.Cleanup(func() { _ = os.Remove(spec) })
		ann := map[string]string{"cdi.k8s.io/fpga": "example.com/fpga=fpga0", "cdi.k8s.io/gpu": "nvidia.com/gpu=1"}
		res := runOne(t, rt, "s2-cdi", ann, container("c", "glibc", probe+"cat /dev/fpga0 2>&1 | head -1; echo FPGA_E2E=$FPGA_E2E; cat /etc/fpga-bitstream\n", nil))
		requireGPUs(t, e, parseProbe(res.Output), 1)
		require.Contains(t, res.Output, "can't open '/dev/fpga0': No such device or address", "third-party CDI device node usable")
		require.Contains(t, res.Output, "FPGA_E2E=fpga0\n", "third-party CDI env")
		require.Contains(t, res.Output, "fpga bitstream\n", "third-party CDI mount")
	})
}

// 3. NVIDIA_DRIVER_CAPABILITIES.
func s3Capabilities(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hook")
	hasFile := func(s seen, suffix string) bool {
		for _, f := range s.files {
			if strings.HasSuffix(f, suffix) || strings.Contains(filepath.Base(f), suffix) {
				return true
			}
		}
		return false
	}
	t.Run("utility", func(t *testing.T) {
		res := runOne(t, rt, "s3-utility", nil, container("c", "glibc", probe+`nvidia-smi >/tmp/smi.out 2>&1; echo smi-rc=$?; sed 's/^/smi: /' /tmp/smi.out | head -3
`+cudatest, map[string]string{"NVIDIA_VISIBLE_DEVICES": "0", "NVIDIA_DRIVER_CAPABILITIES": "utility"}))
		s := parseProbe(res.Output)
		require.True(t, hasFile(s, "/nvidia-smi"), "nvidia-smi injected: %v", s.files)
		require.True(t, hasFile(s, "libnvidia-ml.so"), "libnvidia-ml injected: %v", s.files)
		require.False(t, hasFile(s, "libcuda.so"), "no libcuda: %v", s.files)
		require.Contains(t, res.Output, "dlopen=FAIL", "cudatest cannot load libcuda.so.1")
		require.Contains(t, res.Output, "smi-rc=0")
		require.Contains(t, res.Output, fmt.Sprintf("smi: NVIDIA-SMI %s  Driver Version: %s", e.Host.DriverVersion, e.Host.DriverVersion))
	})
	t.Run("compute-utility", func(t *testing.T) {
		res := runOne(t, rt, "s3-compute", nil, container("c", "glibc", probe+cudatest+`for f in $(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \( -name 'libcuda.so.*.*' -o -name nvidia-smi \) -type f -print 2>/dev/null); do
  (echo x >>$f) 2>&1 | sed 's/^/write: /'; done
`, map[string]string{"NVIDIA_VISIBLE_DEVICES": "0", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}))
		s := parseProbe(res.Output)
		require.True(t, hasFile(s, "/libcuda.so.1"), "libcuda.so.1: %v", s.files)
		require.True(t, hasFile(s, "libnvidia-ml.so"), "libnvidia-ml: %v", s.files)
		require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 1))
		var writes []string
		for _, l := range strings.Split(res.Output, "\n") {
			if strings.HasPrefix(l, "write: ") {
				writes = append(writes, l)
			}
		}
		require.NotEmpty(t, writes, "no injected driver file was tried\n%s", res.Output)
		for _, w := range writes {
			require.Contains(t, w, "Read-only file system", "driver files are read-only")
		}
	})
}

// 4. void, unset and none.
func s4VoidUnsetNone(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hook")
	cases := []struct {
		name    string
		env     map[string]string
		driver  bool // control nodes and driver files injected
		devices int
	}{
		{"void", env1("NVIDIA_VISIBLE_DEVICES", "void"), false, 0},
		{"unset", nil, false, 0},
		{"none", env1("NVIDIA_VISIBLE_DEVICES", "none"), true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runOne(t, rt, "s4-"+c.name, nil, container("c", "glibc", probe+cudatest, c.env))
			s := parseProbe(res.Output)
			requireGPUs(t, e, s)
			requireSpecGPUs(t, e, res.Spec)
			require.Equal(t, c.driver, s.ctl["nvidiactl"], "control node\n%s", res.Output)
			if !c.driver {
				require.Empty(t, s.files, "no driver files")
				return
			}
			require.NotEmpty(t, s.files, "driver files injected")
			require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", c.devices))
		})
	}
}

// 5. Bad requests fail container creation with gpu-nri's error.
func s5BadRequests(t *testing.T, rt runtimeCase) {
	env(t)
	usePlugin(t, "hook")
	for _, v := range []string{"9", "GPU-zzz"} {
		t.Run(v, func(t *testing.T) {
			pod := "s5-" + v
			p := env(t).Pod(t, pod, rt.name, nil)
			msg := p.CreateRefused(t, container("bad-"+v, "glibc", "echo should-not-run", env1("NVIDIA_VISIBLE_DEVICES", v)))
			require.Contains(t, msg, fmt.Sprintf("gpu-nri: container %s/%s/bad-%s: ", harness.Namespace, pod, v), "names the container")
			require.Contains(t, msg, "NVIDIA_VISIBLE_DEVICES", "names the variable")
			require.Contains(t, msg, fmt.Sprintf("%q", v), "quotes the value")
		})
	}
}

// 7. One pod, three containers, different GPUs.
func s7MultiContainer(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hook")
	p := e.Pod(t, "s7", rt.name, map[string]string{"gpus.gpu-nri.io/container.c": "2"})
	a := p.MustRun(t, container("a", "glibc", probe+cudatest, env1("NVIDIA_VISIBLE_DEVICES", "0")))
	b := p.MustRun(t, container("b", "glibc", probe+cudatest, env1("NVIDIA_VISIBLE_DEVICES", "1,3")))
	c := p.MustRun(t, container("c", "glibc", probe+cudatest, nil))
	requireGPUs(t, e, parseProbe(a.Output), 0)
	requireGPUs(t, e, parseProbe(b.Output), 1, 3)
	requireGPUs(t, e, parseProbe(c.Output), 2)
	require.Contains(t, b.Output, cudaOK(e, "libcuda.so.1", 2))
}

// 8. MIG: a MIG device of the MIG-mode GPU (index GPUs).
func s8MIG(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hook")
	m := e.GPUs
	var mig *simhost.MIG
	for i := range e.Host.GPUs[m].MIG {
		if e.Host.GPUs[m].MIG[i].Index == 1 {
			mig = &e.Host.GPUs[m].MIG[i]
		}
	}
	require.NotNil(t, mig, "simulated GPU %d has no MIG device 1", m)
	res := runOne(t, rt, "s8-mig", nil, container("c", "glibc", probe+fmt.Sprintf(`ls /dev/nvidia-caps/ 2>&1 | sed 's/^/cap:/'
[ -e /dev/nvidia%d ] && echo "mig-parent=$(stat -c %%t:%%T /dev/nvidia%d)"
`, m, m)+cudatest, env1("NVIDIA_VISIBLE_DEVICES", fmt.Sprintf("%d:1", m))))
	requireGPUs(t, e, parseProbe(res.Output))
	require.Contains(t, res.Output, "mig-parent="+hexMM(t, e, fmt.Sprintf("nvidia%d", m))+"\n", "the parent GPU node")
	var caps []string
	for _, l := range strings.Split(res.Output, "\n") {
		if strings.HasPrefix(l, "cap:nvidia-cap") {
			caps = append(caps, strings.TrimPrefix(l, "cap:"))
		}
	}
	want := []string{fmt.Sprintf("nvidia-cap%d", mig.GICapMinor), fmt.Sprintf("nvidia-cap%d", mig.CICapMinor)}
	sort.Strings(want)
	sort.Strings(caps)
	require.Equal(t, want, caps, "exactly the GPU-instance and compute-instance access caps")
	require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 1))

	p := e.Pod(t, "s8-whole", rt.name, nil)
	msg := p.CreateRefused(t, container("whole", "glibc", "true", env1("NVIDIA_VISIBLE_DEVICES", fmt.Sprint(m))))
	require.Contains(t, msg, "MIG enabled")
}

// 9. NVIDIA_REQUIRE_* against the driver's facts.
func s9Requirements(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hook")
	t.Run("met", func(t *testing.T) {
		res := runOne(t, rt, "s9-met", nil, container("c", "glibc", cudatest,
			map[string]string{"NVIDIA_VISIBLE_DEVICES": "0", "NVIDIA_REQUIRE_CUDA": "cuda>=12.0 brand=tesla arch>=9.0,driver>=550"}))
		require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 1))
	})
	t.Run("unmet", func(t *testing.T) {
		p := e.Pod(t, "s9-unmet", rt.name, nil)
		msg := p.CreateRefused(t, container("unmet", "glibc", "true", map[string]string{"NVIDIA_VISIBLE_DEVICES": "0", "NVIDIA_REQUIRE_CUDA": "cuda>=13.0"}))
		require.Contains(t, msg, "cuda>=13.0", "names the constraint")
		require.Contains(t, msg, "host CUDA driver API "+e.Host.CUDAVersion, "names the host's value")
	})
	t.Run("legacy-image", func(t *testing.T) {
		res := runOne(t, rt, "s9-legacy", nil, container("c", "glibc", probe+cudatest, env1("CUDA_VERSION", "12.2.0")))
		all := make([]int, e.GPUs)
		for i := range all {
			all[i] = i
		}
		requireGPUs(t, e, parseProbe(res.Output), all...)
	})
	t.Run("legacy-image-too-new", func(t *testing.T) {
		p := e.Pod(t, "s9-legacy-new", rt.name, nil)
		msg := p.CreateRefused(t, container("legacy", "glibc", "true", env1("CUDA_VERSION", "13.1.0")))
		require.Contains(t, msg, "cuda>=13.1", "the implicit requirement of a CUDA 13.1 image")
	})
}

// loader: image layouts x loader modes.
func loaderMatrix(t *testing.T, rt runtimeCase) {
	for _, mode := range []string{"hook", "hookless"} {
		t.Run(mode, func(t *testing.T) { loaderImages(t, rt, mode) })
	}
}

func loaderImages(t *testing.T, rt runtimeCase, mode string) {
	e := env(t)
	usePlugin(t, mode)
	gpu0 := env1("NVIDIA_VISIBLE_DEVICES", "0")
	for _, img := range []string{"glibc", "rhel"} {
		t.Run(img, func(t *testing.T) {
			usePlugin(t, mode)
			res := runOne(t, rt, "ld-"+mode+"-"+img, nil, container("c", img, `cudatest libcuda.so.1; cudatest libcuda.so; echo "LD_LIBRARY_PATH=[${LD_LIBRARY_PATH:-}]"`+"\n", gpu0))
			require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 1))
			require.Contains(t, res.Output, cudaOK(e, "libcuda.so", 1))
			// Both loaders find the driver without LD_LIBRARY_PATH on these
			// layouts (docs/hook.md: hookless mounts into the default dirs).
			require.Contains(t, res.Output, "LD_LIBRARY_PATH=[]\n")
			require.NotContains(t, specEnv(res.Spec), "LD_LIBRARY_PATH")
		})
	}
	t.Run("distroless", func(t *testing.T) {
		usePlugin(t, mode)
		c := container("c", "distroless", "cudatest libcuda.so.1\n", gpu0)
		c.Command[0] = "/busybox/sh"
		res := runOne(t, rt, "ld-"+mode+"-distroless", nil, c)
		require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 1))
	})
	t.Run("busybox", func(t *testing.T) {
		usePlugin(t, mode)
		res := runOne(t, rt, "ld-"+mode+"-busybox", nil, container("c", "busybox", probe+"echo started\n", gpu0))
		require.Contains(t, res.Output, "started\n")
		requireGPUs(t, e, parseProbe(res.Output), 0)
	})
	t.Run("musl", func(t *testing.T) {
		if e.Bins.CUDATestMusl == "" {
			t.Skip("musl-gcc not installed: no musl image")
		}
		usePlugin(t, mode)
		pathFile := "/etc/ld-musl-" + e.Arch.Musl + ".path"
		res := runOne(t, rt, "ld-"+mode+"-musl", nil, container("c", "musl", "echo started; cat "+pathFile+" 2>&1 | sed 's/^/path: /'; cudatest libcuda.so.1\n", gpu0))
		require.Contains(t, res.Output, "started\n")
		if mode == "hook" {
			require.Regexp(t, `(?m)^path: /\S*lib`, res.Output, "the hook wrote %s", pathFile)
			// musl finds the driver through the path file. The simulated
			// libcuda is plain C that musl can load; NVIDIA's real libraries
			// need gcompat (docs/hook.md), which this test bed cannot show.
			require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 1))
			return
		}
		require.Contains(t, res.Output, "No such file", "hookless writes no %s", pathFile)
		// Nothing tells musl's loader where the driver is (docs/hook.md: "nothing for musl images").
		require.Contains(t, res.Output, "dlopen=FAIL Error loading shared library libcuda.so.1: No such file or directory")
	})
}

// hostileOutcome is what must happen to a hostile image: it starts (and
// the host is unchanged) or it is refused with this error (and the host is
// unchanged). Never either.
type hostileOutcome struct {
	image    string
	advisory string
	// refused are the parts of gpu-nri-hook's error the refusal must carry,
	// in order (none: the container starts).
	refused []string
}

func hostileImages(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hook")
	cases := []hostileOutcome{
		// The link resolves inside the container root (to the root itself):
		// the libraries land in the container, the host is not reached.
		{harness.HostileLibdir, "CVE-2024-0132 (library dir symlink to /)", nil},
		// The cache is written by temp file + rename over the link.
		{harness.HostileLdcache, "CVE-2025-23267 (/etc/ld.so.cache a symlink to a host file)", nil},
		// The link is followed inside the root (pathrs-lite), where the host
		// directory does not exist: no directory there, refused as hostile.
		{harness.HostileConfd, "CVE-2025-23267 (/etc/ld.so.conf.d a symlink to a host directory)",
			[]string{"gpu-nri: hook: open directory /etc/ld.so.conf.d in container root: ", rootfsOf(rt) + "/etc/ld.so.conf.d: not a directory: unexpected file in container root"}},
		// A FIFO where the first SONAME link goes (compute's libcuda.so.1,
		// capabilities in config.AllCapabilities order) is refused (ErrHostileRoot).
		{harness.HostileFifo, "FIFO and directory at SONAME link targets",
			[]string{"gpu-nri: hook: " + e.Arch.UsrLibDir() + "/libcuda.so.1 in container root is a FIFO: unexpected file in container root"}},
		// LD_PRELOAD is the container's own business: nothing of gpu-nri runs
		// the image's code on the host.
		{harness.HostilePreload, "CVE-2025-23266 NVIDIAScape (ENV LD_PRELOAD=/proc/self/cwd/x.so)", nil},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.image, "hostile-"), func(t *testing.T) {
			before, err := harness.HostState(e.Sentinel, e.Bins.PreloadMarker)
			require.NoError(t, err)
			p := e.Pod(t, c.image, rt.name, nil)
			res, runErr := p.Run(context.Background(), container("c", c.image, "echo started; "+cudatest, env1("NVIDIA_VISIBLE_DEVICES", "0")), 15*time.Second)
			after, err := harness.HostState(e.Sentinel, e.Bins.PreloadMarker)
			require.NoError(t, err)
			require.Equal(t, before, after, "%s: the host sentinel, /etc/ld.so.cache and the preload marker are unchanged", c.advisory)
			if len(c.refused) == 0 {
				require.NoError(t, runErr, c.advisory)
				require.Contains(t, res.Output, "started\n", c.advisory)
				require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 1), c.advisory)
				return
			}
			require.Error(t, runErr, "%s: want a refusal, the container ran: %s", c.advisory, res.Output)
			require.NotErrorIs(t, runErr, context.DeadlineExceeded, "%s: no hang", c.advisory)
			if rt.hookStderr {
				msg := runErr.Error()
				for _, part := range c.refused {
					i := strings.Index(msg, part)
					require.GreaterOrEqual(t, i, 0, "%s: %q does not contain %q", c.advisory, runErr.Error(), part)
					msg = msg[i+len(part):]
				}
			} else {
				// crun reports a failed hook by its path and exit code only.
				require.Contains(t, runErr.Error(), "error executing hook `"+e.Bins.Hook+"` (exit code: 1)", c.advisory)
			}
		})
	}
}

// rootfsOf is how the end of a container root's host path reads in a
// hook's error: containerd's bundle rootfs, CRI-O's overlay "merged" dir in
// its containers-storage.
func rootfsOf(rt runtimeCase) string {
	if rt.crio() {
		return "/merged"
	}
	return "/rootfs"
}

// hookless: gpu-nri's hookless loader: GPUs and the driver without an OCI hook.
func hookless(t *testing.T, rt runtimeCase) {
	e := env(t)
	usePlugin(t, "hookless")
	res := runOne(t, rt, "hl-s1", nil, container("c", "glibc", gpuScript(), env1("NVIDIA_VISIBLE_DEVICES", "0,2")))
	s := parseProbe(res.Output)
	requireGPUs(t, e, s, 0, 2)
	requireSpecGPUs(t, e, res.Spec, 0, 2)
	require.Contains(t, res.Output, "can't open '/dev/nvidia0': No such device or address", "open of an allowed node reaches the (absent) driver")
	require.Contains(t, res.Output, "can't open '/tmp/gpu1': Operation not permitted", "the device cgroup denies GPU 1")
	require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 2))
	require.False(t, hasCreateContainerHook(res.Spec, e.Bins.Hook), "no gpu-nri hook in the spec")
	if res.Spec.Hooks != nil {
		require.Empty(t, res.Spec.Hooks.CreateContainer, "no createContainer hook at all")
	}
}

// 6. Faults: the runtime killed and restarted, gpu-nri killed and restarted.
func s6Faults(t *testing.T, rt runtimeCase) {
	e := env(t)
	ctx := context.Background()
	p := usePlugin(t, "hook")
	pid := p.Pid()
	require.NoError(t, harness.RemoveAllPods(ctx, e.CRI))
	require.NoError(t, e.Runtime.Kill())
	require.NoError(t, p.WaitNotReady(ctx, 10*time.Second), "gpu-nri notices %s is gone", rt.cri)
	require.True(t, p.Alive(), "gpu-nri keeps running while %s is down", rt.cri)
	require.NoError(t, e.Runtime.Start(ctx, harness.StartOptions{CgroupV1: suite.cgroupV1}))
	require.NoError(t, p.WaitReady(ctx, 15*time.Second), "gpu-nri reconnects to the restarted %s by itself", rt.cri)
	require.True(t, p.Alive())
	require.Equal(t, pid, p.Pid(), "the same process reconnected")

	res := runOne(t, rt, "s6-after-restart", nil, container("c", "glibc", probe+cudatest, env1("NVIDIA_VISIBLE_DEVICES", "0,2")))
	requireGPUs(t, e, parseProbe(res.Output), 0, 2)

	// gpu-nri killed: NRI fails open (documented NRI behaviour).
	require.NoError(t, p.Kill())
	suite.plugin, suite.loader, suite.pluginRuntime = nil, "", ""
	// The runtime drops the plugin when it reads EOF on its connection; give
	// that read a moment (this is not a timed assertion).
	time.Sleep(300 * time.Millisecond)
	res = runOne(t, rt, "s6-no-plugin", nil, container("c", "glibc", probe, env1("NVIDIA_VISIBLE_DEVICES", "0")))
	requireGPUs(t, e, parseProbe(res.Output))
	requireSpecGPUs(t, e, res.Spec)

	usePlugin(t, "hook")
	res = runOne(t, rt, "s6-plugin-back", nil, container("c", "glibc", probe, env1("NVIDIA_VISIBLE_DEVICES", "1")))
	requireGPUs(t, e, parseProbe(res.Output), 1)
}

// prereg: gpu-nri pre-registered (plugin_path/10-gpu-nri + conf.d), started by the runtime.
func preregistered(t *testing.T, rt runtimeCase) {
	e := env(t)
	ctx := context.Background()
	usePlugin(t, "")
	cfg := e.PluginConfig("hook")
	cfg.Socket = "" // the runtime passes the connection
	r := e.Runtime
	require.NoError(t, harness.Preregister(r, e.Bins.GPUNRI, cfg))
	t.Cleanup(func() {
		require.NoError(t, harness.Unregister(r))
		require.NoError(t, r.Restart(ctx, harness.StartOptions{CgroupV1: suite.cgroupV1}))
	})
	require.NoError(t, r.Restart(ctx, harness.StartOptions{CgroupV1: suite.cgroupV1}))
	require.NotEmpty(t, harness.PreregisteredPids(r), "%s started %s", rt.cri, harness.PreregisteredName)
	res := runOne(t, rt, "pre-s1", nil, container("c", "glibc", probe+cudatest, env1("NVIDIA_VISIBLE_DEVICES", "0,2")))
	requireGPUs(t, e, parseProbe(res.Output), 0, 2)
	requireSpecGPUs(t, e, res.Spec, 0, 2)
	require.Contains(t, res.Output, cudaOK(e, "libcuda.so.1", 2))
}
