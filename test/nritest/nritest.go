// Package nritest runs the real gpu-nri plugin behind a real in-process NRI
// runtime (github.com/containerd/nri/pkg/adaptation: the code containerd
// and CRI-O embed) over a unix socket, for tests of the daemon and of the
// tools that must agree with it. Test-only: nothing in the gpu-nri binary
// imports it.
package nritest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// The runtime the in-process adaptation pretends to be.
const (
	RuntimeName    = "containerd"
	RuntimeVersion = "v2.4.2"
)

// Logs is a goroutine-safe log sink.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Reset forgets what was logged so far.
func (l *Logs) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// Lines decodes what was logged so far, one JSON object per line (the
// daemon logs with log.format json).
func (l *Logs) Lines() ([]map[string]any, error) {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("log line %q: %w", line, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// HostOptions read the simulated host h: its device node table, no NVML.
func HostOptions(h *simhost.Host) []hostsrc.Option {
	return []hostsrc.Option{hostsrc.WithNodeStater(h.Stater()), hostsrc.WithoutFacts()}
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Daemon is a running plugin registered with an in-process runtime.
type Daemon struct {
	Runtime *adaptation.Adaptation
	Plugin  *plugin.Plugin
	Config  *config.Config
	Host    *simhost.Host
	Logs    *Logs
	stop    func()
}

// Stop ends the plugin's Run and waits for it (also done at test cleanup).
func (d *Daemon) Stop() { d.stop() }

// NewRuntime starts an in-process NRI runtime (RuntimeName, RuntimeVersion)
// that listens for external plugins on sock, with no pre-registered plugins
// (their directories under dir) and no containers to synchronize. The
// caller stops it.
func NewRuntime(dir, sock string) (*adaptation.Adaptation, error) {
	r, err := adaptation.New(RuntimeName, RuntimeVersion,
		func(ctx context.Context, cb adaptation.SyncCB) error { _, err := cb(ctx, nil, nil); return err },
		func(context.Context, []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
			return nil, nil
		},
		adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
		adaptation.WithPluginConfigPath(filepath.Join(dir, "conf.d")),
		adaptation.WithSocketPath(sock))
	if err != nil {
		return nil, fmt.Errorf("nritest: %w", err)
	}
	if err := r.Start(); err != nil {
		return nil, fmt.Errorf("nritest: %w", err)
	}
	return r, nil
}

// Start configures gpu-nri for h (hook at /opt/gpu-nri/bin/gpu-nri, a
// private CDI spec dir, no background polling, JSON logs at debug into
// Logs), lets mutate change the
// configuration and plugOpts the plugin's options (e.g. Metrics), starts the runtime and the plugin, and waits until the
// runtime has synchronized the plugin. Everything stops at test cleanup.
func Start(t testing.TB, h *simhost.Host, mutate func(*config.Config), plugOpts ...func(*plugin.Options)) *Daemon {
	t.Helper()
	dir := t.TempDir()
	// Short socket path: unix sockets are limited to 108 bytes.
	sockDir, err := os.MkdirTemp("", "nri")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "nri.sock")

	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Host.RefreshInterval = 0
	cfg.Plugin.Socket = sock
	cfg.Plugin.ReconnectMin = config.Duration(50 * time.Millisecond)
	cfg.Injection.HookPath = "/opt/gpu-nri/bin/gpu-nri"
	cfg.Injection.CDISpecDirs = []string{filepath.Join(dir, "cdi")}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "cdi"), 0o755))
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())

	r, err := NewRuntime(dir, sock)
	require.NoError(t, err)
	t.Cleanup(r.Stop)

	logs := &Logs{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.DebugLevel)
	po := plugin.Options{Config: cfg, Logger: log, HostOptions: HostOptions(h)}
	for _, o := range plugOpts {
		o(&po)
	}
	p, err := plugin.New(po)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	require.Eventually(t, func() bool { return p.Ready() == nil }, 10*time.Second, 10*time.Millisecond, "plugin never registered")
	d := &Daemon{Runtime: r, Plugin: p, Config: cfg, Host: h, Logs: logs, stop: stop}
	// The plugin is ready once it answered Synchronize, but the runtime only
	// sends it requests after it has processed that answer: probe with a
	// GPU request until the plugin visibly takes part (an adjustment or its
	// refusal), then forget the probes' log lines.
	require.Eventually(t, func() bool {
		adj, err := d.CreateContainer(&api.PodSandbox{Id: "probe", Name: "probe", Namespace: "probe"},
			&api.Container{Id: "probe", PodSandboxId: "probe", Name: "probe", Env: []string{"NVIDIA_VISIBLE_DEVICES=none"}})
		if err != nil { // a refusal counts only when it is gpu-nri's own
			return strings.Contains(err.Error(), "gpu-nri: container probe/probe/probe")
		}
		return len(adj.GetLinux().GetDevices()) > 0
	}, 10*time.Second, 10*time.Millisecond, "the runtime never routed a request to the plugin")
	logs.Reset()
	return d
}

// CreateContainer sends one CreateContainer through the runtime and returns
// the merged adjustment. The runtime updates ctr with the adjustments: pass
// fresh objects to anything that must see the request as the plugin did.
func (d *Daemon) CreateContainer(pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rpl, err := d.Runtime.CreateContainer(ctx, &api.CreateContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return nil, err
	}
	return rpl.GetAdjust(), nil
}
