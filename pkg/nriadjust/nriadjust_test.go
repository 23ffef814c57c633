package nriadjust_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/stretchr/testify/require"
	cdi "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/nriadjust"
)

func TestToAdjustment(t *testing.T) {
	mode := os.FileMode(0o666)
	uid, gid := uint32(0), uint32(44)
	timeout := 10
	e := &cdi.ContainerEdits{
		Env:            []string{"NVIDIA_VISIBLE_DEVICES=void", "A=b=c"},
		DeviceNodes:    []*cdi.DeviceNode{{Path: "/dev/nvidia0", HostPath: "/dev/nvidia0", Type: "c", Major: 195, Minor: 0, FileMode: &mode, UID: &uid, GID: &gid, Permissions: "rw"}},
		Mounts:         []*cdi.Mount{{HostPath: "/drv/libcuda.so.1", ContainerPath: "/usr/lib/libcuda.so.1", Options: []string{"ro", "rbind"}}},
		Hooks:          []*cdi.Hook{{HookName: "createContainer", Path: "/usr/local/bin/gpu-nri", Args: []string{"gpu-nri", "hook"}, Env: []string{"PATH=/bin"}, Timeout: &timeout}},
		AdditionalGIDs: []uint32{44},
	}
	for _, rules := range []bool{false, true} {
		adj, warnings, err := nriadjust.ToAdjustment(e, nriadjust.Options{CgroupRules: rules})
		require.NoError(t, err)
		require.Len(t, warnings, 1, "NRI cannot add GIDs")
		require.Len(t, adj.Env, 2)
		require.Equal(t, "A", adj.Env[1].Key)
		require.Equal(t, "b=c", adj.Env[1].Value)
		d := adj.Linux.Devices[0]
		require.Equal(t, int64(195), d.Major)
		require.NotNil(t, d.FileMode, "typed file mode must survive NRI's helper")
		require.Equal(t, uint32(0o666), d.FileMode.GetValue())
		require.Equal(t, uint32(44), d.Gid.GetValue())
		require.Equal(t, "bind", adj.Mounts[0].Type)
		require.Equal(t, "/drv/libcuda.so.1", adj.Mounts[0].Source)
		require.Len(t, adj.Hooks.CreateContainer, 1)
		require.Equal(t, []string{"PATH=/bin"}, adj.Hooks.CreateContainer[0].Env)
		require.Equal(t, int64(10), int64(adj.Hooks.CreateContainer[0].Timeout.GetValue()))
		if rules {
			r := adj.Linux.Resources.Devices[0]
			require.True(t, r.Allow)
			require.Equal(t, int64(195), r.Major.GetValue())
			require.Equal(t, int64(0), r.Minor.GetValue())
			require.Equal(t, "rw", r.Access)
		} else {
			require.Nil(t, adj.Linux.Resources)
		}
	}
}

func TestToAdjustmentErrors(t *testing.T) {
	_, _, err := nriadjust.ToAdjustment(&cdi.ContainerEdits{Env: []string{"NOEQUALS"}}, nriadjust.Options{})
	require.ErrorContains(t, err, "NOEQUALS")
	_, _, err = nriadjust.ToAdjustment(&cdi.ContainerEdits{Hooks: []*cdi.Hook{{HookName: "sometime", Path: "/x"}}}, nriadjust.Options{})
	require.ErrorContains(t, err, "sometime")
	_, _, err = nriadjust.ToAdjustment(&cdi.ContainerEdits{DeviceNodes: []*cdi.DeviceNode{{Path: "/dev/x", Type: "p"}}}, nriadjust.Options{})
	require.ErrorContains(t, err, "/dev/x")
}

