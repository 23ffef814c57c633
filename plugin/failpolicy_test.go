package plugin_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// gateStater stats device nodes through inner; once closed is armed, every
// call waits until release is closed (a handler stalled on the host, as a
// frozen gpu-nri is to the runtime), after telling entered.
type gateStater struct {
	inner   inventory.NodeStater
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *gateStater) StatNode(p string) (inventory.NodeInfo, error) {
	if g.armed.Load() {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.release
	}
	return g.inner.StatNode(p)
}

// A runtime whose NRI knows failure policies (the module's own NRI, v0.12.5,
// in-process) fails a CreateContainer that gpu-nri did not answer within the
// request timeout, instead of creating the container without gpu-nri: the
// policy Run declares is the one the runtime applies (issue 14, faults 2).
// The handler is held (a third-party CDI node without major/minor is stat'ed
// on the request path, through a stater that blocks) until the runtime has
// answered, so the timeout always wins.
func TestFailurePolicyFailsTheTimedOutRequest(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "gpu-nri-fp-") // a unix socket path must stay short
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "nri.sock")

	r, err := nri.New("fake-runtime", "v0.0.1",
		func(ctx context.Context, cb nri.SyncCB) error { _, err := cb(ctx, nil, nil); return err },
		func(context.Context, []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) { return nil, nil },
		nri.WithSocketPath(sock), nri.WithPluginPath(filepath.Join(dir, "plugins")), nri.WithPluginConfigPath(filepath.Join(dir, "conf")))
	require.NoError(t, err)
	require.NoError(t, r.Start())
	t.Cleanup(r.Stop)

	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: 2})
	require.NoError(t, err)
	specDir := filepath.Join(dir, "cdi")
	require.NoError(t, os.MkdirAll(specDir, 0o755))
	spec := fmt.Sprintf("cdiVersion: \"0.6.0\"\nkind: example.com/slow\ndevices:\n- name: d0\n  containerEdits:\n    deviceNodes:\n    - path: /dev/slow0\n      hostPath: %s\n",
		filepath.Join(h.Config.DevRoot, "nvidia0"))
	require.NoError(t, os.WriteFile(filepath.Join(specDir, "slow.yaml"), []byte(spec), 0o644))
	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Injection.CDISpecDirs = []string{specDir}
	cfg.Plugin.Socket = sock
	log := logrus.New()
	log.SetOutput(io.Discard)
	gate := &gateStater{inner: h.Stater(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	p, err := plugin.New(plugin.Options{Config: cfg, Logger: log, Metrics: metrics.New("test"),
		HostOptions: []hostsrc.Option{hostsrc.WithNodeStater(gate)}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	releaseGate := func() { once.Do(func() { close(gate.release) }) }
	t.Cleanup(func() { releaseGate(); cancel(); <-done })
	require.Eventually(t, func() bool { return p.Ready() == nil }, 10*time.Second, 10*time.Millisecond, "gpu-nri registers")

	pod := &api.PodSandbox{Id: "pod0", Name: "pod0", Uid: "uid0", Namespace: "default"}
	resp, err := r.CreateContainer(context.Background(), &nri.CreateContainerRequest{Pod: pod,
		Container: &api.Container{Id: "ctr0", PodSandboxId: "pod0", Name: "ctr0", Env: []string{"NVIDIA_VISIBLE_DEVICES=0"}}})
	require.NoError(t, err, "answered in time")
	require.NotEmpty(t, resp.GetAdjust().GetLinux().GetDevices(), "the in-time answer gives the container its GPU")

	nri.SetPluginRequestTimeout(200 * time.Millisecond)
	t.Cleanup(func() { nri.SetPluginRequestTimeout(nri.DefaultPluginRequestTimeout) })
	gate.armed.Store(true)
	_, err = r.CreateContainer(context.Background(), &nri.CreateContainerRequest{Pod: pod,
		Container: &api.Container{Id: "ctr1", PodSandboxId: "pod0", Name: "ctr1", CDIDevices: []*api.CDIDevice{{Name: "example.com/slow=d0"}}}})
	select {
	case <-gate.entered:
	default:
		t.Fatal("the request never reached gpu-nri's handler")
	}
	require.ErrorContains(t, err, "failed to handle CreateContainer request", "fail_request: the timed-out request fails")
}
