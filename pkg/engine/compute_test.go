package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// TestEvaluateComputeNotReady: a container that needs compute on a node
// where CUDA cannot run fails with the cause and the fix (or, with
// requirements.computeNotReady: allow, starts with a warning); one that
// needs no compute is unaffected.
func TestEvaluateComputeNotReady(t *testing.T) {
	hosts := map[string]func(t *testing.T) (*simhost.Host, *inventory.Inventory){
		"no nvidia-uvm": func(t *testing.T) (*simhost.Host, *inventory.Inventory) {
			h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 1, Omit: []string{"uvm"}})
			require.NoError(t, err)
			inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
			require.NoError(t, err)
			return h, inv
		},
		"upgraded without a reboot": func(t *testing.T) (*simhost.Host, *inventory.Inventory) {
			h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 1, DriverVersion: "560.35.03"})
			require.NoError(t, err)
			// The kernel module still loaded is the old one.
			v := filepath.Join(h.Config.ProcRoot, "driver/nvidia/version")
			require.NoError(t, os.Chmod(v, 0o644))
			require.NoError(t, os.WriteFile(v, []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"), 0o444))
			inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
			require.NoError(t, err)
			return h, inv
		},
	}
	tests := []struct {
		name, host, caps string
		allow            bool
		wantErr, warning []string
	}{
		{name: "no uvm, compute", host: "no nvidia-uvm", caps: "compute,utility",
			wantErr: []string{"nvidia-uvm kernel module is not loaded", "modprobe nvidia-uvm"}},
		{name: "no uvm, utility only", host: "no nvidia-uvm", caps: "utility"},
		{name: "no uvm, compute allowed", host: "no nvidia-uvm", caps: "compute", allow: true,
			warning: []string{"nvidia-uvm kernel module is not loaded", "computeNotReady: allow"}},
		{name: "userland 560, kernel 550", host: "upgraded without a reboot", caps: "compute,utility",
			wantErr: []string{"version 560.35.03 but the loaded kernel module is 550.54.14", "reboot the node"}},
		{name: "userland 560, kernel 550, allowed", host: "upgraded without a reboot", caps: "compute", allow: true,
			warning: []string{"upgraded or downgraded without a reboot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, inv := hosts[tt.host](t)
			eng := newEngine(t, h, func(c *config.Config) {
				if tt.allow {
					c.Requirements.ComputeNotReady = "allow"
				}
			})
			a := eng.Decide(engine.Fixed(inv), engine.Query{Input: &request.Input{Namespace: "ns", Pod: "p", Container: "c",
				Env: []string{"NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=" + tt.caps}}})
			r, err := a.Result, a.Err
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				require.True(t, errors.Is(err, inventory.ErrComputeNotReady), err)
				for _, s := range tt.wantErr {
					require.ErrorContains(t, err, s)
				}
				require.Equal(t, engine.OutcomeError, a.Outcome)
				return
			}
			require.NoError(t, err)
			require.True(t, r.Injected())
			if len(tt.warning) == 0 {
				for _, w := range r.Warnings {
					require.NotContains(t, w, "CUDA cannot run")
				}
				return
			}
			require.Len(t, r.Warnings, 1)
			for _, s := range tt.warning {
				require.Contains(t, r.Warnings[0], s)
			}
		})
	}
}
