package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/nritest"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// The create path's warm-up, which Run does before it registers, decides a
// synthetic request for all GPUs on a host that has them, and must leave
// no trace: no audit line, nothing counted, no device handed out. (What it
// saves is measured, by nrirtt's cold mode: docs/benchmarks.md.)
func TestWarmUpLeavesNoTrace(t *testing.T) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 2})
	require.NoError(t, err)
	sockDir, err := os.MkdirTemp("", "nri")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })

	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Host.RefreshInterval = 0
	cfg.Plugin.Socket = filepath.Join(sockDir, "nobody.sock") // no runtime: Run warms up, then retries the connection
	cfg.Plugin.ReconnectMin = config.Duration(50 * time.Millisecond)
	cfg.Injection.CDISpecDirs = []string{t.TempDir()}
	require.NoError(t, cfg.Validate())

	logs := &nritest.Logs{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.DebugLevel)
	m := metrics.New("test")
	p, err := plugin.New(plugin.Options{Config: cfg, Logger: log, Metrics: m, HostOptions: nritest.HostOptions(h)})
	require.NoError(t, err)
	require.NotNil(t, p.Inventory(), "the warm-up must have GPUs to decide for")
	require.Len(t, p.Inventory().GPUs, 2)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// Run has warmed up once it tries to connect (and fails: nobody listens).
	require.Eventually(t, func() bool {
		lines, err := logs.Lines()
		require.NoError(t, err)
		return slices.ContainsFunc(lines, func(l map[string]any) bool { _, ok := l["error"]; return ok })
	}, 10*time.Second, 10*time.Millisecond, "Run never tried to connect: %s", logs.String())
	cancel()
	require.NoError(t, <-done)

	lines, err := logs.Lines()
	require.NoError(t, err)
	for _, l := range lines {
		msg, _ := l["msg"].(string)
		require.NotContains(t, auditMessages, msg, "the warm-up logged a decision: %v", l)
		require.NotContains(t, l, "devices", "the warm-up logged devices: %v", l)
	}
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		switch mf.GetName() {
		case "gpu_nri_containers_total", "gpu_nri_devices_injected_total", "gpu_nri_library_mounts_total":
			for _, mt := range mf.GetMetric() {
				require.Zero(t, mt.GetCounter().GetValue(), "the warm-up was counted: %s %v", mf.GetName(), mt.GetLabel())
			}
		case "gpu_nri_create_container_seconds":
			for _, mt := range mf.GetMetric() {
				require.Zero(t, mt.GetHistogram().GetSampleCount(), "the warm-up was timed as a create")
			}
		}
	}
}
