package plugin_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rgen "github.com/opencontainers/runtime-tools/generate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/cdispec"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
)

// createAfterCDI does what containerd 2.4 does for a container with CRI
// CDIDevices: resolve the names against the CDI spec dirs into the OCI spec
// (before NRI), show the plugin that container (mounts, hooks, devices and
// CDI devices as NRI sees them), then apply the merged adjustment to the
// same spec. It returns the final spec.
func (s *scenario) createAfterCDI(name string, cdiDirs []string, names []string, env []string) (*rspec.Spec, error) {
	s.t.Helper()
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(cdiDirs...), cdiapi.WithAutoRefresh(false))
	require.NoError(s.t, err)
	require.Empty(s.t, cache.GetErrors())
	g, err := rgen.New("linux")
	require.NoError(s.t, err)
	g.Config.Process.Env = append(g.Config.Process.Env, env...)
	_, err = cache.InjectDevices(g.Config, names...)
	require.NoError(s.t, err, "the runtime resolves the CDI names before NRI")

	pod := &api.PodSandbox{Id: "pod-" + name, Name: "pod-" + name, Uid: "uid-" + name, Namespace: "default"}
	ctr := &api.Container{
		Id: "ctr-" + name, PodSandboxId: pod.Id, Name: name,
		Env:    append([]string(nil), g.Config.Process.Env...),
		Mounts: api.FromOCIMounts(g.Config.Mounts),
		Hooks:  api.FromOCIHooks(g.Config.Hooks),
		Linux:  &api.LinuxContainer{Devices: api.FromOCILinuxDevices(g.Config.Linux.Devices)},
	}
	for _, n := range names {
		ctr.CDIDevices = append(ctr.CDIDevices, &api.CDIDevice{Name: n})
	}
	adj, err := s.CreateContainer(pod, ctr)
	if err != nil {
		return nil, err
	}
	require.NoError(s.t, nrigen.SpecGenerator(&g).Adjust(adj))
	return g.Config, nil
}

// requireOnce fails unless every device node, mount and hook of spec is
// there exactly once and no device-cgroup allow rule more than rules times.
// A node gpu-nri adds has two identical rules, the runtime's own for an NRI
// device and gpu-nri's explicit one (injection.deviceCgroupRules, applied
// since containerd 2.2): rules is 2 where gpu-nri adds nodes, 1 where the
// runtime's CDI injection did.
func requireOnce(t *testing.T, spec *rspec.Spec, rules int) {
	t.Helper()
	count := map[string]int{}
	for _, d := range spec.Linux.Devices {
		count["device "+d.Path]++
	}
	if spec.Linux.Resources != nil {
		for _, r := range spec.Linux.Resources.Devices {
			if r.Major != nil && r.Minor != nil {
				count["cgroup rule "+r.Type+" "+itoa(*r.Major)+":"+itoa(*r.Minor)+" "+r.Access]++
			}
		}
	}
	for _, m := range spec.Mounts {
		count["mount "+m.Destination]++
	}
	if spec.Hooks != nil {
		for stage, hooks := range map[string][]rspec.Hook{
			"createRuntime": spec.Hooks.CreateRuntime, "createContainer": spec.Hooks.CreateContainer,
			"startContainer": spec.Hooks.StartContainer, "poststart": spec.Hooks.Poststart,
		} {
			for _, h := range hooks {
				key := "hook " + stage + " " + h.Path
				for _, a := range h.Args {
					key += " " + a
				}
				count[key]++
			}
		}
	}
	for what, n := range count {
		if strings.HasPrefix(what, "cgroup rule ") {
			require.LessOrEqual(t, n, rules, "%s is in the final spec %d times", what, n)
			continue
		}
		require.Equal(t, 1, n, "%s is in the final spec %d times", what, n)
	}
}

// writeOwnSpec writes a default `gpu-nri cdi generate` spec (compute,
// utility) for s's host into dir, as a user would into /var/run/cdi.
func writeOwnSpec(t *testing.T, s *scenario, dir string) {
	t.Helper()
	eng, err := engine.New(s.cfg)
	require.NoError(t, err)
	gen, _, err := cdispec.Generate(eng, s.Plugin.Inventory(), cdispec.Options{Capabilities: []config.Capability{config.CapabilityCompute, config.CapabilityUtility}})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	_, err = cdispec.Write(gen, dir, cdispec.FormatYAML)
	require.NoError(t, err)
}

