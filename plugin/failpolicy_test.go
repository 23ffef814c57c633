package plugin_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// A runtime whose NRI knows failure policies (the module's own NRI, v0.12.5,
// in-process) fails a CreateContainer that gpu-nri did not answer within the
// request timeout, instead of creating the container without gpu-nri: the
// policy Run declares is the one the runtime applies (issue 14, faults 2).
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
	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Injection.CDISpecDirs = nil
	cfg.Plugin.Socket = sock
	log := logrus.New()
	log.SetOutput(io.Discard)
	p, err := plugin.New(plugin.Options{Config: cfg, Logger: log, Metrics: metrics.New("test"),
		HostOptions: []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return p.Ready() == nil }, 10*time.Second, 10*time.Millisecond, "gpu-nri registers")

	req := &nri.CreateContainerRequest{
		Pod:       &api.PodSandbox{Id: "pod0", Name: "pod0", Uid: "uid0", Namespace: "default"},
		Container: &api.Container{Id: "ctr0", PodSandboxId: "pod0", Name: "ctr0", Env: []string{"NVIDIA_VISIBLE_DEVICES=0"}},
	}
	resp, err := r.CreateContainer(context.Background(), req)
	require.NoError(t, err, "answered in time")
	require.NotEmpty(t, resp.GetAdjust().GetLinux().GetDevices(), "the in-time answer gives the container its GPU")

	// Every request now times out before gpu-nri can answer it.
	nri.SetPluginRequestTimeout(time.Nanosecond)
	t.Cleanup(func() { nri.SetPluginRequestTimeout(nri.DefaultPluginRequestTimeout) })
	_, err = r.CreateContainer(context.Background(), req)
	require.Error(t, err, "fail_request: the timed-out request fails, the container is not created without gpu-nri")
	// Two exact errors are possible, both a failed request: the runtime's
	// own (its deadline passed before gpu-nri's answer, and fail_request
	// turns the timeout into a failure), or, when gpu-nri's reply wins the
	// race against a 1 ns deadline, gpu-nri's late answer (it saw the
	// deadline passed and refused to grant anything).
	if msg := err.Error(); !strings.Contains(msg, "failed to handle CreateContainer request") {
		require.Contains(t, msg, "past the runtime's deadline for the request", "neither the runtime's timeout failure nor gpu-nri's late answer: %v", err)
	}
}
