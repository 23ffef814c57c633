package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/explain"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

func TestExplainCommand(t *testing.T) {
	h, flags := simHost(t, simhost.Options{GPUs: 2})
	deps := []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}
	run := func(args ...string) (string, string, error) {
		return execute(newExplainCmd(deps...), append(args, flags...)...)
	}

	out, _, err := run("--env", "NVIDIA_VISIBLE_DEVICES=1", "--env", "NVIDIA_DRIVER_CAPABILITIES=compute,utility")
	require.NoError(t, err)
	for _, s := range []string{"Container  default/explain/main", "Outcome    injected", "\nRequest\n", "env NVIDIA_VISIBLE_DEVICES: 1",
		"capabilities   compute, utility (from env NVIDIA_DRIVER_CAPABILITIES)", "\nDecision\n",
		"granted        env NVIDIA_VISIBLE_DEVICES (source env) by policy.sources.env", "\nDevices\n", "selected       1=" + h.GPUs[1].UUID,
		"/dev/nvidia1", "c 195:1", "\nMounts\n", "/usr/lib/x86_64-linux-gnu/libcuda.so." + h.DriverVersion + " <- ",
		"\nEnv\n  NVIDIA_VISIBLE_DEVICES=void", "\nHooks\n  createContainer /usr/local/bin/gpu-nri-hook (timeout 10s)", "\nWarnings\n  (none)"} {
		require.Contains(t, out, s)
	}
	require.NotContains(t, out, "/dev/nvidia0 ")

	// Pod annotation, JSON output, OCI diff.
	out, _, err = run("--pod", "p", "--container", "c", "--annotation", "gpus.gpu-nri.io/container.c=0", "-o", "json", "--oci")
	require.NoError(t, err)
	var rep explain.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, engine.OutcomeInjected, rep.Outcome)
	require.Equal(t, "annotation", rep.Decision.Source)
	require.NotNil(t, rep.Adjustment)
	require.Contains(t, rep.OCI.Diff, `+        "path": "/dev/nvidia0",`)
	out, _, err = run("--env", "NVIDIA_VISIBLE_DEVICES=0", "--oci")
	require.NoError(t, err)
	require.Contains(t, out, "OCI spec diff")
	require.Contains(t, out, "+++ after/config.json")

	// CRI JSON as crictl takes it.
	dir := t.TempDir()
	ctrJSON := `{"metadata":{"name":"cuda"},"envs":[{"key":"NVIDIA_DRIVER_CAPABILITIES","value":"utility"}],
	  "mounts":[{"container_path":"/data","host_path":"/srv/data"}],"CDI_devices":[{"name":"nvidia.com/gpu=1"}]}`
	podJSON := `{"metadata":{"name":"trainer","uid":"u1","namespace":"team-a"},"annotations":{"a":"b"}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ctr.json"), []byte(ctrJSON), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pod.json"), []byte(podJSON), 0o644))
	out, _, err = run("--container-config", filepath.Join(dir, "ctr.json"), "--pod-config", filepath.Join(dir, "pod.json"), "-o", "yaml")
	require.NoError(t, err)
	require.Contains(t, out, "container: team-a/trainer/cuda")
	require.Contains(t, out, "source: cdi-devices")
	require.Contains(t, out, "path: /dev/nvidia1")

	// Not a GPU container.
	out, _, err = run("--env", "PATH=/bin")
	require.NoError(t, err)
	require.Contains(t, out, "Outcome    not-gpu")

	// A request the daemon fails: the report on stdout, non-zero exit.
	out, _, err = run("--env", "NVIDIA_VISIBLE_DEVICES=5")
	require.Error(t, err)
	require.Contains(t, out, "Outcome    error")
	require.Contains(t, out, `NVIDIA_VISIBLE_DEVICES "5": no such device on this host`)

	// Bad flags.
	for _, args := range [][]string{{"--env", "NOEQUALS"}, {"--mount", "nocolon"}, {"-o", "xml"}, {"--container-config", filepath.Join(dir, "missing.json")}} {
		_, _, err := run(args...)
		require.Error(t, err, args)
	}
}

// TestExplainMIGByUUID: explain, reading the driver's facts as the daemon
// does, resolves a MIG device asked for by UUID (lower case, mixed with the
// GPU:MIG form) to the same device as the daemon and cdi generate.
func TestExplainMIGByUUID(t *testing.T) {
	h, flags := simHost(t, simhost.Options{GPUs: 2, MIG: map[int]int{1: 2}})
	flags = flags[:len(flags)-1] // drop --no-nvml
	deps := []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}
	m1 := h.GPUs[1].MIG[1]
	out, _, err := execute(newExplainCmd(deps...), append([]string{"--env", "NVIDIA_VISIBLE_DEVICES=1:0," + strings.ToLower(m1.UUID)}, flags...)...)
	require.NoError(t, err)
	require.Contains(t, out, "Outcome    injected")
	require.Contains(t, out, "/dev/nvidia-caps/nvidia-cap"+strconv.Itoa(m1.GICapMinor))
	require.Contains(t, out, "/dev/nvidia-caps/nvidia-cap"+strconv.Itoa(h.GPUs[1].MIG[0].CICapMinor))
}
