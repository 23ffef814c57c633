//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// otherKernelModule is the kernel module version the mismatch host's
// /proc/driver/nvidia/version claims (its libraries stay the driver's).
const otherKernelModule = "560.35.03"

// s10ComputeNotReady: "injected" means CUDA can run (issue 11 point 5). On
// a node without nvidia-uvm and on a node whose libraries differ from the
// loaded kernel module, a container that needs compute is refused with the
// cause and the fix; one that needs only utility starts; with
// requirements.computeNotReady: allow the compute container starts and
// the audit line carries the warning. Each case runs its own simulated
// host (built beside the suite's, which stays untouched) and its own
// gpu-nri, logging JSON to its own file.
func s10ComputeNotReady(t *testing.T, rt runtimeCase) {
	e := env(t)
	compute := map[string]string{"NVIDIA_VISIBLE_DEVICES": "0", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}

	t.Run("no-uvm", func(t *testing.T) {
		h := secondHost(t, e, "nouvm", "uvm")
		he := withHost(e, h)
		uvmCause := fmt.Sprintf("the nvidia-uvm kernel module is not loaded (no nvidia-uvm in %s, no %s); "+
			"fix: modprobe nvidia-uvm && nvidia-modprobe -u -c 0, and have it loaded at boot (e.g. nvidia-uvm in /etc/modules-load.d/nvidia.conf)",
			filepath.Join(h.Config.ProcRoot, "devices"), filepath.Join(h.Config.DevRoot, "nvidia-uvm"))

		t.Run("compute-refused", func(t *testing.T) {
			startHostPlugin(t, e, h, "nouvm-refuse", "")
			pod := "s10-nouvm-compute"
			msg := e.Pod(t, pod, rt.name, nil).CreateRefused(t, container("compute", "glibc", "echo should-not-run", compute))
			require.Contains(t, msg, fmt.Sprintf("gpu-nri: container %s/%s/compute: CUDA cannot run on this node: %s (requirements.computeNotReady: allow would start it anyway)",
				harness.Namespace, pod, uvmCause))
		})
		t.Run("utility-starts", func(t *testing.T) {
			startHostPlugin(t, e, h, "nouvm-refuse", "")
			res := runOne(t, rt, "s10-nouvm-utility", nil, container("utility", "glibc", probe+`nvidia-smi >/tmp/smi.out 2>&1; echo smi-rc=$?; sed 's/^/smi: /' /tmp/smi.out | head -1
`, map[string]string{"NVIDIA_VISIBLE_DEVICES": "0", "NVIDIA_DRIVER_CAPABILITIES": "utility"}))
			s := parseProbe(res.Output)
			requireGPUs(t, he, s, 0)
			requireSpecGPUs(t, he, res.Spec, 0)
			require.True(t, s.ctl["nvidiactl"], "/dev/nvidiactl\n%s", res.Output)
			require.False(t, s.ctl["nvidia-uvm"], "no /dev/nvidia-uvm on this host\n%s", res.Output)
			require.Contains(t, res.Output, "smi-rc=0\n")
			require.Contains(t, res.Output, fmt.Sprintf("smi: NVIDIA-SMI %s  Driver Version: %s", h.DriverVersion, h.DriverVersion))
		})
		t.Run("compute-allowed", func(t *testing.T) {
			p := startHostPlugin(t, e, h, "nouvm-allow", "allow")
			pod := "s10-nouvm-allowed"
			res := runOne(t, rt, pod, nil, container("compute", "glibc", probe+cudatest, compute))
			s := parseProbe(res.Output)
			requireGPUs(t, he, s, 0)
			requireSpecGPUs(t, he, res.Spec, 0)
			require.False(t, s.ctl["nvidia-uvm"], "no /dev/nvidia-uvm on this host\n%s", res.Output)
			require.Contains(t, res.Output, cudaOK(he, "libcuda.so.1", 1), "the simulated libcuda does not need nvidia-uvm")

			lines := containerLog(t, p, pod, "compute")
			require.Len(t, lines, 2, "one warning and the audit line for the container: %v", lines)
			warning := "CUDA cannot run on this node (allowed by requirements.computeNotReady: allow): " + uvmCause
			require.Equal(t, "warning", lines[0]["level"], "%v", lines[0])
			require.Equal(t, warning, lines[0]["msg"])
			require.Equal(t, "info", lines[1]["level"], "%v", lines[1])
			require.Equal(t, "GPU request granted", lines[1]["msg"])
			for _, l := range lines {
				require.Equal(t, "injected", l["outcome"], "%v", l)
				require.Equal(t, []any{"0=" + h.GPUs[0].UUID}, l["devices"], "%v", l)
				require.Equal(t, "env NVIDIA_VISIBLE_DEVICES", l["where"], "%v", l)
				require.Equal(t, harness.Namespace, l["namespace"], "%v", l)
			}
		})
	})

	t.Run("version-mismatch", func(t *testing.T) {
		h := secondHost(t, e, "mismatch")
		version := filepath.Join(h.Config.ProcRoot, "driver/nvidia/version")
		data, err := os.ReadFile(version)
		require.NoError(t, err)
		rewritten := bytes.Replace(data, []byte("Kernel Module  "+h.DriverVersion+"  "), []byte("Kernel Module  "+otherKernelModule+"  "), 1)
		require.NotEqual(t, data, rewritten, "%s names the driver's version: %s", version, data)
		require.NoError(t, os.WriteFile(version, rewritten, 0o444))
		startHostPlugin(t, e, h, "mismatch", "")
		pod := "s10-mismatch-compute"
		msg := e.Pod(t, pod, rt.name, nil).CreateRefused(t, container("compute", "glibc", "echo should-not-run", compute))
		require.Contains(t, msg, fmt.Sprintf("gpu-nri: container %s/%s/compute: CUDA cannot run on this node: "+
			"the driver's libraries under %s are version %s but the loaded kernel module is %s (%s): the driver was upgraded or downgraded without a reboot; "+
			"fix: reboot the node (or stop every GPU workload and reload the nvidia kernel modules) so that the kernel module matches the libraries; gpu-nri picks the change up by itself "+
			"(requirements.computeNotReady: allow would start it anyway)",
			harness.Namespace, pod, h.Config.DriverRoot, h.DriverVersion, otherKernelModule, version))
	})
}

