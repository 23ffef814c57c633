package engine_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// staleHost serves cur until the engine asks for a rediscovery, then next.
type staleHost struct {
	engine.Host
	cur, next *inventory.Inventory
	refreshes int
}

func (h *staleHost) Inventory() *inventory.Inventory { return h.cur }

func (h *staleHost) RefreshIfStale() (bool, error) {
	h.refreshes++
	if h.next == nil {
		return false, nil
	}
	h.cur, h.next = h.next, nil
	return true, nil
}

func discover(t *testing.T, o simhost.Options) *inventory.Inventory {
	t.Helper()
	o.Dir = filepath.Join(t.TempDir(), "host")
	h, err := simhost.Build(o)
	require.NoError(t, err)
	inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	return inv
}

func TestDecideRediscoversOnce(t *testing.T) {
	h, four := fixture(t)
	two := discover(t, simhost.Options{GPUs: 2})
	eng := newEngine(t, h, nil)
	in := &request.Input{Namespace: "ns", Pod: "p", Container: "c", Env: []string{"NVIDIA_VISIBLE_DEVICES=2"}}

	for _, tc := range []struct {
		name          string
		cur, next     *inventory.Inventory
		env           []string
		refreshes     int
		outcome, want string
	}{
		{"a GPU the stale inventory lacks is found after one rediscovery", two, four, []string{"NVIDIA_VISIBLE_DEVICES=2"}, 1, engine.OutcomeInjected, ""},
		{"a driver that appeared is found after one rediscovery", nil, four, []string{"NVIDIA_VISIBLE_DEVICES=2"}, 1, engine.OutcomeInjected, ""},
		{"still unknown after the rediscovery", two, two, []string{"NVIDIA_VISIBLE_DEVICES=7"}, 1, engine.OutcomeError,
			`gpu-nri: container ns/p/c: env NVIDIA_VISIBLE_DEVICES "7": no such device on this host (the host has 2 GPU(s): indexes 0-1)`},
		{"nothing changed: no second evaluation", two, nil, []string{"NVIDIA_VISIBLE_DEVICES=7"}, 1, engine.OutcomeError,
			`gpu-nri: container ns/p/c: env NVIDIA_VISIBLE_DEVICES "7": no such device on this host (the host has 2 GPU(s): indexes 0-1)`},
		{"bad input is not retried", four, two, []string{"NVIDIA_VISIBLE_DEVICES=0,x"}, 0, engine.OutcomeError, ""},
		{"a refusal is not retried", four, two, []string{"NVIDIA_VISIBLE_DEVICES=1", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"}, 0, engine.OutcomeRefused, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &staleHost{cur: tc.cur, next: tc.next}
			in.Env = tc.env
			a := eng.Decide(src, engine.Query{Input: in})
			require.Equal(t, tc.outcome, a.Outcome, "%v", a.Err)
			require.Equal(t, tc.refreshes, src.refreshes)
			if tc.want != "" {
				require.EqualError(t, a.Err, tc.want)
			}
			if tc.outcome == engine.OutcomeInjected {
				require.Equal(t, []string{"2=" + four.GPUs[2].UUID}, a.Result.Devices)
				require.Contains(t, nodes(a.Result), "/dev/nvidia2")
			}
		})
	}
}

