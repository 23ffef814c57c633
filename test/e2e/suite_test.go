//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

// The suite fixture: one private containerd with the images imported and
// the simulated GPU host, shared by every test (building them costs tens of
// seconds). What a test needs of it beyond that — which runtime view
// containerd runs with, whether gpu-nri runs and with which loader — each
// test asks for with useRuntime and usePlugin, which restore that state
// whatever the tests before it did; no test depends on another having run.
type fixture struct {
	env *harness.Env
	// setupErr is why the fixture could not be built (every test fails with it).
	setupErr error
	// plugin is the external gpu-nri now running (nil: none), with loader.
	plugin *harness.Plugin
	loader string
	// pluginRuntime is the runtime the plugin is registered with.
	pluginRuntime string
	// cgroupV1 is the view the active runtime (env.Runtime) runs with now.
	cgroupV1 bool
}

// suite is the fixture TestMain builds (nil when not root).
var suite *fixture

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run()) // every test skips with the reason
	}
	ctx := context.Background()
	suite = &fixture{}
	dir := os.Getenv("E2E_DIR")
	t0 := time.Now()
	suite.env, suite.setupErr = harness.Setup(ctx, harness.Options{Dir: dir, CRIO: true, Log: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "# setup: "+f+"\n", a...)
	}})
	fmt.Fprintf(os.Stderr, "# setup: %v in %d ms\n", errOrReady(suite.setupErr), time.Since(t0).Milliseconds())
	code := m.Run()
	if suite.env != nil && os.Getenv("E2E_KEEP") != "1" {
		if suite.plugin != nil {
			_ = suite.plugin.Stop()
		}
		_ = harness.Unregister(suite.env.Containerd)
		_ = harness.Unregister(suite.env.CRIO)
		if err := suite.env.Teardown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "# teardown:", err)
		}
	}
	os.Exit(code)
}

func errOrReady(err error) string {
	if err != nil {
		return "FAILED: " + err.Error()
	}
	return "ready"
}

// env returns the fixture's environment or skips/fails the test.
func env(t *testing.T) *harness.Env {
	t.Helper()
	harness.RequireRoot(t)
	require.NoError(t, suite.setupErr, "suite setup")
	return suite.env
}

// runtimeCase is the runtime parameter of every scenario: a CRI runtime
// (containerd or CRI-O) and one of its OCI runtime handlers.
type runtimeCase struct {
	// cri is the CRI runtime: "containerd" or "crio".
	cri string
	// name is the OCI runtime handler: "runc" or "crun".
	name string
	// cgroupV1: the runtime runs in a mount namespace without
	// /sys/fs/cgroup/unified (crun on a hybrid-cgroup host).
	cgroupV1 bool
	// hookStderr: a failed hook's stderr is in the runtime's error (runc
	// yes; crun names only the hook and its exit code).
	hookStderr bool
}

// crio: the case runs on CRI-O.
func (rt runtimeCase) crio() bool { return rt.cri == "crio" }

// criRuntimes are the CRI runtimes every scenario runs on.
var criRuntimes = []string{"containerd", "crio"}

// runtimes are the handlers the scenarios run under on cri: runc always,
// crun when test/tools.sh built it (else its subtests skip, saying so).
func runtimes(cri string) []runtimeCase {
	hybrid := false
	if data, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil && strings.TrimSpace(string(data)) != "" {
		hybrid = true
	}
	return []runtimeCase{{cri: cri, name: "runc", hookStderr: true}, {cri: cri, name: "crun", cgroupV1: hybrid}}
}

// criRuntime is the harness runtime of rt.
func criRuntime(t *testing.T, rt runtimeCase) harness.CRIRuntime {
	t.Helper()
	e := env(t)
	if rt.crio() {
		return e.CRIO
	}
	return e.Containerd
}

// useRuntime makes rt's CRI runtime the active one, running with the view
// rt needs (restarting it when it differs), the other one stopped.
func useRuntime(t *testing.T, rt runtimeCase) {
	t.Helper()
	e := env(t)
	ctx := context.Background()
	want := criRuntime(t, rt)
	for _, r := range []harness.CRIRuntime{e.Containerd, e.CRIO} {
		if r != want && r.Running() {
			require.NoError(t, r.Stop(ctx), "stop %s", r.Name())
		}
	}
	require.NoError(t, e.UseRuntime(want))
	ensureRuntime(t, rt.cgroupV1)
}