func TestCgroupRulesApplied(t *testing.T) {
	for _, tc := range []struct {
		name, rt, v string
		want        bool
	}{
		{"containerd 2.4", "containerd", "v2.4.2", true},
		{"containerd 2.2.0, first with NRI v0.10", "containerd", "2.2.0", true},
		{"containerd 2.1 (NRI v0.9)", "containerd", "v2.1.5", false},
		{"containerd 1.7", "containerd", "1.7.30", false},
		{"CRI-O 1.34.0 vendors NRI v0.9.1: rules dropped", "cri-o", "1.34.0", false},
		{"CRI-O 1.34.1 still NRI v0.9", "cri-o", "1.34.1", false},
		{"CRI-O 1.35.0, first with NRI v0.10", "cri-o", "1.35.0", true},
		{"CRI-O 2.0", "cri-o", "2.0.0", true},
		{"CRI-O 1.33", "cri-o", "1.33.0", false},
		{"unparsable version", "containerd", "garbage", false},
		{"unknown runtime", "other", "9.9", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, nriadjust.CgroupRulesApplied(tc.rt, tc.v), "%s %s", tc.rt, tc.v)
		})
	}
}

func TestCgroupRulesModes(t *testing.T) {
	for _, tc := range []struct {
		mode  config.CgroupRuleMode
		rt, v string
		want  bool
	}{
		{"always", "containerd", "1.7.30", true}, {"never", "containerd", "v2.4.2", false},
		{"auto", "containerd", "v2.4.2", true}, {"auto", "containerd", "1.7.30", false},
		{"auto", "cri-o", "1.34.0", false}, {"auto", "cri-o", "1.35.1", true}, {"always", "cri-o", "1.34.0", true},
	} {
		require.Equal(t, tc.want, nriadjust.CgroupRules(tc.mode, tc.rt, tc.v), "%s %s %s", tc.mode, tc.rt, tc.v)
	}
}

// TestToAdjustmentPresent: what the runtime already injected into the
// container (CRI, or CDI resolved by containerd before NRI) is not added a
// second time; everything else is.
func TestToAdjustmentPresent(t *testing.T) {
	timeout := 10
	hook := &cdi.Hook{HookName: "createContainer", Path: "/usr/local/bin/gpu-nri", Args: []string{"gpu-nri", "hook", "ldconfig"}, Env: []string{"PATH=/bin"}, Timeout: &timeout}
	e := &cdi.ContainerEdits{
		Env: []string{"NVIDIA_VISIBLE_DEVICES=void"},
		DeviceNodes: []*cdi.DeviceNode{
			{Path: "/dev/nvidia0", Type: "c", Major: 195, Minor: 0},
			{Path: "/dev/nvidiactl", Type: "c", Major: 195, Minor: 255},
		},
		Mounts: []*cdi.Mount{
			{HostPath: "/drv/libcuda.so.1", ContainerPath: "/usr/lib/libcuda.so.1", Options: []string{"ro", "rbind"}},
			{HostPath: "/drv/nvidia-smi", ContainerPath: "/usr/bin/nvidia-smi", Options: []string{"ro", "rbind"}},
		},
		Hooks: []*cdi.Hook{hook},
	}
	nriHook := func(h *cdi.Hook) *api.Hook {
		return &api.Hook{Path: h.Path, Args: h.Args, Env: h.Env, Timeout: api.Int(*h.Timeout)}
	}
	tests := []struct {
		name    string
		ctr     *api.Container
		devices []string
		mounts  []string
		hooks   int
	}{
		{
			name:    "nothing present",
			ctr:     &api.Container{},
			devices: []string{"/dev/nvidia0", "/dev/nvidiactl"},
			mounts:  []string{"/usr/lib/libcuda.so.1", "/usr/bin/nvidia-smi"},
			hooks:   1,
		},
		{
			name: "everything present (a CDI spec the runtime injected)",
			ctr: &api.Container{
				Linux:  &api.LinuxContainer{Devices: []*api.LinuxDevice{{Path: "/dev/nvidia0"}, {Path: "/dev/nvidiactl"}}},
				Mounts: []*api.Mount{{Destination: "/usr/lib/libcuda.so.1", Source: "/drv/libcuda.so.1"}, {Destination: "/usr/bin/nvidia-smi", Source: "/drv/nvidia-smi"}},
				Hooks:  &api.Hooks{CreateContainer: []*api.Hook{nriHook(hook)}},
			},
		},
		{
			name: "part present",
			ctr: &api.Container{
				Linux:  &api.LinuxContainer{Devices: []*api.LinuxDevice{{Path: "/dev/nvidiactl"}}},
				Mounts: []*api.Mount{{Destination: "/usr/bin/nvidia-smi", Source: "/drv/nvidia-smi"}},
			},
			devices: []string{"/dev/nvidia0"},
			mounts:  []string{"/usr/lib/libcuda.so.1"},
			hooks:   1,
		},
		{
			name:    "a mount from another source at the destination is replaced",
			ctr:     &api.Container{Mounts: []*api.Mount{{Destination: "/usr/bin/nvidia-smi", Source: "/home/user/fake-smi"}}},
			devices: []string{"/dev/nvidia0", "/dev/nvidiactl"},
			mounts:  []string{"/usr/lib/libcuda.so.1", "/usr/bin/nvidia-smi"},
			hooks:   1,
		},
		{
			name: "a different hook is not the same hook",
			ctr: &api.Container{Hooks: &api.Hooks{
				CreateContainer: []*api.Hook{{Path: hook.Path, Args: []string{"gpu-nri", "hook"}, Env: hook.Env, Timeout: api.Int(timeout)}},
				Prestart:        []*api.Hook{nriHook(hook)},
			}},
			devices: []string{"/dev/nvidia0", "/dev/nvidiactl"},
			mounts:  []string{"/usr/lib/libcuda.so.1", "/usr/bin/nvidia-smi"},
			hooks:   1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adj, _, err := nriadjust.ToAdjustment(e, nriadjust.Options{CgroupRules: true, Container: tc.ctr})
			require.NoError(t, err)
			var devices, rules, mounts []string
			for _, d := range adj.GetLinux().GetDevices() {
				devices = append(devices, d.Path)
			}
			for _, r := range adj.GetLinux().GetResources().GetDevices() {
				rules = append(rules, r.Type+strconv.FormatInt(r.Major.GetValue(), 10)+":"+strconv.FormatInt(r.Minor.GetValue(), 10))
			}
			for _, m := range adj.GetMounts() {
				mounts = append(mounts, m.Destination)
			}
			require.Equal(t, tc.devices, devices)
			require.Len(t, rules, len(tc.devices), "one cgroup rule per added device only")
			require.Equal(t, tc.mounts, mounts)
			require.Len(t, adj.GetHooks().GetCreateContainer(), tc.hooks)
			require.Len(t, adj.Env, 1, "the environment is set either way (by key, never duplicated)")
		})
	}
}

