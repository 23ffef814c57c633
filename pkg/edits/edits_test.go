package edits_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/edits"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// inv is a hand-built inventory: the edits must follow it exactly.
func inv(t *testing.T) *inventory.Inventory {
	t.Helper()
	node := func(name string, major, minor int64, mode os.FileMode, gid uint32) inventory.DeviceNode {
		return inventory.DeviceNode{Path: "/dev/" + name, HostPath: "/host/dev/" + name, Type: "c", Major: major, Minor: minor, FileMode: mode, GID: gid}
	}
	ctl, uvm, uvmt, modeset := node("nvidiactl", 195, 255, 0o666, 0), node("nvidia-uvm", 511, 0, 0o666, 0), node("nvidia-uvm-tools", 511, 1, 0o666, 0), node("nvidia-modeset", 195, 254, 0o660, 44)
	lib := func(c inventory.Capability, name, soname string) inventory.File {
		return inventory.File{HostPath: "/drv/usr/lib/x86_64-linux-gnu/" + name, Path: "/usr/lib/x86_64-linux-gnu/" + name, SONAME: soname, Capability: c}
	}
	i, err := inventory.New(&inventory.Inventory{
		DriverVersion: "550.54.14",
		GPUs: []inventory.GPU{
			{Index: 0, Node: node("nvidia0", 195, 0, 0o666, 0), DRI: []inventory.DeviceNode{node("dri/card1", 226, 1, 0o660, 44)}},
			{Index: 1, Node: node("nvidia1", 195, 1, 0o666, 0)},
		},
		Ctl: &ctl, UVM: &uvm, UVMTools: &uvmt, Modeset: &modeset,
		Libraries: map[inventory.Capability][]inventory.File{
			inventory.Compute:  {lib(inventory.Compute, "libcuda.so.550.54.14", "libcuda.so.1")},
			inventory.Utility:  {lib(inventory.Utility, "libnvidia-ml.so.550.54.14", "libnvidia-ml.so.1")},
			inventory.Graphics: {lib(inventory.Graphics, "libGLX_nvidia.so.550.54.14", "libGLX_nvidia.so.0")},
		},
		Binaries: map[inventory.Capability][]inventory.File{inventory.Utility: {{HostPath: "/drv/usr/bin/nvidia-smi", Path: "/usr/bin/nvidia-smi"}}},
		Sockets:  map[inventory.Capability][]inventory.File{inventory.Utility: {{HostPath: "/run/nvidia-persistenced/socket", Path: "/run/nvidia-persistenced/socket"}}},
		Firmware: []inventory.File{{HostPath: "/drv/lib/firmware/nvidia/550.54.14/gsp.bin", Path: "/lib/firmware/nvidia/550.54.14/gsp.bin"}},
	})
	require.NoError(t, err)
	return i
}

func opts() edits.Options {
	return edits.OptionsFromConfig(config.Default())
}

