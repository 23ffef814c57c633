package plugin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rgen "github.com/opencontainers/runtime-tools/generate"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/nritest"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// scenario is the real plugin behind a real in-process NRI runtime.
type scenario struct {
	*nritest.Daemon
	t    *testing.T
	host *simhost.Host
	cfg  *config.Config
	logs *nritest.Logs
}

func newScenario(t *testing.T, mutate func(*config.Config)) *scenario {
	t.Helper()
	return newScenarioWith(t, mutate, nil)
}

// newScenarioWith is newScenario with the daemon's metrics in m (nil: none).
func newScenarioWith(t *testing.T, mutate func(*config.Config), m *metrics.Metrics) *scenario {
	t.Helper()
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 4, MIG: map[int]int{3: 2}})
	require.NoError(t, err)
	d := nritest.Start(t, h, mutate, func(o *plugin.Options) { o.Metrics = m })
	return &scenario{Daemon: d, t: t, host: h, cfg: d.Config, logs: d.Logs}
}

// create sends one CreateContainer through the runtime and returns the OCI
// spec after the runtime applied the merged adjustment, as containerd does.
func (s *scenario) create(ns, name string, podAnn map[string]string, env []string, mounts []*api.Mount) (*rspec.Spec, error) {
	s.t.Helper()
	pod := &api.PodSandbox{Id: "pod-" + name, Name: "pod-" + name, Uid: "uid-" + name, Namespace: ns, Annotations: podAnn}
	ctr := &api.Container{Id: "ctr-" + name, PodSandboxId: pod.Id, Name: name, Env: env, Mounts: mounts}
	adj, err := s.CreateContainer(pod, ctr)
	if err != nil {
		return nil, err
	}
	g, err := rgen.New("linux")
	require.NoError(s.t, err)
	g.Config.Process.Env = append(g.Config.Process.Env, env...)
	require.NoError(s.t, nrigen.SpecGenerator(&g).Adjust(adj))
	return g.Config, nil
}

func devicePaths(spec *rspec.Spec) []string {
	var out []string
	for _, d := range spec.Linux.Devices {
		out = append(out, d.Path)
	}
	sort.Strings(out)
	return out
}

func mountDests(spec *rspec.Spec, hostPrefix string) map[string]rspec.Mount {
	out := map[string]rspec.Mount{}
	for _, m := range spec.Mounts {
		if strings.HasPrefix(m.Source, hostPrefix) {
			out[m.Destination] = m
		}
	}
	return out
}