// BenchmarkToAdjustmentPresent: the conversion of a 20-mount, 4-node,
// one-hook edit for a container that carries none of it and for one that
// carries all of it (the runtime injected the same CDI device).
func BenchmarkToAdjustmentPresent(b *testing.B) {
	e := &cdi.ContainerEdits{Hooks: []*cdi.Hook{{HookName: "createContainer", Path: "/opt/gpu-nri/bin/gpu-nri", Args: []string{"gpu-nri", "hook"}, Env: []string{"PATH=/bin"}}}}
	full := &api.Container{Linux: &api.LinuxContainer{}, Hooks: &api.Hooks{CreateContainer: []*api.Hook{{Path: "/opt/gpu-nri/bin/gpu-nri", Args: []string{"gpu-nri", "hook"}, Env: []string{"PATH=/bin"}}}}}
	for i := range 4 {
		p := "/dev/nvidia" + strconv.Itoa(i)
		e.DeviceNodes = append(e.DeviceNodes, &cdi.DeviceNode{Path: p, Type: "c", Major: 195, Minor: int64(i)})
		full.Linux.Devices = append(full.Linux.Devices, &api.LinuxDevice{Path: p})
	}
	for i := range 20 {
		src, dst := "/drv/lib"+strconv.Itoa(i)+".so", "/usr/lib/lib"+strconv.Itoa(i)+".so"
		e.Mounts = append(e.Mounts, &cdi.Mount{HostPath: src, ContainerPath: dst, Options: []string{"ro", "rbind"}})
		full.Mounts = append(full.Mounts, &api.Mount{Source: src, Destination: dst})
	}
	for _, bc := range []struct {
		name string
		ctr  *api.Container
	}{{"nothing-present", &api.Container{}}, {"all-present", full}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := nriadjust.ToAdjustment(e, nriadjust.Options{CgroupRules: true, Container: bc.ctr}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
