package explain_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	rgen "github.com/opencontainers/runtime-tools/generate"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/explain"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/nriadjust"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/nritest"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// daemon is the real plugin behind an in-process NRI runtime, plus what
// explain needs to evaluate the same containers offline.
type daemon struct {
	*nritest.Daemon
	t *testing.T
}

func newDaemon(t *testing.T, h *simhost.Host, mutate func(*config.Config)) *daemon {
	t.Helper()
	return &daemon{Daemon: nritest.Start(t, h, mutate), t: t}
}

// explainer builds what `gpu-nri explain` builds: the engine and inventory
// of the same configuration and host.
func (d *daemon) explainer() (*engine.Engine, *inventory.Inventory) {
	eng, cdiErr, err := engine.ForHost(d.Config, d.Host.Stater(), false)
	require.NoError(d.t, err)
	require.NoError(d.t, cdiErr)
	inv, err := inventory.Discover(d.Config.Host, inventory.WithNodeStater(d.Host.Stater()))
	require.NoError(d.t, err)
	return eng, inv
}

type input struct {
	name   string
	ns     string
	podAnn map[string]string
	env    []string
	mounts []*api.Mount
}

func (in input) nri() (*api.PodSandbox, *api.Container) {
	pod := &api.PodSandbox{Id: "pod-" + in.name, Name: "pod-" + in.name, Uid: "uid-" + in.name, Namespace: in.ns, Annotations: in.podAnn}
	ctr := &api.Container{Id: "ctr-" + in.name, PodSandboxId: pod.Id, Name: in.name, Env: in.env, Mounts: in.mounts}
	return pod, ctr
}

func specJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	return string(b)
}

// compare sends in through the runtime to the daemon and through explain,
// and requires the same OCI spec or the same error.
func (d *daemon) compare(in input) *explain.Report {
	t := d.t
	t.Helper()
	pod, ctr := in.nri()
	adj, rerr := d.CreateContainer(pod, ctr)

	// The runtime updates the request's container with each plugin's
	// adjustment; explain gets fresh objects, as the daemon saw them.
	pod, ctr = in.nri()
	eng, inv := d.explainer()
	rep := explain.Build(eng, inv, plugin.InputFromNRI(pod, ctr),
		explain.Options{CgroupRules: nriadjust.CgroupRulesApplied(nritest.RuntimeName, nritest.RuntimeVersion), OCI: true})

	if rerr != nil {
		require.Error(t, rep.Err(), "daemon failed (%v), explain did not", rerr)
		require.Contains(t, rerr.Error(), rep.Error, "the runtime's error carries explain's error text")
		return rep
	}
	require.NoError(t, rep.Err())
	// The runtime's spec: the same base spec, the merged adjustment applied
	// by NRI's generator, as containerd does.
	base, err := explain.BaseSpec(plugin.InputFromNRI(pod, ctr))
	require.NoError(t, err)
	g := rgen.NewFromSpec(base)
	require.NoError(t, nrigen.SpecGenerator(&g).Adjust(adj))
	if a, b := specJSON(t, g.Config), specJSON(t, rep.OCI.After); a != b {
		t.Fatalf("%s: OCI specs differ:\n%s", in.name, explain.Diff("daemon", "explain", a, b, 2))
	}
	return rep
}

func TestDaemonAndExplainAgree(t *testing.T) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 4, MIG: map[int]int{3: 2}})
	require.NoError(t, err)

	t.Run("standalone", func(t *testing.T) {
		d := newDaemon(t, h, nil)
		for _, tc := range []struct {
			in      input
			outcome string
		}{
			{input{name: "env", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=0,2", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"}}, explain.OutcomeInjected},
			{input{name: "graphics", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_DRIVER_CAPABILITIES=all"}}, explain.OutcomeInjected},
			{input{name: "annotated", ns: "default", podAnn: map[string]string{"gpus.gpu-nri.io/container.annotated": "1"}}, explain.OutcomeInjected},
			{input{name: "mig", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=3:1"}}, explain.OutcomeInjected},
			{input{name: "all", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=all"}}, explain.OutcomeInjected},
			{input{name: "none", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=none"}}, explain.OutcomeInjected},
			{input{name: "plain", ns: "default", env: []string{"PATH=/bin"}}, explain.OutcomeNotGPU},
			{input{name: "volume", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices"},
				mounts: []*api.Mount{{Source: "/dev/null", Destination: "/var/run/nvidia-container-devices/" + h.GPUs[2].UUID, Type: "bind"}}}, explain.OutcomeInjected},
			{input{name: "unknown", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=7"}}, explain.OutcomeError},
			{input{name: "garbage", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=0,x"}}, explain.OutcomeError},
			{input{name: "typo", ns: "default", podAnn: map[string]string{"gpus.gpu-nri.io/containers.typo": "0"}}, explain.OutcomeError},
			{input{name: "migwhole", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=3"}}, explain.OutcomeError},
			{input{name: "require", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"}}, explain.OutcomeRefused},
		} {
			rep := d.compare(tc.in)
			require.Equal(t, tc.outcome, rep.Outcome, "%s: %s", tc.in.name, rep.Error)
		}
	})

	t.Run("kubernetes-strict", func(t *testing.T) {
		d := newDaemon(t, h, func(c *config.Config) { c.Policy = config.KubernetesStrictPolicy() })
		rep := d.compare(input{name: "env", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=0"}})
		require.Equal(t, explain.OutcomeRefused, rep.Outcome)
		require.NotEmpty(t, rep.Decision.Refused)
		rep = d.compare(input{name: "sys", ns: "kube-system", env: []string{"NVIDIA_VISIBLE_DEVICES=0"}})
		require.Equal(t, explain.OutcomeInjected, rep.Outcome)
		require.Equal(t, "policy.sources.env.allowNamespaces", rep.Decision.Rule)
	})

	t.Run("hookless", func(t *testing.T) {
		d := newDaemon(t, h, func(c *config.Config) { c.Injection.Loader = config.LoaderHookless })
		rep := d.compare(input{name: "env", ns: "default", env: []string{"NVIDIA_VISIBLE_DEVICES=1"}})
		require.Equal(t, explain.OutcomeInjected, rep.Outcome)
		require.Empty(t, rep.Edits.Hooks)
	})
}
