package engine_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/policy"
	"github.com/gpu-nri/gpu-nri/pkg/request"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

func fixture(t *testing.T) (*simhost.Host, *inventory.Inventory) {
	t.Helper()
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 4, MIG: map[int]int{3: 2}})
	require.NoError(t, err)
	inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	inv.CUDAVersion = h.CUDAVersion
	for i := range inv.GPUs {
		inv.GPUs[i].Brand, inv.GPUs[i].Arch = "tesla", "9.0"
	}
	return h, inv
}

// newEngine builds the engine for h's host with the default configuration,
// changed by mutate.
func newEngine(t *testing.T, h *simhost.Host, mutate func(*config.Config)) *engine.Engine {
	t.Helper()
	cfg := config.Default()
	cfg.Host = h.Config
	if mutate != nil {
		mutate(cfg)
	}
	eng, err := engine.New(cfg)
	require.NoError(t, err)
	return eng
}

// evaluate decides in against a fixed inventory (nil: no driver).
func evaluate(eng *engine.Engine, inv *inventory.Inventory, in *request.Input) (*engine.Result, error) {
	a := eng.Decide(engine.Fixed(inv), engine.Query{Input: in})
	return a.Result, a.Err
}

func nodes(r *engine.Result) []string {
	var out []string
	for _, d := range r.Edits.DeviceNodes {
		out = append(out, d.Path)
	}
	slices.Sort(out)
	return out
}

func TestEvaluate(t *testing.T) {
	h, inv := fixture(t)
	eng := newEngine(t, h, nil)
	in := func(env ...string) *request.Input {
		return &request.Input{Namespace: "ns", Pod: "p", Container: "c", Env: env}
	}

	t.Run("not a GPU container", func(t *testing.T) {
		r, err := evaluate(eng, inv, in("PATH=/bin"))
		require.NoError(t, err)
		require.Nil(t, r.Request)
		require.False(t, r.Injected())
	})
	t.Run("all takes whole GPUs and MIG devices", func(t *testing.T) {
		r, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=all"))
		require.NoError(t, err)
		require.Len(t, r.Selection.GPUs, 4)
		require.Len(t, r.Selection.MIGs, 2)
		for i := range 4 {
			require.Contains(t, nodes(r), "/dev/nvidia"+string(rune('0'+i)))
		}
	})
	t.Run("a MIG-enabled GPU cannot be taken whole", func(t *testing.T) {
		_, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=3"))
		require.ErrorContains(t, err, "MIG enabled")
	})
	t.Run("unknown device names the host's GPUs and is retryable", func(t *testing.T) {
		_, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=0,7"))
		require.ErrorIs(t, err, engine.ErrUnknownDevice)
		var re *request.Error
		require.ErrorAs(t, err, &re)
		require.Equal(t, "ns/p/c", re.Who)
		require.Contains(t, err.Error(), `"7"`)
		require.Contains(t, err.Error(), "4 GPU(s)")
	})
	t.Run("the same GPU by index and UUID is a duplicate", func(t *testing.T) {
		_, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=1,"+h.GPUs[1].UUID))
		require.ErrorContains(t, err, "named twice")
	})
	t.Run("no driver", func(t *testing.T) {
		_, err := evaluate(eng, nil, in("NVIDIA_VISIBLE_DEVICES=0"))
		require.ErrorIs(t, err, engine.ErrNoDriver)
		require.ErrorContains(t, err, "ns/p/c")
	})
	t.Run("unmet requirement names GPU and value", func(t *testing.T) {
		_, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"))
		var qe *policy.RequirementError
		require.ErrorAs(t, err, &qe)
		require.ErrorContains(t, err, "cuda>=99.0")
		require.ErrorContains(t, err, h.GPUs[0].UUID)
		_, err = evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0", "NVIDIA_DISABLE_REQUIRE=true"))
		require.NoError(t, err)
	})
	t.Run("unknown IMEX channel", func(t *testing.T) {
		_, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS=5"))
		require.ErrorContains(t, err, "IMEX channel 5")
	})
	t.Run("third-party CDI device no spec defines", func(t *testing.T) {
		_, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=example.com/fpga=0"))
		require.EqualError(t, err, "gpu-nri: container ns/p/c: CDI device example.com/fpga=0: unresolvable CDI device: no spec in /etc/cdi, /var/run/cdi defines it")
	})
	t.Run("third-party CDI without spec directories", func(t *testing.T) {
		eng := newEngine(t, h, func(c *config.Config) { c.Injection.CDISpecDirs = nil })
		_, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=example.com/fpga=0"))
		require.EqualError(t, err, "gpu-nri: container ns/p/c: CDI device example.com/fpga=0: no CDI spec directories are configured (injection.cdiSpecDirs)")
	})
	t.Run("own CDI kind is the inventory", func(t *testing.T) {
		r, err := evaluate(eng, inv, in("NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=2"))
		require.NoError(t, err)
		require.Contains(t, nodes(r), "/dev/nvidia2")
	})
}

