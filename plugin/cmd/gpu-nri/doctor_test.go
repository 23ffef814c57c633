package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/doctor"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

func TestDoctorCommand(t *testing.T) {
	h, flags := simHost(t, simhost.Options{GPUs: 2})
	deps := []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}
	none := filepath.Join(t.TempDir(), "none")
	args := append([]string{"--containerd-config", none, "--crio-config", none}, flags...)

	// No socket, no hook binary at the default path: findings, exit 1.
	out, _, err := execute(newDoctorCmd(deps...), args...)
	require.ErrorIs(t, err, errUnhealthy)
	require.Contains(t, out, "[ok]   driver       NVIDIA driver "+h.DriverVersion+", 2 GPU(s)")
	require.Contains(t, out, "[FAIL] connection")
	require.Contains(t, out, "fix: ")

	out, _, err = execute(newDoctorCmd(deps...), append(args, "-o", "json")...)
	require.ErrorIs(t, err, errUnhealthy)
	var r doctor.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.False(t, r.Healthy)
	require.NotEmpty(t, r.Findings)

	_, _, err = execute(newDoctorCmd(deps...), append(args, "-o", "yaml")...)
	require.ErrorContains(t, err, "want text or json")
}
