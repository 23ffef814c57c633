package edits_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/edits"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// withSubdirLib adds a video library in a subdirectory (as libvdpau_nvidia
// in vdpau/) and a 32-bit copy of libcuda: neither may go into the directory.
func withSubdirLib(t *testing.T) *inventory.Inventory {
	t.Helper()
	i := inv(t)
	i.Libraries[inventory.Video] = []inventory.File{{HostPath: "/drv/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.550.54.14",
		Path: "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.550.54.14", SONAME: "libvdpau_nvidia.so.1", Capability: inventory.Video}}
	// Debian's packaged driver: found by SONAME (ld.so.conf.d, alternatives), so in the directory.
	i.Libraries[inventory.Utility] = append(i.Libraries[inventory.Utility], inventory.File{HostPath: "/drv/usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-cfg.so.550.54.14",
		Path: "/usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-cfg.so.550.54.14", SONAME: "libnvidia-cfg.so.1", Capability: inventory.Utility})
	i.Libraries[inventory.Compat32] = []inventory.File{{HostPath: "/drv/usr/lib/i386-linux-gnu/libcuda.so.550.54.14",
		Path: "/usr/lib/i386-linux-gnu/libcuda.so.550.54.14", SONAME: "libcuda.so.1", Capability: inventory.Compat32, Lib32: true, BaseCapability: inventory.Compute}}
	return i
}

func TestPlanDir(t *testing.T) {
	i := withSubdirLib(t)
	caps := []inventory.Capability{inventory.Utility, inventory.Compute, inventory.Video, inventory.Compat32}
	p := edits.PlanDir(i, caps)
	var names []string
	for _, f := range p.Files {
		names = append(names, f.Name)
	}
	require.Equal(t, []string{"libcuda.so.550.54.14", "libnvidia-ml.so.550.54.14", "libnvidia-cfg.so.550.54.14"}, names,
		"compute then utility; nothing opened by path (vdpau/), no 32-bit library")
	require.Equal(t, "/drv/usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-cfg.so.550.54.14", p.Files[2].HostPath)
	require.Equal(t, []hookproto.Link{
		{Target: "libcuda.so.550.54.14", Link: "libcuda.so.1"},
		{Target: "libcuda.so.1", Link: "libcuda.so"},
		{Target: "libnvidia-ml.so.550.54.14", Link: "libnvidia-ml.so.1"},
		{Target: "libnvidia-cfg.so.550.54.14", Link: "libnvidia-cfg.so.1"},
	}, p.Links)
	require.Regexp(t, `^compat32\.compute\.utility\.video-[0-9a-f]{16}$`, p.Name)
	require.Equal(t, p, edits.PlanDir(i, []inventory.Capability{inventory.Compat32, inventory.Video, inventory.Compute, inventory.Utility}), "order of caps does not matter")

	other := edits.PlanDir(i, []inventory.Capability{inventory.Compute})
	require.NotEqual(t, p.Name, other.Name)
	i.Libraries[inventory.Compute][0].HostPath = "/drv/usr/lib/x86_64-linux-gnu/libcuda.so.560.1"
	require.NotEqual(t, other.Name, edits.PlanDir(i, []inventory.Capability{inventory.Compute}).Name, "another file: another name")
	require.Empty(t, edits.PlanDir(i, []inventory.Capability{inventory.Display}).Name, "no library: no plan")
}

func TestBuildLibraryDir(t *testing.T) {
	i := withSubdirLib(t)
	caps := []inventory.Capability{inventory.Compute, inventory.Utility, inventory.Video}
	sel := edits.Selection{GPUs: []*inventory.GPU{&i.GPUs[0]}, Capabilities: caps, ImageLibraryPath: "/opt/lib",
		LibraryDir: &edits.BuiltDir{HostPath: "/run/gpu-nri/lib/x", Plan: edits.PlanDir(i, caps)}}
	mountsOf := func(o edits.Options) (map[string]string, []string, *hookproto.Options) {
		e := edits.Build(i, sel, o)
		m := map[string]string{}
		for _, x := range e.Mounts {
			m[x.ContainerPath] = x.HostPath
		}
		var ho *hookproto.Options
		if len(e.Hooks) == 1 {
			parsed, err := hookproto.ParseArgs(e.Hooks[0].Args[2:])
			require.NoError(t, err)
			ho = &parsed
		}
		return m, e.Env, ho
	}

	m, env, ho := mountsOf(opts())
	require.Equal(t, "/run/gpu-nri/lib/x", m["/usr/local/nvidia/lib64"])
	require.NotContains(t, m, "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", "in the directory, not mounted alone")
	require.NotContains(t, m, "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.14")
	require.Contains(t, m, "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.550.54.14", "a subdirectory's library keeps its mount")
	require.Contains(t, m, "/usr/bin/nvidia-smi")
	require.Equal(t, []string{"NVIDIA_VISIBLE_DEVICES=void"}, env, "hook mode: the cache, not the environment")
	require.NotNil(t, ho)
	require.Equal(t, []string{"/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu/vdpau"}, ho.Folders)
	require.Equal(t, []hookproto.Link{{Target: "libvdpau_nvidia.so.550.54.14", Link: "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.1"}},
		ho.Links, "the directory has its own links (and is read-only)")
	var cached []string
	for _, s := range ho.Sonames {
		cached = append(cached, s.Path)
	}
	require.Contains(t, cached, "/usr/local/nvidia/lib64/libcuda.so.1")
	require.Contains(t, cached, "/usr/local/nvidia/lib64/libnvidia-ml.so.1")
	require.NotContains(t, cached, "/usr/lib/x86_64-linux-gnu/libcuda.so.1")

	hl := opts()
	hl.Loader = config.LoaderHookless
	m, env, ho = mountsOf(hl)
	require.Nil(t, ho)
	require.Equal(t, "/run/gpu-nri/lib/x", m["/usr/local/nvidia/lib64"])
	require.NotContains(t, m, "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "no SONAME copy of a library in the directory")
	require.Contains(t, m, "/usr/lib/x86_64-linux-gnu/libvdpau_nvidia.so.1", "the layout's SONAME copy of the one outside it")
	require.Equal(t, []string{"NVIDIA_VISIBLE_DEVICES=void", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/opt/lib"}, env)

	hl.HooklessLayout = hookproto.LayoutFallback
	m, _, _ = mountsOf(hl)
	for p := range m {
		require.NotRegexp(t, `^/usr/local/nvidia/lib64/`, p, "nothing mounted inside the read-only directory")
	}

	sel.LibraryDir = nil
	m, _, _ = mountsOf(opts())
	require.NotContains(t, m, "/usr/local/nvidia/lib64")
	require.Contains(t, m, "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", "no directory: per-file mounts")
}