func envValue(spec *rspec.Spec, key string) (string, bool) {
	for i := len(spec.Process.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(spec.Process.Env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// expectedFiles lists the simulated host's driver files of caps, as the
// host built them (container path -> host path).
func expectedFiles(h *simhost.Host, caps ...inventory.Capability) map[string]string {
	out := map[string]string{}
	for _, group := range [][]simhost.File{h.Libraries, h.Binaries, h.ConfigFiles, h.Sockets} {
		for _, f := range group {
			if slices.Contains(caps, f.Capability) && !f.Lib32 {
				out[f.Path] = f.HostPath
			}
		}
	}
	for _, f := range h.Firmware {
		out[f.Path] = f.HostPath
	}
	return out
}

func TestScenarioVisibleDevices(t *testing.T) {
	s := newScenario(t, nil)
	spec, err := s.create("default", "cuda", nil, []string{"NVIDIA_VISIBLE_DEVICES=0,2", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"}, nil)
	require.NoError(t, err)

	// Exactly the requested GPUs' nodes plus the compute control nodes.
	require.Equal(t, []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidia2", "/dev/nvidiactl"}, devicePaths(spec))
	for _, d := range spec.Linux.Devices {
		n, ok := s.host.Node(strings.TrimPrefix(d.Path, "/dev/"))
		require.True(t, ok, d.Path)
		require.Equal(t, n.Major, d.Major, d.Path)
		require.Equal(t, n.Minor, d.Minor, d.Path)
		require.Equal(t, "c", d.Type)
	}
	// Explicit allow rules for exactly those nodes (containerd 2.4 applies them).
	var rules []string
	for _, r := range spec.Linux.Resources.Devices {
		if r.Allow && r.Major != nil && r.Minor != nil {
			rules = append(rules, r.Type+" "+itoa(*r.Major)+":"+itoa(*r.Minor)+" "+r.Access)
		}
	}
	for _, d := range spec.Linux.Devices {
		require.Contains(t, rules, "c "+itoa(d.Major)+":"+itoa(d.Minor)+" rw")
	}
	require.NotContains(t, rules, "c 195:1 rw", "GPU 1 was not asked for")

	// Exactly the compute and utility driver files, host paths, read-only.
	want := expectedFiles(s.host, inventory.Compute, inventory.Utility)
	got := mountDests(spec, s.host.Options.Dir)
	gotSrc := map[string]string{}
	for dst, m := range got {
		gotSrc[dst] = m.Source
		require.Subset(t, m.Options, []string{"ro", "nosuid", "nodev", "rbind", "rprivate"}, dst)
	}
	require.Equal(t, want, gotSrc)
	for _, lib := range s.host.LibrariesFor(inventory.Video) {
		require.NotContains(t, got, lib.Path, "video library without the video capability")
	}

	// One createContainer hook at the configured host path, explicit env,
	// links for every SONAME.
	require.NotNil(t, spec.Hooks)
	require.Len(t, spec.Hooks.CreateContainer, 1)
	hk := spec.Hooks.CreateContainer[0]
	require.Equal(t, "/opt/gpu-nri/bin/gpu-nri", hk.Path)
	require.Equal(t, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, hk.Env)
	o, err := hookproto.ParseArgs(hk.Args[2:])
	require.NoError(t, err)
	require.Equal(t, []string{"/usr/lib/x86_64-linux-gnu"}, o.Folders)
	require.Contains(t, o.Links, hookproto.Link{Target: "libcuda.so.1", Link: "/usr/lib/x86_64-linux-gnu/libcuda.so"})
	for _, lib := range s.host.LibrariesFor(inventory.Compute) {
		if lib.Link != "" && !lib.Lib32 {
			require.Contains(t, o.Links, hookproto.Link{Target: filepath.Base(lib.Path), Link: lib.Link})
		}
	}

	// Env rewritten so that no other layer injects again.
	v, _ := envValue(spec, "NVIDIA_VISIBLE_DEVICES")
	require.Equal(t, "void", v)
	require.Contains(t, s.logs.String(), "GPU request granted")
}

func TestScenarioCapabilitiesAndModes(t *testing.T) {
	s := newScenario(t, nil)

	// utility only: nvidia-smi and NVML, no libcuda, no uvm.
	spec, err := s.create("default", "smi", nil, []string{"NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_DRIVER_CAPABILITIES=utility"}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"/dev/nvidia1", "/dev/nvidiactl"}, devicePaths(spec))
	got := mountDests(spec, s.host.Options.Dir)
	require.Contains(t, got, "/usr/bin/nvidia-smi")
	for _, lib := range s.host.LibrariesFor(inventory.Compute) {
		require.NotContains(t, got, lib.Path)
	}

	// none: driver files and control nodes, no GPU.
	spec, err = s.create("default", "none", nil, []string{"NVIDIA_VISIBLE_DEVICES=none"}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidiactl"}, devicePaths(spec))

	// void / unset: nothing at all.
	for _, env := range [][]string{{"NVIDIA_VISIBLE_DEVICES=void"}, {"PATH=/bin"}} {
		spec, err = s.create("default", "plain", nil, env, nil)
		require.NoError(t, err)
		require.Empty(t, spec.Linux.Devices)
		require.Nil(t, spec.Hooks)
	}

	// MIG device 3:1: parent node and its two cap nodes.
	spec, err = s.create("default", "mig", nil, []string{"NVIDIA_VISIBLE_DEVICES=3:1"}, nil)
	require.NoError(t, err)
	m := s.host.GPUs[3].MIG[1]
	require.Contains(t, devicePaths(spec), "/dev/nvidia3")
	require.Contains(t, devicePaths(spec), "/dev/nvidia-caps/nvidia-cap"+itoa(int64(m.GICapMinor)))
	require.Contains(t, devicePaths(spec), "/dev/nvidia-caps/nvidia-cap"+itoa(int64(m.CICapMinor)))

	// By pod annotation (container key wins over pod key) and by UUID.
	ann := map[string]string{"gpus.gpu-nri.io/pod": "0", "gpus.gpu-nri.io/container.main": s.host.GPUs[2].UUID}
	spec, err = s.create("default", "main", ann, nil, nil)
	require.NoError(t, err)
	require.Contains(t, devicePaths(spec), "/dev/nvidia2")
	require.NotContains(t, devicePaths(spec), "/dev/nvidia0")

	// Device-plugin volume mounts.
	mounts := []*api.Mount{{Source: "/dev/null", Destination: "/var/run/nvidia-container-devices/" + s.host.GPUs[1].UUID}}
	spec, err = s.create("default", "dp", nil, []string{"NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices"}, mounts)
	require.NoError(t, err)
	require.Contains(t, devicePaths(spec), "/dev/nvidia1")
}

func TestScenarioBadInputFailsTheContainer(t *testing.T) {
	s := newScenario(t, nil)
	for _, tc := range []struct{ env, want string }{
		{"NVIDIA_VISIBLE_DEVICES=9", `default/pod-bad/bad`},
		{"NVIDIA_VISIBLE_DEVICES=9", `no such device`},
		{"NVIDIA_VISIBLE_DEVICES=GPU-zzz", `NVIDIA_VISIBLE_DEVICES`},
		{"NVIDIA_VISIBLE_DEVICES=0,none", `bad`},
		{"NVIDIA_DRIVER_CAPABILITIES=warp", `warp`},
	} {
		_, err := s.create("default", "bad", nil, []string{"NVIDIA_VISIBLE_DEVICES=0", tc.env}, nil)
		require.Error(t, err, tc.env)
		require.Contains(t, err.Error(), tc.want, tc.env)
	}
	require.Contains(t, s.logs.String(), "GPU request failed")
}

func TestScenarioStrictPolicyRefuses(t *testing.T) {
	s := newScenario(t, func(c *config.Config) { c.Policy = config.KubernetesStrictPolicy() })
	_, err := s.create("team-a", "x", nil, []string{"NVIDIA_VISIBLE_DEVICES=all"}, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "policy.sources.env")
	require.Contains(t, s.logs.String(), "GPU request refused")
	// kube-system is allow-listed for env requests.
	spec, err := s.create("kube-system", "y", nil, []string{"NVIDIA_VISIBLE_DEVICES=0"}, nil)
	require.NoError(t, err)
	require.Contains(t, devicePaths(spec), "/dev/nvidia0")
}

func TestScenarioHooklessAddsNoHook(t *testing.T) {
	s := newScenario(t, func(c *config.Config) { c.Injection.Loader = config.LoaderHookless })
	spec, err := s.create("default", "nohook", nil, []string{"NVIDIA_VISIBLE_DEVICES=0"}, nil)
	require.NoError(t, err)
	require.Nil(t, spec.Hooks)
	got := mountDests(spec, s.host.Options.Dir)
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib64"} {
		require.Contains(t, got, dir+"/libcuda.so.1")
		require.Contains(t, got, dir+"/libcuda.so")
	}
	for dst := range got {
		require.NotContains(t, dst, hookproto.HooklessDir+"/", "the auto layout mounts nothing into the fallback directory")
	}
}

func TestScenarioThirdPartyCDI(t *testing.T) {
	s := newScenario(t, nil)
	n, ok := s.host.Node("nvidia0")
	require.True(t, ok)
	spec := "cdiVersion: 0.6.0\nkind: example.com/fpga\ndevices:\n- name: f0\n  containerEdits:\n    env: [FPGA=f0]\n    deviceNodes:\n    - {path: /dev/fpga0, hostPath: " + n.Path + ", type: c, major: 240, minor: 7}\n"
	require.NoError(t, os.WriteFile(filepath.Join(s.cfg.Injection.CDISpecDirs[0], "fpga.yaml"), []byte(spec), 0o644))
	require.Eventually(t, func() bool {
		out, err := s.create("default", "fpga", map[string]string{"cdi.k8s.io/fpga": "example.com/fpga=f0"}, nil, nil)
		return err == nil && slices.Contains(devicePaths(out), "/dev/fpga0")
	}, 5*time.Second, 50*time.Millisecond)
	_, err := s.create("default", "nofpga", map[string]string{"cdi.k8s.io/fpga": "example.com/fpga=f9"}, nil, nil)
	require.ErrorContains(t, err, "example.com/fpga=f9")
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// A driver upgrade under a running daemon: the background poll sees the new
// driver and the next container gets the new libraries, never stale mounts.
func TestScenarioDriverUpgradeIsPickedUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "host")
	h, err := simhost.Build(simhost.Options{Dir: dir, GPUs: 2})
	require.NoError(t, err)
	d := nritest.Start(t, h, func(c *config.Config) { c.Host.RefreshInterval = config.Duration(50 * time.Millisecond) })
	libcuda := func() string {
		pod := &api.PodSandbox{Id: "p", Name: "p", Namespace: "default"}
		ctr := &api.Container{Id: "c", PodSandboxId: "p", Name: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=0"}}
		adj, err := d.CreateContainer(pod, ctr)
		if err != nil {
			// While the driver files are being replaced the request fails
			// (never a GPU-less container); the next poll recovers.
			return err.Error()
		}
		for _, m := range adj.GetMounts() {
			if strings.Contains(m.Destination, "libcuda.so.") {
				return m.Source
			}
		}
		return ""
	}
	require.Contains(t, libcuda(), "libcuda.so."+h.DriverVersion)

	h2, err := simhost.Build(simhost.Options{Dir: dir, GPUs: 2, DriverVersion: "570.86.15"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.HasSuffix(libcuda(), "libcuda.so."+h2.DriverVersion) },
		10*time.Second, 50*time.Millisecond, "the daemon kept the old driver's libraries")
	require.Eventually(t, func() bool { return strings.Contains(d.Logs.String(), "host inventory changed") }, 5*time.Second, 20*time.Millisecond)
}

// Pre-registered mode: the runtime passes the configuration file's text
// through Configure; the plugin swaps to it (and rejects a bad one).
func TestConfigureFromRuntime(t *testing.T) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 2})
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Host = h.Config
	p, err := plugin.New(plugin.Options{Config: cfg, HostOptions: nritest.HostOptions(h)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx) //nolint:errcheck // no runtime here: Run only retries connecting until ctx ends

	text := fmt.Sprintf("host:\n  driverRoot: %s\n  devRoot: %s\n  procRoot: %s\ninjection:\n  loader: hookless\n",
		h.Config.DriverRoot, h.Config.DevRoot, h.Config.ProcRoot)
	_, err = p.Configure(ctx, text, "containerd", "v2.4.2")
	require.NoError(t, err)
	adj, _, err := p.CreateContainer(ctx, &api.PodSandbox{Name: "p", Namespace: "n"},
		&api.Container{Name: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=1"}})
	require.NoError(t, err)
	require.Nil(t, adj.GetHooks(), "the runtime's config (hookless) is in force")
	require.NotEmpty(t, adj.GetLinux().GetResources().GetDevices(), "containerd 2.4 applies device-cgroup rules")

	_, err = p.Configure(ctx, "injection:\n  loader: sometimes\n", "containerd", "v2.4.2")
	require.ErrorContains(t, err, "injection.loader")
}

// A GPU that appeared after the last discovery (no background polling
// here): the request naming it makes the daemon rediscover (at most once
// per hostsrc.MinRediscoverInterval) and then succeed; until then it fails
// with the unknown-device error, never without GPUs.
func TestScenarioUnknownDeviceRediscovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "host")
	// The node table of the 4-GPU host (the same paths) serves both states
	// of the tree; the tree starts with 2 GPUs.
	four, err := simhost.Build(simhost.Options{Dir: dir, GPUs: 4})
	require.NoError(t, err)
	_, err = simhost.Build(simhost.Options{Dir: dir, GPUs: 2})
	require.NoError(t, err)
	d := nritest.Start(t, four, nil)
	create := func() (*api.ContainerAdjustment, error) {
		pod := &api.PodSandbox{Id: "p", Name: "p", Namespace: "default"}
		ctr := &api.Container{Id: "c", PodSandboxId: "p", Name: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=3"}}
		return d.CreateContainer(pod, ctr)
	}
	_, err = create()
	require.ErrorContains(t, err, `gpu-nri: container default/p/c: env NVIDIA_VISIBLE_DEVICES "3": no such device on this host (the host has 2 GPU(s): indexes 0-1)`)

	_, err = simhost.Build(simhost.Options{Dir: dir, GPUs: 4})
	require.NoError(t, err)
	var adj *api.ContainerAdjustment
	require.Eventually(t, func() bool {
		adj, err = create()
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "the daemon never rediscovered")
	var paths []string
	for _, dev := range adj.GetLinux().GetDevices() {
		paths = append(paths, dev.Path)
	}
	require.Contains(t, paths, "/dev/nvidia3")
	require.Equal(t, 4, len(d.Plugin.Inventory().GPUs))
}

// TestScenarioVanishedFileKicksTheWatcher: a container the runtime removes
// without it ever starting, whose error names a driver file of the current
// inventory as missing (runc's mount error after a driver upgrade), makes
// the daemon ask its watcher to rediscover; any other removal does not.
func TestScenarioVanishedFileKicksTheWatcher(t *testing.T) {
	s := newScenario(t, nil)
	lib := s.Plugin.Inventory().Libraries[inventory.Compute][0].HostPath
	mountErr := `failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "` +
		lib + `" to rootfs at "/usr/lib/x86_64-linux-gnu/libcuda.so.1": no such file or directory: unknown`
	pod := &api.PodSandbox{Id: "pod-v", Name: "pod-v", Uid: "uid-v", Namespace: "ml"}
	for _, tc := range []struct {
		name      string
		startedAt int64
		msg       string
		kicked    bool
	}{
		{"never started, library vanished", 0, mountErr, true},
		{"started and exited", time.Now().UnixNano(), mountErr, false},
		{"never started, another error", 0, "exec: \"python\": executable file not found in $PATH", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.logs.Reset()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ctr := &api.Container{Id: "ctr-v", PodSandboxId: pod.Id, Name: "v", StartedAt: tc.startedAt, StatusMessage: tc.msg}
			require.NoError(t, s.Runtime.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: ctr}))
			// RemoveContainer is a synchronous request through the runtime: its log line is written when it returns.
			lines, err := s.logs.Lines()
			require.NoError(t, err)
			var kicks []map[string]any
			for _, l := range lines {
				if l["msg"] == "a container failed to start because a driver file vanished; rediscovering the host" {
					kicks = append(kicks, l)
				}
			}
			if !tc.kicked {
				require.Empty(t, kicks)
				return
			}
			require.Len(t, kicks, 1, "%v", lines)
			require.Equal(t, lib, kicks[0]["file"])
			require.Equal(t, "v", kicks[0]["container"])
			require.Equal(t, "warning", kicks[0]["level"])
		})
	}
}