func TestDecideGrant(t *testing.T) {
	h, inv := fixture(t)
	eng := newEngine(t, h, func(c *config.Config) { c.Policy = config.KubernetesStrictPolicy() })
	caps := []inventory.Capability{inventory.Utility}
	grant := func(g engine.Grant) engine.Answer {
		g.Capabilities = caps
		return eng.Decide(engine.Fixed(inv), engine.Query{Grant: &g})
	}

	// Policy does not apply to a grant (the strict profile would refuse
	// this env request in any namespace but kube-system).
	a := grant(engine.Grant{Where: "cdi device 1", Devices: []string{"1"}})
	require.NoError(t, a.Err)
	require.Equal(t, engine.OutcomeInjected, a.Outcome)
	require.Equal(t, []string{"1=" + h.GPUs[1].UUID}, a.Result.Devices)
	require.Equal(t, []string{"/dev/nvidia1", "/dev/nvidiactl"}, nodes(a.Result))
	require.Equal(t, []string{"NVIDIA_VISIBLE_DEVICES=void"}, a.Result.Edits.Env)
	require.Equal(t, "cdi device 1", a.Result.Decision.Rule)
	require.Equal(t, engine.GrantSource, a.Result.Decision.Source.Source)

	a = grant(engine.Grant{Where: "cdi device 3:1", Devices: []string{"3:1"}})
	require.NoError(t, a.Err)
	m := h.GPUs[3].MIG[1]
	require.ElementsMatch(t, []string{"/dev/nvidia3", "/dev/nvidiactl", "/dev/nvidia-caps/nvidia-cap" + strconv.Itoa(m.GICapMinor),
		"/dev/nvidia-caps/nvidia-cap" + strconv.Itoa(m.CICapMinor)}, nodes(a.Result))

	// The device rules still apply.
	a = grant(engine.Grant{Where: "cdi device 3", Devices: []string{"3"}})
	require.ErrorIs(t, a.Err, engine.ErrMIGEnabled)
	require.EqualError(t, a.Err, `gpu-nri: container //: cdi device 3 "3": GPU 3 has MIG enabled; ask for its MIG devices (3:0...) instead`)
	a = grant(engine.Grant{Where: "cdi device 9", Devices: []string{"9"}})
	require.ErrorIs(t, a.Err, engine.ErrUnknownDevice)
	a = grant(engine.Grant{Where: "cdi device x", Devices: []string{"x"}})
	require.Equal(t, engine.OutcomeError, a.Outcome)
	require.ErrorContains(t, a.Err, `cdi device x "x"`)

	// All: whole GPUs and every MIG device.
	a = grant(engine.Grant{Where: "cdi device all", All: true})
	require.NoError(t, a.Err)
	require.Len(t, a.Result.Selection.GPUs, 4)
	require.Len(t, a.Result.Selection.MIGs, 2)
}

// A GPU whose node is missing on the host: "all" leaves it out with a
// warning, and neither it nor its MIG devices can be asked for by name.
func TestDecideGPUWithoutNode(t *testing.T) {
	h, inv := fixture(t)
	inv.GPUs[1].Node.HostPath = ""
	inv.GPUs[3].Node.HostPath = ""
	eng := newEngine(t, h, nil)
	in := func(env string) engine.Query {
		return engine.Query{Input: &request.Input{Namespace: "ns", Pod: "p", Container: "c", Env: []string{env}}}
	}
	a := eng.Decide(engine.Fixed(inv), in("NVIDIA_VISIBLE_DEVICES=all"))
	require.NoError(t, a.Err)
	require.Equal(t, []string{h.GPUs[0].UUID, h.GPUs[2].UUID}, a.Result.Devices)
	require.Equal(t, []string{
		"GPU 1 (" + h.GPUs[1].UUID + ") has no usable device node on this host; left out",
		"GPU 3 (" + h.GPUs[3].UUID + ") has no usable device node on this host; left out"}, a.Result.Warnings)
	require.NotContains(t, nodes(a.Result), "/dev/nvidia1")

	a = eng.Decide(engine.Fixed(inv), in("NVIDIA_VISIBLE_DEVICES=1"))
	require.ErrorIs(t, a.Err, engine.ErrNoDeviceNode)
	require.EqualError(t, a.Err, `gpu-nri: container ns/p/c: env NVIDIA_VISIBLE_DEVICES "1": GPU 1 (`+h.GPUs[1].UUID+`) has no usable device node on this host`)
	a = eng.Decide(engine.Fixed(inv), in("NVIDIA_VISIBLE_DEVICES=3:0"))
	require.ErrorIs(t, a.Err, engine.ErrNoDeviceNode)
	require.EqualError(t, a.Err, `gpu-nri: container ns/p/c: env NVIDIA_VISIBLE_DEVICES "3:0": MIG device 3:0: its GPU has no usable device node on this host`)
}

func TestAnswerFail(t *testing.T) {
	h, inv := fixture(t)
	eng := newEngine(t, h, nil)
	a := eng.Decide(engine.Fixed(inv), engine.Query{Input: &request.Input{Env: []string{"NVIDIA_VISIBLE_DEVICES=0"}}})
	require.Equal(t, engine.OutcomeInjected, a.Outcome)
	a.Fail(errors.New("cannot convert"))
	require.Equal(t, engine.OutcomeError, a.Outcome)
	require.EqualError(t, a.Err, "cannot convert")
}