func TestEvaluateHooklessFallbackKeepsImageLibraryPath(t *testing.T) {
	h, inv := fixture(t)
	eng := newEngine(t, h, func(c *config.Config) {
		c.Injection.Loader = config.LoaderHookless
		c.Injection.HooklessLayout = hookproto.LayoutFallback
	})
	r, err := evaluate(eng, inv, &request.Input{Namespace: "n", Pod: "p", Container: "c",
		Env: []string{"NVIDIA_VISIBLE_DEVICES=0", "LD_LIBRARY_PATH=/opt/lib"}})
	require.NoError(t, err)
	require.Contains(t, r.Edits.Env, "LD_LIBRARY_PATH="+hookproto.HooklessDir+":/opt/lib")
	require.Empty(t, r.Edits.Hooks)
}

func TestEvaluateIsDeterministic(t *testing.T) {
	h, inv := fixture(t)
	eng := newEngine(t, h, nil)
	in := &request.Input{Namespace: "n", Pod: "p", Container: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=2,0", "NVIDIA_DRIVER_CAPABILITIES=all"}}
	a, err := evaluate(eng, inv, in)
	require.NoError(t, err)
	for range 20 {
		b, err := evaluate(eng, inv, in)
		require.NoError(t, err)
		require.Equal(t, a.Edits, b.Edits)
	}
}

func TestEvaluateMIGManagementNeedsAllowList(t *testing.T) {
	h, inv := fixture(t)
	eng := newEngine(t, h, nil)
	in := &request.Input{Namespace: "team", Pod: "p", Container: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=none", "NVIDIA_MIG_CONFIG_DEVICES=all"}}
	_, err := evaluate(eng, inv, in)
	var re *policy.RefusedError
	require.ErrorAs(t, err, &re)
	require.ErrorContains(t, err, "policy.managementNamespaces")

	eng = newEngine(t, h, func(c *config.Config) { c.Policy.ManagementNamespaces = []string{"gpu-*", "team"} })
	r, err := evaluate(eng, inv, in)
	require.NoError(t, err)
	require.Contains(t, nodes(r), inv.MIGConfig.Path)
}

func TestOutcome(t *testing.T) {
	h, inv := fixture(t)
	eng := newEngine(t, h, nil)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"PATH=/bin"}, engine.OutcomeNotGPU},
		{[]string{"NVIDIA_VISIBLE_DEVICES=0"}, engine.OutcomeInjected},
		{[]string{"NVIDIA_VISIBLE_DEVICES=9"}, engine.OutcomeError},
		{[]string{"NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_DRIVER_CAPABILITIES=nothing"}, engine.OutcomeError},
		{[]string{"NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_REQUIRE_CUDA=cuda>=99"}, engine.OutcomeRefused},
		{[]string{"NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_MIG_MONITOR_DEVICES=all"}, engine.OutcomeRefused},
	} {
		a := eng.Decide(engine.Fixed(inv), engine.Query{Input: &request.Input{Namespace: "n", Pod: "p", Container: "c", Env: tc.env}})
		require.Equal(t, tc.want, a.Outcome, "%v", tc.env)
	}
}

// Two MIG devices of one GPU: the parent's requirement is checked, and an
// unmet one reported, once.
func TestEvaluateMIGParentCheckedOnce(t *testing.T) {
	h, inv := fixture(t)
	eng := newEngine(t, h, nil)
	_, err := evaluate(eng, inv, &request.Input{Namespace: "n", Pod: "p", Container: "c",
		Env: []string{"NVIDIA_VISIBLE_DEVICES=3:0,3:1", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"}})
	var qe *policy.RequirementError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, 1, strings.Count(err.Error(), h.GPUs[3].UUID), err.Error())
}
