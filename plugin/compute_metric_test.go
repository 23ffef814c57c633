package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/nritest"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// gpu_nri_compute_ready follows the inventory the daemon answers from: 1 on
// a node where CUDA can run, 0 once nvidia-uvm is unloaded (the node that
// requirements.computeNotReady: allow would let containers start on).
func TestComputeReadyMetricFollowsRefreshes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "host")
	h, err := simhost.Build(simhost.Options{Dir: dir, GPUs: 1})
	require.NoError(t, err)
	m := metrics.New("test")
	nritest.Start(t, h, func(c *config.Config) {
		c.Host.RefreshInterval = config.Duration(50 * time.Millisecond)
		c.Requirements.ComputeNotReady = "allow"
	}, func(o *plugin.Options) { o.Metrics = m })
	gauge := func() float64 {
		mfs, err := m.Registry().Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "gpu_nri_compute_ready" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no gpu_nri_compute_ready")
		return -1
	}
	require.Eventually(t, func() bool { return gauge() == 1 }, 10*time.Second, 20*time.Millisecond, "a healthy node is compute-ready")

	// Unload nvidia-uvm: its /proc/devices line and its nodes go.
	devices := filepath.Join(h.Config.View(h.Config.ProcRoot), "devices")
	b, err := os.ReadFile(devices)
	require.NoError(t, err)
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "nvidia-uvm") {
			kept = append(kept, l)
		}
	}
	require.NoError(t, os.WriteFile(devices, []byte(strings.Join(kept, "\n")), 0o644))
	for _, n := range []string{"nvidia-uvm", "nvidia-uvm-tools"} {
		_ = os.Remove(filepath.Join(h.Config.View(h.Config.DevRoot), n))
	}
	require.Eventually(t, func() bool { return gauge() == 0 }, 10*time.Second, 20*time.Millisecond, "no nvidia-uvm: not compute-ready")
}