// ensureRuntime restarts the active runtime when it is down or runs with
// another cgroup view.
func ensureRuntime(t *testing.T, cgroupV1 bool) {
	t.Helper()
	e := env(t)
	ctx := context.Background()
	if e.Runtime.Running() && suite.cgroupV1 == cgroupV1 {
		return
	}
	require.NoError(t, e.Runtime.Stop(ctx))
	require.NoError(t, e.Runtime.Start(ctx, harness.StartOptions{CgroupV1: cgroupV1}), "start %s", e.Runtime.Name())
	suite.cgroupV1 = cgroupV1
}

// usePlugin makes the external gpu-nri run with loader ("hook" or
// "hookless") and be registered with containerd; "" means none runs.
func usePlugin(t *testing.T, loader string) *harness.Plugin {
	t.Helper()
	e := env(t)
	ctx := context.Background()
	if p := suite.plugin; p != nil && p.Alive() && suite.loader == loader && suite.pluginRuntime == e.Runtime.Name() {
		if err := p.WaitReady(ctx, 15*time.Second); err == nil {
			return p
		}
	}
	if suite.plugin != nil {
		require.NoError(t, suite.plugin.Stop())
		suite.plugin, suite.loader, suite.pluginRuntime = nil, "", ""
	}
	if loader == "" {
		return nil
	}
	p, err := e.StartPlugin(ctx, "gpu-nri-"+loader, e.PluginConfig(loader))
	require.NoError(t, err)
	suite.plugin, suite.loader, suite.pluginRuntime = p, loader, e.Runtime.Name()
	return p
}

// ---------------------------------------------------------------- what containers see

// probe is a shell script printing what a container sees, one fact a line.
const probe = `for n in 0 1 2 3; do if [ -e /dev/nvidia$n ]; then echo "node$n=$(stat -c %t:%T /dev/nvidia$n)"; else echo "node$n=absent"; fi; done
for f in nvidiactl nvidia-uvm nvidia-uvm-tools nvidia-modeset; do [ -e /dev/$f ] && echo "ctl:$f=present" || echo "ctl:$f=absent"; done
find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \( -name "libcuda.so*" -o -name "libnvidia-ml.so*" -o -name nvidia-smi \) -print 2>/dev/null | sort | sed "s/^/file:/"
echo "LD_LIBRARY_PATH=[${LD_LIBRARY_PATH:-}]"
`

// cudatest runs the in-image CUDA program (dlopen("libcuda.so.1")).
const cudatest = "command -v cudatest >/dev/null && cudatest libcuda.so.1\n"

// seen is a probe's output parsed.
type seen struct {
	out   string
	nodes map[int]string // GPU index -> "c3:0" (hex major:minor) or "absent"
	ctl   map[string]bool
	files []string
	ldlp  string
}

func parseProbe(out string) seen {
	s := seen{out: out, nodes: map[int]string{}, ctl: map[string]bool{}}
	for _, l := range strings.Split(out, "\n") {
		var n int
		var v string
		switch {
		case strings.HasPrefix(l, "node"):
			if k, val, ok := strings.Cut(l, "="); ok {
				if _, err := fmt.Sscanf(k, "node%d", &n); err == nil {
					s.nodes[n] = val
				}
			}
		case strings.HasPrefix(l, "ctl:"):
			k, val, _ := strings.Cut(strings.TrimPrefix(l, "ctl:"), "=")
			s.ctl[k] = val == "present"
		case strings.HasPrefix(l, "file:"):
			s.files = append(s.files, strings.TrimPrefix(l, "file:"))
		case strings.HasPrefix(l, "LD_LIBRARY_PATH=["):
			v = strings.TrimSuffix(strings.TrimPrefix(l, "LD_LIBRARY_PATH=["), "]")
			s.ldlp = v
		}
	}
	return s
}

// hexMM is a node's major:minor as busybox `stat -c %t:%T` prints it.
func hexMM(t *testing.T, e *harness.Env, name string) string {
	t.Helper()
	n, ok := e.Host.Node(name)
	require.True(t, ok, "simulated host has no node %s", name)
	return fmt.Sprintf("%x:%x", n.Major, n.Minor)
}

// requireGPUs: the container saw exactly GPU nodes want (of the whole GPUs
// 0..GPUs-1), each with the host's major:minor.
func requireGPUs(t *testing.T, e *harness.Env, s seen, want ...int) {
	t.Helper()
	wanted := map[int]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	for i := 0; i < e.GPUs; i++ {
		exp := "absent"
		if wanted[i] {
			exp = hexMM(t, e, fmt.Sprintf("nvidia%d", i))
		}
		require.Equal(t, exp, s.nodes[i], "/dev/nvidia%d in the container\n%s", i, s.out)
	}
}