// secondHost builds a simulated host with the suite's GPUs (no MIG) under
// the suite's directory, leaving omit out; it is removed with the test.
func secondHost(t *testing.T, e *harness.Env, name string, omit ...string) *simhost.Host {
	t.Helper()
	dir := filepath.Join(e.Dir, "host-"+name)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	h, err := simhost.Build(simhost.Options{Dir: dir, GPUs: e.GPUs, RealNodes: true, Omit: omit})
	require.NoError(t, err)
	return h
}

// withHost is e seen through another simulated host (for requireGPUs,
// requireSpecGPUs and cudaOK).
func withHost(e *harness.Env, h *simhost.Host) *harness.Env {
	he := *e
	he.Host = h
	return &he
}

// startHostPlugin stops the suite's gpu-nri and runs one on h instead
// (hook loader, requirements.computeNotReady computeNotReady, JSON log in
// its own fresh file), stopped with the test; the next scenario's
// usePlugin starts the suite's again.
func startHostPlugin(t *testing.T, e *harness.Env, h *simhost.Host, name, computeNotReady string) *harness.Plugin {
	t.Helper()
	usePlugin(t, "")
	cfg := e.PluginConfig("hook")
	cfg.Host = h.Config
	cfg.ComputeNotReady = computeNotReady
	cfg.LogFormat = "json"
	logPath := filepath.Join(e.Dir, "logs", "gpu-nri-"+name+".log")
	require.NoError(t, os.WriteFile(logPath, nil, 0o644))
	p, err := harness.StartPlugin(context.Background(), e.Bins.GPUNRI, filepath.Join(e.Dir, "etc", "gpu-nri-"+name+".yaml"), logPath, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop()) })
	return p
}

// containerLog is p's JSON log lines about container ctr of pod, in order.
func containerLog(t *testing.T, p *harness.Plugin, pod, ctr string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(p.LogPath)
	require.NoError(t, err)
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // not a log line of the daemon (a Go runtime message)
		}
		if l["pod"] == pod && l["container"] == ctr {
			out = append(out, l)
		}
	}
	require.NoError(t, sc.Err())
	return out
}
