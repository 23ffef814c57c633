package explain_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/explain"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// setup builds a 4-GPU host (GPU 3 with two MIG devices), the engine of the
// default configuration changed by mutate, and the host source explain
// reads it with (the simulated node table, no NVML).
func setup(t *testing.T, mutate func(*config.Config)) (*simhost.Host, *engine.Engine, *hostsrc.Host) {
	t.Helper()
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 4, MIG: map[int]int{3: 2}})
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Injection.HookPath = "/opt/gpu-nri/bin/gpu-nri"
	cfg.Injection.CDISpecDirs = nil
	if mutate != nil {
		mutate(cfg)
	}
	eng, err := engine.New(cfg)
	require.NoError(t, err)
	src, err := hostsrc.Open(cfg, hostsrc.WithNodeStater(h.Stater()), hostsrc.WithoutFacts())
	require.NoError(t, err)
	return h, eng, src
}

// files lists the simulated host's driver files of caps (container path ->
// host path), from the table the fixture was built from.
func files(h *simhost.Host, caps ...inventory.Capability) map[string]string {
	out := map[string]string{}
	for _, group := range [][]simhost.File{h.Libraries, h.Binaries, h.ConfigFiles, h.Sockets, h.Firmware} {
		for _, f := range group {
			if (f.Capability == "" || slices.Contains(caps, f.Capability)) && !f.Lib32 {
				out[f.Path] = f.HostPath
			}
		}
	}
	return out
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func nodePaths(r *explain.Report) []string {
	if r.Edits == nil {
		return nil
	}
	var out []string
	for _, n := range r.Edits.DeviceNodes {
		out = append(out, n.Path)
	}
	slices.Sort(out)
	return out
}

func mounts(r *explain.Report) map[string]string {
	out := map[string]string{}
	for _, m := range r.Edits.Mounts {
		out[m.ContainerPath] = m.HostPath
	}
	return out
}

func TestBuild(t *testing.T) {
	h, eng, src := setup(t, nil)
	cu := []inventory.Capability{inventory.Compute, inventory.Utility}
	cap := func(m int) string { return "/dev/nvidia-caps/nvidia-cap" + strconv.Itoa(m) }
	mig := h.GPUs[3].MIG[1]
	for _, tc := range []struct {
		name    string
		env     []string
		outcome string
		devices []string
		nodes   []string
		caps    []inventory.Capability
		err     string
	}{
		{name: "two GPUs", env: []string{"NVIDIA_VISIBLE_DEVICES=0,2", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"},
			outcome: engine.OutcomeInjected, devices: []string{"0=" + h.GPUs[0].UUID, "2=" + h.GPUs[2].UUID},
			nodes: []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0", "/dev/nvidia2", "/dev/nvidiactl"}, caps: cu},
		{name: "utility only", env: []string{"NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_DRIVER_CAPABILITIES=utility"},
			outcome: engine.OutcomeInjected, devices: []string{"1=" + h.GPUs[1].UUID},
			nodes: []string{"/dev/nvidia1", "/dev/nvidiactl"}, caps: []inventory.Capability{inventory.Utility}},
		{name: "a MIG device", env: []string{"NVIDIA_VISIBLE_DEVICES=3:1"},
			outcome: engine.OutcomeInjected, devices: []string{"3:1"},
			nodes: sorted(cap(mig.CICapMinor), cap(mig.GICapMinor), "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia3", "/dev/nvidiactl"), caps: cu},
		{name: "none: control nodes and driver files", env: []string{"NVIDIA_VISIBLE_DEVICES=none"},
			outcome: engine.OutcomeInjected, nodes: []string{"/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidiactl"}, caps: cu},
		{name: "not a GPU container", env: []string{"PATH=/bin"}, outcome: engine.OutcomeNotGPU},
		{name: "unknown device", env: []string{"NVIDIA_VISIBLE_DEVICES=7"}, outcome: engine.OutcomeError,
			err: `gpu-nri: container default/p/c: env NVIDIA_VISIBLE_DEVICES "7": no such device on this host (the host has 4 GPU(s): indexes 0-3)`},
		{name: "MIG-enabled GPU taken whole", env: []string{"NVIDIA_VISIBLE_DEVICES=3"}, outcome: engine.OutcomeError,
			err: `gpu-nri: container default/p/c: env NVIDIA_VISIBLE_DEVICES "3": GPU 3 has MIG enabled; ask for its MIG devices (3:0...) instead`},
		{name: "one GPU by index and by UUID", env: []string{"NVIDIA_VISIBLE_DEVICES=1," + h.GPUs[1].UUID}, outcome: engine.OutcomeError,
			err: `gpu-nri: container default/p/c: env NVIDIA_VISIBLE_DEVICES: GPU 1 is named twice ("` + h.GPUs[1].UUID + `")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := explain.Build(eng, src, &request.Input{Namespace: "default", Pod: "p", Container: "c", Env: tc.env}, explain.Options{})
			require.Equal(t, "default/p/c", r.Container)
			require.Equal(t, tc.outcome, r.Outcome, r.Error)
			if tc.err != "" {
				require.EqualError(t, r.Err(), tc.err)
				require.Equal(t, tc.err, r.Error)
				require.Nil(t, r.Adjustment)
				return
			}
			require.NoError(t, r.Err())
			if tc.outcome == engine.OutcomeNotGPU {
				require.Nil(t, r.Edits)
				require.Nil(t, r.Request)
				require.Nil(t, r.Adjustment)
				return
			}
			require.Equal(t, tc.devices, r.Devices)
			require.Equal(t, tc.nodes, nodePaths(r))
			require.Equal(t, files(h, tc.caps...), mounts(r))
			require.Equal(t, []string{"NVIDIA_VISIBLE_DEVICES=void"}, r.Edits.Env)
			require.Len(t, r.Edits.Hooks, 1)
			require.Equal(t, "/opt/gpu-nri/bin/gpu-nri", r.Edits.Hooks[0].Path)
			// The adjustment carries the same nodes, as NRI devices.
			var adjNodes []string
			for _, d := range r.Adjustment.GetLinux().GetDevices() {
				adjNodes = append(adjNodes, d.Path)
			}
			slices.Sort(adjNodes)
			require.Equal(t, tc.nodes, adjNodes)
		})
	}
}

func TestBuildRefused(t *testing.T) {
	h, eng, src := setup(t, func(c *config.Config) { c.Policy = config.KubernetesStrictPolicy() })
	r := explain.Build(eng, src, &request.Input{Namespace: "default", Pod: "p", Container: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=0"}}, explain.Options{})
	require.Equal(t, engine.OutcomeRefused, r.Outcome)
	require.Equal(t, []explain.Refusal{{Source: "env", Where: "env NVIDIA_VISIBLE_DEVICES", Rule: "policy.sources.env.allowNamespaces",
		Reason: `namespace "default" is not allowed; add the namespace to policy.sources.env.allowNamespaces to allow it`}}, r.Decision.Refused)
	require.False(t, r.Decision.Granted)
	require.Nil(t, r.Edits)

	r = explain.Build(eng, src, &request.Input{Namespace: "kube-system", Pod: "p", Container: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=0"}}, explain.Options{})
	require.Equal(t, engine.OutcomeInjected, r.Outcome)
	require.Equal(t, "policy.sources.env.allowNamespaces", r.Decision.Rule)
	require.Equal(t, []string{"0=" + h.GPUs[0].UUID}, r.Devices)

	_, eng, src = setup(t, nil)
	r = explain.Build(eng, src, &request.Input{Namespace: "default", Pod: "p", Container: "c",
		Env: []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"}}, explain.Options{})
	require.Equal(t, engine.OutcomeRefused, r.Outcome)
	require.Contains(t, r.Error, "NVIDIA_REQUIRE_CUDA")
	require.Contains(t, r.Error, "cuda>=99.0")
}

func TestBuildOCIAndText(t *testing.T) {
	h, eng, src := setup(t, func(c *config.Config) { c.Injection.Loader = config.LoaderHookless })
	r := explain.Build(eng, src, &request.Input{Namespace: "default", Pod: "p", Container: "c",
		Env: []string{"NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_DRIVER_CAPABILITIES=utility"}}, explain.Options{OCI: true, CgroupRules: true})
	require.NoError(t, r.Err())
	require.Empty(t, r.Edits.Hooks)
	var devs []string
	for _, d := range r.OCI.After.Linux.Devices {
		devs = append(devs, d.Path)
	}
	require.Equal(t, []string{"/dev/nvidiactl", "/dev/nvidia1"}, devs)
	require.Contains(t, r.OCI.Diff, `+        "path": "/dev/nvidia1",`)
	require.Nil(t, r.OCI.After.Hooks)
	text := r.Text()
	for _, s := range []string{"Container  default/p/c\n", "Outcome    injected: the container gets the edits below\n",
		"  selected       1=" + h.GPUs[1].UUID + "\n", "\nHooks\n  (none)\n", "OCI spec diff"} {
		require.Contains(t, text, s)
	}
}