// CRI CDIDevices resolved by containerd before NRI, for a third-party kind
// (example.com/fpga=f0: a device node, a mount, a createContainer hook, in
// a spec dir both containerd and gpu-nri read, so gpu-nri merges it again),
// gpu-nri's own kind (a default `gpu-nri cdi generate` spec in the
// runtime's dir: containerd injects nvidia.com/gpu=0 and gpu-nri decides
// the same GPU), and both. Every device node, cgroup rule, mount and hook
// ends up in the container exactly once. Before nriadjust knew what the
// container had, each of these gave two copies of the hooks (and of the
// third-party device's cgroup rule).
func TestScenarioCDIInjectedOnce(t *testing.T) {
	tests := []struct {
		name    string
		names   []string
		devices []string
		hooks   []string
	}{
		{
			name:    "third-party kind",
			names:   []string{"example.com/fpga=f0"},
			devices: []string{"/dev/fpga0"},
			hooks:   []string{"/opt/fpga/bin/fpga-hook"},
		},
		{
			name:    "gpu-nri's kind",
			names:   []string{cdispec.DefaultKind + "=0"},
			devices: []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidiactl"},
			hooks:   []string{"/opt/gpu-nri/bin/gpu-nri"},
		},
		{
			name:    "both",
			names:   []string{"example.com/fpga=f0", cdispec.DefaultKind + "=0"},
			devices: []string{"/dev/fpga0", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidiactl"},
			hooks:   []string{"/opt/fpga/bin/fpga-hook", "/opt/gpu-nri/bin/gpu-nri"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScenario(t, nil)
			n, ok := s.host.Node("nvidia1")
			require.True(t, ok)
			lib := s.host.Libraries[0].HostPath
			spec := "cdiVersion: 0.6.0\nkind: example.com/fpga\ndevices:\n- name: f0\n  containerEdits:\n    env: [FPGA=f0]\n" +
				"    deviceNodes:\n    - {path: /dev/fpga0, hostPath: " + n.Path + ", type: c, major: 240, minor: 7}\n" +
				"    mounts:\n    - {hostPath: " + lib + ", containerPath: /opt/fpga/lib.so, options: [ro, rbind]}\n" +
				"    hooks:\n    - {hookName: createContainer, path: /opt/fpga/bin/fpga-hook, args: [fpga-hook, setup]}\n"
			shared := s.cfg.Injection.CDISpecDirs[0]
			require.NoError(t, os.WriteFile(filepath.Join(shared, "fpga.yaml"), []byte(spec), 0o644))
			own := filepath.Join(t.TempDir(), "run-cdi") // the runtime's dir only
			writeOwnSpec(t, s, own)

			var out *rspec.Spec
			require.EventuallyWithT(t, func(c *assert.CollectT) { // gpu-nri's CDI cache sees the new spec
				var err error
				out, err = s.createAfterCDI("cdi", []string{own, shared}, tc.names, nil)
				assert.NoError(c, err)
			}, 5*time.Second, 50*time.Millisecond)
			requireOnce(t, out, 1)
			require.Equal(t, tc.devices, devicePaths(out))
			require.NotNil(t, out.Hooks)
			var hooks []string
			for _, h := range out.Hooks.CreateContainer {
				hooks = append(hooks, h.Path)
			}
			sort.Strings(hooks)
			require.Equal(t, tc.hooks, hooks)
		})
	}
}

// injection.cdiOwnSpecDir: the daemon keeps a names-only spec for its kind
// in the runtime's CDI dir, so containerd accepts nvidia.com/gpu=<index or
// UUID> from CRI CDIDevices without injecting anything, and gpu-nri's
// answer is the only injection: its capabilities apply (utility only: no
// CUDA library, which a full spec in that dir would have injected), each
// node, mount and hook once.
func TestScenarioCDIOwnSpecDir(t *testing.T) {
	own := filepath.Join(t.TempDir(), "run-cdi")
	s := newScenario(t, func(c *config.Config) { c.Injection.CDIOwnSpecDir = own })
	path := filepath.Join(own, "nvidia.com-gpu.yaml")
	require.Eventually(t, func() bool { _, err := os.Stat(path); return err == nil }, 5*time.Second, 20*time.Millisecond,
		"the daemon never wrote its own CDI spec")
	uuid := s.Plugin.Inventory().GPUs[1].UUID
	require.NotEmpty(t, uuid)

	tests := []struct {
		name    string
		cdi     string
		env     []string
		devices []string
		cuda    bool
	}{
		{"index, default capabilities", "nvidia.com/gpu=0", nil,
			[]string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidiactl"}, true},
		{"UUID, utility only", "nvidia.com/gpu=" + uuid, []string{"NVIDIA_DRIVER_CAPABILITIES=utility"},
			[]string{"/dev/nvidia1", "/dev/nvidiactl"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := s.createAfterCDI("own", []string{own}, []string{tc.cdi}, tc.env)
			require.NoError(t, err)
			requireOnce(t, out, 2)
			require.Equal(t, tc.devices, devicePaths(out))
			v, ok := envValue(out, cdispec.MarkerEnv)
			require.True(t, ok)
			require.Equal(t, tc.cdi, v)
			cuda := false
			for dest := range mountDests(out, s.host.Options.Dir) {
				cuda = cuda || strings.Contains(dest, "libcuda.so")
			}
			require.Equal(t, tc.cuda, cuda, "libcuda mounted")
			require.NotNil(t, out.Hooks)
			require.Len(t, out.Hooks.CreateContainer, 1)
		})
	}
}
