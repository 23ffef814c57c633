package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/libdir"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// explain with injection.libraryDir shows what the daemon injects: the
// directory once the daemon has built it, the per-file mounts before.
func TestExplainLibraryDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the library directory's mounts need root (CI runs as root)")
	}
	h, flags := simHost(t, simhost.Options{GPUs: 1})
	root := filepath.Join(t.TempDir(), "lib")
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("injection:\n  libraryDir: "+root+"\n"), 0o644))
	deps := []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}
	explainOut := func() string {
		out, _, err := execute(newExplainCmd(deps...), append([]string{"--config", cfgPath, "--env", "NVIDIA_VISIBLE_DEVICES=0"}, flags...)...)
		require.NoError(t, err)
		return out
	}
	require.Contains(t, explainOut(), "/usr/lib/x86_64-linux-gnu/libcuda.so."+h.DriverVersion+" <- ", "nothing built yet: per-file mounts")

	// The daemon's side: a manager on the same root and the same host.
	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Injection.LibraryDir = root
	hs, err := hostsrc.Open(cfg, hostsrc.WithNodeStater(h.Stater()), hostsrc.WithoutFacts())
	require.NoError(t, err)
	m, err := libdir.New(root, cfg.Host.View, libdir.WithSets([]inventory.Capability{inventory.Utility, inventory.Compute}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx, hs.Inventory, func(err error) { t.Error(err) }) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool {
		return m.LibraryDir(hs.Inventory(), []inventory.Capability{inventory.Compute, inventory.Utility}) != nil
	}, 5*time.Second, 10*time.Millisecond)

	out := explainOut()
	require.Contains(t, out, "/usr/local/nvidia/lib64 <- "+root+"/")
	require.NotContains(t, out, "libcuda.so."+h.DriverVersion+" <- ")
	require.Equal(t, 1, strings.Count(out, " <- "+root+"/"))
}
