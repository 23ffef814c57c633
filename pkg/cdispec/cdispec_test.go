package cdispec_test

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/cdispec"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

func host(t *testing.T, o simhost.Options) (*simhost.Host, *inventory.Inventory) {
	t.Helper()
	o.Dir = t.TempDir()
	h, err := simhost.Build(o)
	require.NoError(t, err)
	inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	return h, inv
}

func options(caps ...inventory.Capability) cdispec.Options {
	return cdispec.Options{Capabilities: caps}
}

// newEngine is the engine of the default configuration with the hook at
// /opt/gpu-nri/bin/gpu-nri, changed by mutate.
func newEngine(t *testing.T, mutate func(*config.Config)) *engine.Engine {
	t.Helper()
	cfg := config.Default()
	cfg.Injection.HookPath = "/opt/gpu-nri/bin/gpu-nri"
	if mutate != nil {
		mutate(cfg)
	}
	eng, err := engine.New(cfg)
	require.NoError(t, err)
	return eng
}

func nodePaths(e specs.ContainerEdits) []string {
	var out []string
	for _, n := range e.DeviceNodes {
		out = append(out, n.Path)
	}
	sort.Strings(out)
	return out
}

func device(t *testing.T, s *specs.Spec, name string) specs.Device {
	t.Helper()
	for _, d := range s.Devices {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no device %q in spec", name)
	return specs.Device{}
}

// merged is what a CDI consumer applies for one device: the spec's edits
// plus the device's.
func merged(s *specs.Spec, d specs.Device) *specs.ContainerEdits {
	e := &cdiapi.ContainerEdits{ContainerEdits: &specs.ContainerEdits{}}
	e.Append(&cdiapi.ContainerEdits{ContainerEdits: &s.ContainerEdits})
	e.Append(&cdiapi.ContainerEdits{ContainerEdits: &d.ContainerEdits})
	return e.ContainerEdits
}

func TestGenerateSimhost(t *testing.T) {
	h, inv := host(t, simhost.Options{GPUs: 4, MIG: map[int]int{3: 2}})
	o := options(inventory.Compute, inventory.Utility)
	s, warnings, err := cdispec.Generate(newEngine(t, nil), inv, o)
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.Equal(t, "nvidia.com/gpu", s.Kind)
	require.Equal(t, []string{"nvidia.com/gpu=0", "nvidia.com/gpu=1", "nvidia.com/gpu=2",
		"nvidia.com/gpu=3:0", "nvidia.com/gpu=3:1", "nvidia.com/gpu=all"}, cdispec.QualifiedNames(s))

	// Shared: control nodes, every compute+utility file, the hook, the env.
	require.Equal(t, []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidiactl"}, nodePaths(s.ContainerEdits))
	var mounts []string
	for _, m := range s.ContainerEdits.Mounts {
		mounts = append(mounts, m.ContainerPath)
		require.Equal(t, "bind", m.Type)
		require.Contains(t, m.Options, "ro")
	}
	for _, group := range [][]simhost.File{h.Libraries, h.Binaries, h.Firmware} {
		for _, f := range group {
			if (f.Capability == inventory.Compute || f.Capability == inventory.Utility || f.Capability == "") && !f.Lib32 {
				require.Contains(t, mounts, f.Path)
			}
		}
	}
	for _, f := range h.LibrariesFor(inventory.Video) {
		require.NotContains(t, mounts, f.Path, "video library without the video capability")
	}
	require.Len(t, s.ContainerEdits.Hooks, 1)
	require.Equal(t, "/opt/gpu-nri/bin/gpu-nri", s.ContainerEdits.Hooks[0].Path)
	require.Equal(t, "createContainer", s.ContainerEdits.Hooks[0].HookName)
	require.Equal(t, []string{"NVIDIA_VISIBLE_DEVICES=void"}, s.ContainerEdits.Env)

	// Per device: only what identifies it, with the host's numbers.
	d0 := device(t, s, "0")
	require.Equal(t, []string{"/dev/nvidia0"}, nodePaths(d0.ContainerEdits))
	n, ok := h.Node("nvidia0")
	require.True(t, ok)
	require.Equal(t, n.Major, d0.ContainerEdits.DeviceNodes[0].Major)
	require.Equal(t, n.Minor, d0.ContainerEdits.DeviceNodes[0].Minor)
	require.Empty(t, d0.ContainerEdits.Mounts)
	require.Empty(t, d0.ContainerEdits.Hooks)

	mig := device(t, s, "3:1")
	require.ElementsMatch(t, []string{"/dev/nvidia-caps/nvidia-cap" + itoa(h.GPUs[3].MIG[1].CICapMinor),
		"/dev/nvidia-caps/nvidia-cap" + itoa(h.GPUs[3].MIG[1].GICapMinor), "/dev/nvidia3"}, nodePaths(mig.ContainerEdits))
	require.ElementsMatch(t, []string{"/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia3",
		"/dev/nvidia-caps/nvidia-cap" + itoa(h.GPUs[3].MIG[0].GICapMinor), "/dev/nvidia-caps/nvidia-cap" + itoa(h.GPUs[3].MIG[0].CICapMinor),
		"/dev/nvidia-caps/nvidia-cap" + itoa(h.GPUs[3].MIG[1].GICapMinor), "/dev/nvidia-caps/nvidia-cap" + itoa(h.GPUs[3].MIG[1].CICapMinor)},
		nil2empty(nodePathsUnsorted(device(t, s, "all").ContainerEdits)))

	// What a CDI consumer applies for one device (spec edits + device
	// edits), written out from the simulated host's own file table: the
	// device's nodes and the control nodes, every compute and utility file
	// (no 32-bit ones) and the firmware, the hook, the env.
	files := map[string]string{}
	for _, group := range [][]simhost.File{h.Libraries, h.Binaries, h.ConfigFiles, h.Sockets, h.Firmware} {
		for _, f := range group {
			if (f.Capability == inventory.Compute || f.Capability == inventory.Utility || f.Capability == "") && !f.Lib32 {
				files[f.Path] = f.HostPath
			}
		}
	}
	for _, tc := range []struct {
		name  string
		nodes []string
	}{
		{"0", []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidiactl"}},
		{"2", []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia2", "/dev/nvidiactl"}},
		{"3:0", []string{"/dev/nvidia-caps/nvidia-cap" + itoa(h.GPUs[3].MIG[0].CICapMinor), "/dev/nvidia-caps/nvidia-cap" + itoa(h.GPUs[3].MIG[0].GICapMinor),
			"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia3", "/dev/nvidiactl"}},
	} {
		got := merged(s, device(t, s, tc.name))
		require.ElementsMatch(t, tc.nodes, nodePaths(*got), tc.name)
		mounts := map[string]string{}
		for _, m := range got.Mounts {
			mounts[m.ContainerPath] = m.HostPath
		}
		require.Equal(t, files, mounts, tc.name)
		require.Equal(t, []string{"NVIDIA_VISIBLE_DEVICES=void"}, got.Env, tc.name)
		require.Len(t, got.Hooks, 1, tc.name)
		require.Equal(t, "/opt/gpu-nri/bin/gpu-nri", got.Hooks[0].Path, tc.name)
	}
}

// A GPU without a usable node is left out, with the decision's reason.
func TestGenerateLeavesOutGPUWithoutNode(t *testing.T) {
	h, inv := host(t, simhost.Options{GPUs: 3})
	inv.GPUs[1].Node.HostPath = ""
	s, warnings, err := cdispec.Generate(newEngine(t, nil), inv, options(inventory.Utility))
	require.NoError(t, err)
	require.Equal(t, []string{"nvidia.com/gpu=0", "nvidia.com/gpu=2", "nvidia.com/gpu=all"}, cdispec.QualifiedNames(s))
	require.Equal(t, []string{"device 1 left out: GPU 1 (" + h.GPUs[1].UUID + ") has no usable device node on this host"}, warnings)
	require.ElementsMatch(t, []string{"/dev/nvidia0", "/dev/nvidia2"}, nodePaths(device(t, s, "all").ContainerEdits))
}

func TestGenerateStrategiesAndKind(t *testing.T) {
	h, inv := host(t, simhost.Options{GPUs: 2})
	o := options(inventory.Utility)
	o.NameStrategy = cdispec.NameUUID
	o.Kind = "example.com/accel"
	s, _, err := cdispec.Generate(newEngine(t, nil), inv, o)
	require.NoError(t, err)
	require.Equal(t, []string{"example.com/accel=" + h.GPUs[0].UUID, "example.com/accel=" + h.GPUs[1].UUID, "example.com/accel=all"}, cdispec.QualifiedNames(s))

	o.NameStrategy = cdispec.NameBoth
	s, _, err = cdispec.Generate(newEngine(t, nil), inv, o)
	require.NoError(t, err)
	require.Equal(t, []string{"example.com/accel=0", "example.com/accel=" + h.GPUs[0].UUID, "example.com/accel=1",
		"example.com/accel=" + h.GPUs[1].UUID, "example.com/accel=all"}, cdispec.QualifiedNames(s))
	// utility only: no uvm, no compute library, still the hook.
	require.Equal(t, []string{"/dev/nvidiactl"}, nodePaths(s.ContainerEdits))
	for _, m := range s.ContainerEdits.Mounts {
		for _, f := range h.LibrariesFor(inventory.Compute) {
			require.NotEqual(t, f.Path, m.ContainerPath)
		}
	}

	for _, bad := range []cdispec.Options{{Kind: "nvidia.com"}, {Kind: "nvidia.com/g=pu"}, {NameStrategy: "type-index"}} {
		_, _, err := cdispec.Generate(newEngine(t, nil), inv, bad)
		require.Error(t, err)
	}
	_, _, err = cdispec.Generate(newEngine(t, nil), nil, o)
	require.ErrorContains(t, err, "no inventory")
}

func TestGenerateMIGWithoutUUIDs(t *testing.T) {
	_, inv := host(t, simhost.Options{GPUs: 1, MIG: map[int]int{0: 1}})
	o := options(inventory.Utility)
	o.NameStrategy = cdispec.NameUUID
	inv.GPUs[0].MIG[0].UUID = "" // as without NVML
	s, warnings, err := cdispec.Generate(newEngine(t, nil), inv, o)
	require.NoError(t, err)
	require.Equal(t, []string{"nvidia.com/gpu=0:0", "nvidia.com/gpu=all"}, cdispec.QualifiedNames(s))
	require.Len(t, warnings, 1)
	require.Contains(t, warnings[0], "no UUID")

	const uuid = "MIG-aaaaaaaa-1111-2222-3333-444444444444"
	inv.GPUs[0].MIG[0].UUID = uuid // as NVML reports it
	s, warnings, err = cdispec.Generate(newEngine(t, nil), inv, o)
	require.NoError(t, err)
	require.Equal(t, []string{"nvidia.com/gpu=" + uuid, "nvidia.com/gpu=all"}, cdispec.QualifiedNames(s))
	require.Empty(t, warnings)
}

func TestWriteValidatesAndIsAtomic(t *testing.T) {
	_, inv := host(t, simhost.Options{GPUs: 2})
	s, _, err := cdispec.Generate(newEngine(t, nil), inv, options(inventory.Compute, inventory.Utility))
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "cdi")

	for _, format := range []string{cdispec.FormatYAML, cdispec.FormatJSON} {
		path, err := cdispec.Write(s, dir, format)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(dir, "nvidia.com-gpu."+format), path)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
		// Read back by the CDI library as a runtime would.
		parsed, err := cdiapi.ReadSpec(path, 0)
		require.NoError(t, err)
		require.Equal(t, "nvidia.com/gpu", parsed.Kind)
		require.NoError(t, os.Remove(path))
	}

	// A cache over the directory sees exactly the generated devices.
	_, err = cdispec.Write(s, dir, cdispec.FormatYAML)
	require.NoError(t, err)
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(dir), cdiapi.WithAutoRefresh(false))
	require.NoError(t, err)
	require.Empty(t, cache.GetErrors())
	require.Equal(t, sortedStrings(cdispec.QualifiedNames(s)), sortedStrings(cache.ListDevices()))

	// An invalid spec is refused and leaves the existing file untouched.
	before, err := os.ReadFile(filepath.Join(dir, "nvidia.com-gpu.yaml"))
	require.NoError(t, err)
	bad := *s
	bad.Devices = append(slices.Clone(s.Devices), specs.Device{Name: "empty"})
	_, err = cdispec.Write(&bad, dir, cdispec.FormatYAML)
	require.ErrorContains(t, err, "invalid")
	after, err := os.ReadFile(filepath.Join(dir, "nvidia.com-gpu.yaml"))
	require.NoError(t, err)
	require.Equal(t, before, after)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	// Validate (stdout path) agrees.
	data, err := cdispec.Marshal(s, cdispec.FormatJSON)
	require.NoError(t, err)
	require.NoError(t, cdispec.Validate(data, cdispec.FormatJSON, ""))
	data, err = cdispec.Marshal(&bad, cdispec.FormatYAML)
	require.NoError(t, err)
	require.Error(t, cdispec.Validate(data, cdispec.FormatYAML, ""))
	_, err = cdispec.Marshal(s, "toml")
	require.Error(t, err)
}

func TestGenerateNoGPUs(t *testing.T) {
	_, inv := host(t, simhost.Options{GPUs: -1})
	_, _, err := cdispec.Generate(newEngine(t, nil), inv, options(inventory.Utility))
	require.ErrorContains(t, err, "no usable GPU")
}

func itoa(i int) string { return strconvItoa(i) }

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func nodePathsUnsorted(e specs.ContainerEdits) []string {
	var out []string
	for _, n := range e.DeviceNodes {
		out = append(out, n.Path)
	}
	return out
}

func nil2empty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func strconvItoa(i int) string { return strconv.Itoa(i) }

// The hookless fallback layout needs LD_LIBRARY_PATH in a CDI spec too (the
// same engine decision as the daemon; no image value is known here).
func TestGenerateHooklessFallbackSetsLibraryPath(t *testing.T) {
	_, inv := host(t, simhost.Options{GPUs: 1})
	o := options(inventory.Compute, inventory.Utility)
	eng := newEngine(t, func(c *config.Config) {
		c.Injection.Loader = config.LoaderHookless
		c.Injection.HooklessLayout = hookproto.LayoutFallback
	})
	s, _, err := cdispec.Generate(eng, inv, o)
	require.NoError(t, err)
	require.Contains(t, merged(s, device(t, s, "0")).Env, "LD_LIBRARY_PATH="+hookproto.HooklessDir)
	require.Empty(t, merged(s, device(t, s, "0")).Hooks)
}