func TestBuildComputeUtility(t *testing.T) {
	i := inv(t)
	e := edits.Build(i, edits.Selection{GPUs: []*inventory.GPU{&i.GPUs[1]}, Capabilities: []inventory.Capability{inventory.Compute, inventory.Utility}}, opts())
	var paths []string
	for _, d := range e.DeviceNodes {
		paths = append(paths, d.Path)
		require.Equal(t, "rw", d.Permissions)
		require.NotNil(t, d.FileMode)
	}
	require.Equal(t, []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia1"}, paths)
	mounts := map[string][]string{}
	for _, m := range e.Mounts {
		mounts[m.ContainerPath] = m.Options
		require.Equal(t, "bind", m.Type)
	}
	require.Equal(t, []string{"ro", "nosuid", "nodev", "rbind", "rprivate"}, mounts["/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14"])
	require.Contains(t, mounts["/run/nvidia-persistenced/socket"], "noexec")
	require.Contains(t, mounts, "/lib/firmware/nvidia/550.54.14/gsp.bin")
	require.NotContains(t, mounts, "/usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.550.54.14", "graphics not requested")
	require.Equal(t, []string{"NVIDIA_VISIBLE_DEVICES=void"}, e.Env)
	require.Len(t, e.Hooks, 1)
	require.Equal(t, "createContainer", e.Hooks[0].HookName)
	require.Equal(t, "/usr/local/bin/gpu-nri-hook", e.Hooks[0].Path)
	require.Equal(t, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, e.Hooks[0].Env)
	o, err := hookproto.ParseArgs(e.Hooks[0].Args[2:])
	require.NoError(t, err)
	require.Equal(t, []hookproto.Link{ // capabilities in config.AllCapabilities order: compute, then utility
		{Target: "libcuda.so.550.54.14", Link: "/usr/lib/x86_64-linux-gnu/libcuda.so.1"},
		{Target: "libcuda.so.1", Link: "/usr/lib/x86_64-linux-gnu/libcuda.so"},
		{Target: "libnvidia-ml.so.550.54.14", Link: "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"},
	}, o.Links)
	require.Equal(t, "/sbin/ldconfig", o.Ldconfig)
	require.True(t, o.HideParams, "injection.disableDeviceNodeModification defaults to true")
	require.Empty(t, e.AdditionalGIDs)
}

func TestBuildHideParamsFollowsConfig(t *testing.T) {
	i := inv(t)
	sel := edits.Selection{GPUs: []*inventory.GPU{&i.GPUs[1]}, Capabilities: []inventory.Capability{inventory.Compute}}
	cfg := config.Default()
	cfg.Injection.DisableDeviceNodeModification = false
	e := edits.Build(i, sel, edits.OptionsFromConfig(cfg))
	require.Len(t, e.Hooks, 1)
	require.NotContains(t, e.Hooks[0].Args, "--hide-params")
	o, err := hookproto.ParseArgs(e.Hooks[0].Args[2:])
	require.NoError(t, err)
	require.False(t, o.HideParams)
	require.Contains(t, edits.Build(i, sel, opts()).Hooks[0].Args, "--hide-params")
}

func TestBuildDisplayAddsModesetDRIAndGroup(t *testing.T) {
	i := inv(t)
	e := edits.Build(i, edits.Selection{GPUs: []*inventory.GPU{&i.GPUs[0]}, Capabilities: []inventory.Capability{inventory.Display}}, opts())
	var paths []string
	for _, d := range e.DeviceNodes {
		paths = append(paths, d.Path)
	}
	require.Equal(t, []string{"/dev/nvidiactl", "/dev/nvidia-modeset", "/dev/nvidia0", "/dev/dri/card1"}, paths)
	require.Equal(t, []uint32{44}, e.AdditionalGIDs, "nodes that are not world rw bring their group")
}

func TestBuildNoneHasNoGPUNode(t *testing.T) {
	i := inv(t)
	e := edits.Build(i, edits.Selection{Capabilities: []inventory.Capability{inventory.Utility}}, opts())
	require.Len(t, e.DeviceNodes, 1)
	require.Equal(t, "/dev/nvidiactl", e.DeviceNodes[0].Path)
}

func TestBuildHooklessHasNoHook(t *testing.T) {
	i := inv(t)
	o := opts()
	o.Loader = config.LoaderHookless
	o.HooklessLayout = hookproto.LayoutDebian
	e := edits.Build(i, edits.Selection{GPUs: []*inventory.GPU{&i.GPUs[0]}, Capabilities: []inventory.Capability{inventory.Compute}}, o)
	require.Empty(t, e.Hooks)
	dst := map[string]string{}
	for _, m := range e.Mounts {
		dst[m.ContainerPath] = m.HostPath
	}
	require.Equal(t, "/drv/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", dst["/usr/lib/x86_64-linux-gnu/libcuda.so.1"])
	require.Equal(t, "/drv/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", dst["/usr/lib/x86_64-linux-gnu/libcuda.so"])
	require.NotContains(t, dst, hookproto.HooklessDir+"/libcuda.so.1", "the fallback directory only in the fallback layout")
	o.HooklessLayout = hookproto.LayoutFallback
	e = edits.Build(i, edits.Selection{GPUs: []*inventory.GPU{&i.GPUs[0]}, Capabilities: []inventory.Capability{inventory.Compute}}, o)
	dst = map[string]string{}
	for _, m := range e.Mounts {
		dst[m.ContainerPath] = m.HostPath
	}
	require.Equal(t, "/drv/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", dst[hookproto.HooklessDir+"/libcuda.so.1"])
	require.NotContains(t, dst, "/usr/lib/x86_64-linux-gnu/libcuda.so.1")
}

func TestBuildGDSFilesAndMPSDir(t *testing.T) {
	i := inv(t)
	i.ExtraFiles = map[string][]inventory.File{"gds": {{HostPath: "/run/udev", Path: "/run/udev"}, {HostPath: "/etc/cufile.json", Path: "/etc/cufile.json"}}}
	i.Extra = map[string][]inventory.DeviceNode{"gds": {{Path: "/dev/nvidia-fs0", HostPath: "/dev/nvidia-fs0", Type: "c", Major: 240, Minor: 0, FileMode: 0o666}}}
	i.MPSPipeDir = &inventory.File{HostPath: "/tmp/nvidia-mps", Path: "/tmp/nvidia-mps", Capability: inventory.Compute}
	mounts := func(sel edits.Selection) map[string][]string {
		out := map[string][]string{}
		for _, m := range edits.Build(i, sel, opts()).Mounts {
			out[m.ContainerPath] = m.Options
		}
		return out
	}
	got := mounts(edits.Selection{Capabilities: []inventory.Capability{inventory.Utility}, Extra: []string{"gds"}})
	require.Contains(t, got["/etc/cufile.json"], "ro")
	require.Contains(t, got, "/run/udev")
	require.NotContains(t, got, "/tmp/nvidia-mps", "MPS only with compute")

	got = mounts(edits.Selection{Capabilities: []inventory.Capability{inventory.Compute}})
	require.NotContains(t, got, "/etc/cufile.json", "GDS files only with NVIDIA_GDS")
	require.Equal(t, []string{"nosuid", "nodev", "noexec", "rbind", "rprivate"}, got["/tmp/nvidia-mps"])
}

// Groups come from a map: the result is sorted, the same on every build.
func TestBuildAdditionalGIDsSorted(t *testing.T) {
	i := inv(t)
	i.GPUs[0].Node.FileMode, i.GPUs[0].Node.GID = 0o660, 27
	i.GPUs[1].Node.FileMode, i.GPUs[1].Node.GID = 0o660, 109
	sel := edits.Selection{GPUs: []*inventory.GPU{&i.GPUs[1], &i.GPUs[0]}, Capabilities: []inventory.Capability{inventory.Display}}
	for range 20 {
		require.Equal(t, []uint32{27, 44, 109}, edits.Build(i, sel, opts()).AdditionalGIDs)
	}
}
