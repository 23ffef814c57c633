package plugin_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// A runtime that accepts gpu-nri's registration but does not synchronize
// it (containerd 2.x's plugin-sync deadlock holds its accept loop exactly
// there) gets an error in gpu-nri's log after plugin.syncTimeout, and
// /readyz says what is missing; once the runtime synchronizes, gpu-nri is
// ready and says how long the runtime took. The runtime is the module's
// own NRI adaptation over a real socket, its sync function held on a
// channel.
func TestRuntimeThatDoesNotSynchronizeIsReported(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gpu-nri-sync-") // a unix socket path must stay short
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "nri.sock")

	release := make(chan struct{})
	var hold atomic.Bool // Start syncs the (no) pre-registered plugins first
	r, err := nri.New("fake-runtime", "v0.0.1",
		func(ctx context.Context, cb nri.SyncCB) error {
			if hold.Load() {
				<-release
			}
			_, err := cb(ctx, nil, nil)
			return err
		},
		func(context.Context, []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) { return nil, nil },
		nri.WithSocketPath(sock), nri.WithPluginPath(filepath.Join(dir, "plugins")), nri.WithPluginConfigPath(filepath.Join(dir, "conf")))
	require.NoError(t, err)
	released := false
	require.NoError(t, r.Start())
	hold.Store(true)
	t.Cleanup(func() {
		if !released {
			close(release)
		}
		r.Stop()
	})

	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 1})
	require.NoError(t, err)
	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Plugin.Socket = sock
	cfg.Plugin.SyncTimeout = config.Duration(300 * time.Millisecond)
	log := logrus.New()
	log.SetOutput(io.Discard)
	hook := logtest.NewLocal(log)
	p, err := plugin.New(plugin.Options{Config: cfg, Logger: log, Metrics: metrics.New("test"), HostOptions: []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	overdue := func() *logrus.Entry {
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.ErrorLevel && strings.Contains(e.Message, "has not synchronized") {
				return e
			}
		}
		return nil
	}
	require.Eventually(t, func() bool { return overdue() != nil }, 10*time.Second, 20*time.Millisecond,
		"an error once the runtime is past plugin.syncTimeout")
	e := overdue()
	require.Contains(t, e.Message, "containerd 2.x's plugin-sync deadlock")
	require.Contains(t, e.Message, "docs/deploy.md")
	require.NotEmpty(t, e.Data["waited"])
	err = p.Ready()
	require.Error(t, err)
	require.Contains(t, err.Error(), "connected to the container runtime")
	require.Contains(t, err.Error(), "has not synchronized gpu-nri")

	close(release)
	released = true
	require.Eventually(t, func() bool { return p.Ready() == nil }, 10*time.Second, 10*time.Millisecond, "ready once synchronized")
	var registered *logrus.Entry
	for _, e := range hook.AllEntries() {
		if e.Message == "registered with the container runtime" {
			registered = e
		}
	}
	require.NotNil(t, registered)
	require.Greater(t, registered.Data["sync_wait_ms"], 300.0, "the wait is in the log line")
	n := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.ErrorLevel {
			n++
		}
	}
	require.Equal(t, 1, n, "one error per connection, none once synchronized")
}
