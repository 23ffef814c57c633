package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gpu-nri.yaml")
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"--dir", filepath.Join(dir, "host"), "--gpus", "3", "--driver-version", "535.161.08",
		"--mig", "1:2", "--capabilities", "compute,utility", "--omit", "firmware", "--config-out", cfg}, &out, &errOut))

	var h simhost.Host
	require.NoError(t, json.Unmarshal(out.Bytes(), &h))
	require.Len(t, h.GPUs, 3)
	require.Len(t, h.GPUs[1].MIG, 2)
	require.Equal(t, "535.161.08", h.DriverVersion)
	require.Empty(t, h.Firmware)

	// The fragment is a valid gpu-nri config reading the simulated host.
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	c, err := config.Parse(data)
	require.NoError(t, err)
	require.Equal(t, h.Config, c.Host)
	require.Equal(t, filepath.Join(dir, "host", "driver"), c.Host.DriverRoot)
}

func TestRunDebianLayout(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"--dir", t.TempDir(), "--gpus", "1", "--layout", "debian"}, &out, &errOut))
	var h simhost.Host
	require.NoError(t, json.Unmarshal(out.Bytes(), &h))
	require.Equal(t, simhost.LayoutDebian, h.Options.Layout)
	target, err := os.Readlink(filepath.Join(h.Config.DriverRoot, "usr/bin/nvidia-smi"))
	require.NoError(t, err)
	require.Equal(t, "/etc/alternatives/nvidia-smi", target)
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no dir", nil, "--dir is required"},
		{"bad mig", []string{"--dir", "x", "--mig", "0-2"}, "not GPU:COUNT"},
		{"bad omission", []string{"--dir", t.TempDir(), "--omit", "nope"}, "unknown omission"},
		{"bad layout", []string{"--dir", t.TempDir(), "--layout", "rhel"}, `unknown layout "rhel"`},
		{"stray args", []string{"--dir", "x", "extra"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.ErrorContains(t, run(tc.args, &out, &errOut), tc.want)
		})
	}
}
