package explain_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	rgen "github.com/opencontainers/runtime-tools/generate"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/explain"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/nriadjust"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

const (
	runtimeName    = "containerd"
	runtimeVersion = "v2.4.2"
)

// daemon is the real plugin behind an in-process NRI runtime (the
// adaptation containerd and CRI-O embed), plus what explain needs to
// evaluate the same containers offline.
type daemon struct {
	t       *testing.T
	runtime *adaptation.Adaptation
	cfg     *config.Config
	host    *simhost.Host
}

func newDaemon(t *testing.T, h *simhost.Host, mutate func(*config.Config)) *daemon {
	t.Helper()
	dir := t.TempDir()
	sockDir, err := os.MkdirTemp("", "nri")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "nri.sock")

	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Host.RefreshInterval = 0
	cfg.Plugin.Socket = sock
	cfg.Plugin.ReconnectMin = config.Duration(50 * time.Millisecond)
	cfg.Injection.HookPath = "/opt/gpu-nri/bin/gpu-nri"
	cfg.Injection.CDISpecDirs = []string{filepath.Join(dir, "cdi")}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "cdi"), 0o755))
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())

	r, err := adaptation.New(runtimeName, runtimeVersion,
		func(ctx context.Context, cb adaptation.SyncCB) error { _, err := cb(ctx, nil, nil); return err },
		func(context.Context, []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
			return nil, nil
		},
		adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
		adaptation.WithPluginConfigPath(filepath.Join(dir, "conf.d")),
		adaptation.WithSocketPath(sock))
	require.NoError(t, err)
	require.NoError(t, r.Start())
	t.Cleanup(r.Stop)

	log := logrus.New()
	log.SetOutput(os.Stderr)
	log.SetLevel(logrus.WarnLevel)
	p, err := plugin.New(plugin.Options{Config: cfg, Logger: log, NodeStater: h.Stater(), NoFacts: true})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return p.Ready() == nil }, 10*time.Second, 10*time.Millisecond, "plugin never registered")
	return &daemon{t: t, runtime: r, cfg: cfg, host: h}
}

// explainer builds what `gpu-nri explain` builds: the engine and inventory
// of the same configuration and host.
func (d *daemon) explainer() (*engine.Engine, *inventory.Inventory) {
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(d.cfg.Injection.CDISpecDirs...), cdiapi.WithAutoRefresh(false))
	require.NoError(d.t, err)
	eng, err := engine.New(d.cfg, engine.WithCDI(cache), engine.WithNodeStater(d.host.Stater()))
	require.NoError(d.t, err)
	inv, err := inventory.Discover(d.cfg.Host, inventory.WithNodeStater(d.host.Stater()))
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rpl, rerr := d.runtime.CreateContainer(ctx, &api.CreateContainerRequest{Pod: pod, Container: ctr})

	// The runtime updates the request's container with each plugin's
	// adjustment; explain gets fresh objects, as the daemon saw them.
	pod, ctr = in.nri()
	eng, inv := d.explainer()
	rep := explain.Build(eng, inv, plugin.InputFromNRI(pod, ctr),
		explain.Options{CgroupRules: nriadjust.CgroupRulesApplied(runtimeName, runtimeVersion), OCI: true})

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
	require.NoError(t, nrigen.SpecGenerator(&g).Adjust(rpl.GetAdjust()))
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