// requireSpecGPUs: the final OCI spec has exactly the GPU device nodes want,
// with the host's numbers, and a device-cgroup allow rule for each.
func requireSpecGPUs(t *testing.T, e *harness.Env, spec *rspec.Spec, want ...int) {
	t.Helper()
	require.NotNil(t, spec.Linux)
	got := map[string]rspec.LinuxDevice{}
	for _, d := range spec.Linux.Devices {
		got[d.Path] = d
	}
	wanted := map[int]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	for i := 0; i < e.GPUs; i++ {
		path := fmt.Sprintf("/dev/nvidia%d", i)
		d, ok := got[path]
		if !wanted[i] {
			require.False(t, ok, "spec has %s", path)
			continue
		}
		require.True(t, ok, "spec lacks %s (devices: %v)", path, devicePaths(spec))
		n, _ := e.Host.Node(fmt.Sprintf("nvidia%d", i))
		require.Equal(t, [2]int64{n.Major, n.Minor}, [2]int64{d.Major, d.Minor}, path)
		require.True(t, allowed(spec, n.Major, n.Minor), "no device cgroup allow rule for %s (%d:%d)", path, n.Major, n.Minor)
	}
}

func devicePaths(spec *rspec.Spec) []string {
	var out []string
	for _, d := range spec.Linux.Devices {
		out = append(out, d.Path)
	}
	return out
}

func allowed(spec *rspec.Spec, major, minor int64) bool {
	if spec.Linux.Resources == nil {
		return false
	}
	for _, r := range spec.Linux.Resources.Devices {
		if r.Allow && (r.Type == "c" || r.Type == "a") && (r.Major == nil || *r.Major == major) && (r.Minor == nil || *r.Minor == minor) {
			return true
		}
	}
	return false
}

// specEnv is the container's environment in the final spec.
func specEnv(spec *rspec.Spec) map[string]string {
	m := map[string]string{}
	if spec.Process != nil {
		for _, kv := range spec.Process.Env {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
	}
	return m
}

// hasCreateContainerHook: the spec runs gpu-nri-hook as a createContainer hook.
func hasCreateContainerHook(spec *rspec.Spec, hook string) bool {
	if spec.Hooks == nil {
		return false
	}
	for _, h := range spec.Hooks.CreateContainer {
		if h.Path == hook {
			return true
		}
	}
	return false
}

// cudaOK is cudatest's line for a working driver with n devices.
func cudaOK(e *harness.Env, lib string, n int) string {
	return fmt.Sprintf("dlopen=ok lib=%s devices=%d cuda=%d", lib, n, e.Host.CUDAAPIVersion)
}

// container is a shell-script container of a suite image.
func container(name, image, script string, env map[string]string) harness.Container {
	return harness.Container{Name: name, Image: harness.ImageRef(image), Command: []string{"/bin/sh", "-c", script}, Env: env}
}

// runOne runs one container in its own pod (pod annotations ann) and
// returns the result; the pod is removed with the test.
func runOne(t *testing.T, rt runtimeCase, name string, ann map[string]string, c harness.Container) harness.Result {
	t.Helper()
	p := env(t).Pod(t, name, rt.name, ann)
	return p.MustRun(t, c)
}

// env1 is a one-variable environment.
func env1(k, v string) map[string]string { return map[string]string{k: v} }

// requireCgroupRules pins the device-cgroup allow rules of each GPU in
// want: the runtime adds one per NRI device on every NRI version; gpu-nri
// adds its explicit one too (injection.deviceCgroupRules: auto) only where
// the runtime applies it: containerd 2.2+ (two identical rules), not
// CRI-O 1.34.0 (NRI v0.9.1 drops explicit rules: one).
func requireCgroupRules(t *testing.T, e *harness.Env, rt runtimeCase, spec *rspec.Spec, want ...int) {
	t.Helper()
	n := 2
	if rt.crio() {
		n = 1
	}
	for _, i := range want {
		node, ok := e.Host.Node(fmt.Sprintf("nvidia%d", i))
		require.True(t, ok)
		require.Equal(t, n, countRules(spec, node.Major, node.Minor), "device-cgroup allow rules for /dev/nvidia%d (%d:%d) on %s", i, node.Major, node.Minor, rt.cri)
	}
}

// countRules counts the exact char-device allow rules for major:minor.
func countRules(spec *rspec.Spec, major, minor int64) int {
	n := 0
	if spec.Linux == nil || spec.Linux.Resources == nil {
		return 0
	}
	for _, r := range spec.Linux.Resources.Devices {
		if r.Allow && r.Type == "c" && r.Major != nil && *r.Major == major && r.Minor != nil && *r.Minor == minor {
			n++
		}
	}
	return n
}
