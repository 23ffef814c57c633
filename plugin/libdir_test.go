package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/nritest"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// injection.libraryDir through the real plugin and NRI: the first containers
// of a set may get per-file mounts, then one directory mount whose files bind
// the host's libraries; a driver upgrade gives a new directory bound to the
// new files, and the daemon's end leaves nothing mounted.
func TestScenarioLibraryDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the library directory's mounts need root (CI runs as root)")
	}
	for _, loader := range config.Loaders() {
		t.Run(string(loader), func(t *testing.T) {
			tmp := t.TempDir()
			dir, root := filepath.Join(tmp, "host"), filepath.Join(tmp, "lib")
			h, err := simhost.Build(simhost.Options{Dir: dir, GPUs: 2})
			require.NoError(t, err)
			m := metrics.New("test")
			d := nritest.Start(t, h, func(c *config.Config) {
				c.Injection.Loader = loader
				c.Injection.LibraryDir = root
				c.Host.RefreshInterval = config.Duration(50 * time.Millisecond)
			}, func(o *plugin.Options) { o.Metrics = m })
			try := func(env ...string) (*api.ContainerAdjustment, error) {
				pod := &api.PodSandbox{Id: "p", Name: "p", Namespace: "default"}
				ctr := &api.Container{Id: "c", PodSandboxId: "p", Name: "c", Env: append([]string{"NVIDIA_VISIBLE_DEVICES=0"}, env...)}
				return d.CreateContainer(pod, ctr)
			}
			create := func(env ...string) *api.ContainerAdjustment {
				adj, err := try(env...)
				require.NoError(t, err)
				return adj
			}
			dirMount := func(adj *api.ContainerAdjustment) string {
				for _, m := range adj.GetMounts() {
					if m.Destination == hookproto.HooklessDir {
						return m.Source
					}
				}
				return ""
			}
			var adj *api.ContainerAdjustment
			require.Eventually(t, func() bool { adj = create(); return dirMount(adj) != "" }, 10*time.Second, 20*time.Millisecond)
			src := dirMount(adj)
			require.True(t, strings.HasPrefix(src, root+"/"), src)
			for _, m := range adj.GetMounts() {
				require.NotContains(t, m.Destination, "/libcuda.so", "libcuda comes in the directory only")
				require.NotContains(t, m.Destination, "/libnvidia-ml.so")
			}
			require.Contains(t, mountsOf(adj), "/usr/bin/nvidia-smi", "binaries keep their mounts")
			var in, host unix.Stat_t
			require.NoError(t, unix.Stat(filepath.Join(src, "libcuda.so.1"), &in))
			require.NoError(t, unix.Stat(hostLib(t, h, "libcuda.so.1"), &host))
			require.Equal(t, host.Ino, in.Ino, "the directory binds the host's libcuda")
			switch loader {
			case config.LoaderHook:
				require.Len(t, adj.GetHooks().GetCreateContainer(), 1)
				o, err := hookproto.ParseArgs(adj.GetHooks().GetCreateContainer()[0].Args[2:])
				require.NoError(t, err)
				require.Equal(t, hookproto.HooklessDir, o.Folders[0])
				require.Empty(t, o.Links, "the directory has its links")
			case config.LoaderHookless:
				require.Empty(t, adj.GetHooks().GetCreateContainer())
				require.Contains(t, envOf(adj), "LD_LIBRARY_PATH="+hookproto.HooklessDir)
			}
			// NVIDIA_DRIVER_CAPABILITIES=all is built before any container asks.
			require.NotEmpty(t, dirMount(create("NVIDIA_DRIVER_CAPABILITIES=all")))
			// A set nobody asked for yet: per-file mounts (counted), then the directory.
			require.Empty(t, dirMount(create("NVIDIA_DRIVER_CAPABILITIES=utility")))
			files := libraryMounts(t, m, "files")
			require.GreaterOrEqual(t, files, 1.0)
			require.Eventually(t, func() bool { return dirMount(create("NVIDIA_DRIVER_CAPABILITIES=utility")) != "" }, 5*time.Second, 20*time.Millisecond)
			require.GreaterOrEqual(t, libraryMounts(t, m, "directory"), 3.0)

			h2, err := simhost.Build(simhost.Options{Dir: dir, GPUs: 2, DriverVersion: "570.86.15"})
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				adj, err := try() // fails while the files are being replaced (never GPU-less)
				if err != nil {
					return false
				}
				s := dirMount(adj)
				if s == "" || s == src {
					return false
				}
				var st unix.Stat_t
				return unix.Stat(filepath.Join(s, "libcuda.so."+h2.DriverVersion), &st) == nil
			}, 10*time.Second, 20*time.Millisecond, "a new driver, a new directory with its files")

			d.Stop()
			ents, err := os.ReadDir(root)
			require.NoError(t, err)
			require.Empty(t, ents, "the daemon's end detaches its directories")
		})
	}
}

// libraryMounts reads gpu_nri_library_mounts_total{how}.
func libraryMounts(t *testing.T, m *metrics.Metrics, how string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "gpu_nri_library_mounts_total" {
			for _, mt := range mf.GetMetric() {
				if mt.GetLabel()[0].GetValue() == how {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no gpu_nri_library_mounts_total{how=%q}", how)
	return 0
}

func hostLib(t *testing.T, h *simhost.Host, soname string) string {
	t.Helper()
	for _, f := range h.Libraries {
		if f.SONAME == soname && !f.Lib32 {
			return f.HostPath
		}
	}
	t.Fatalf("no %s on the simulated host", soname)
	return ""
}

func mountsOf(adj *api.ContainerAdjustment) map[string]string {
	out := map[string]string{}
	for _, m := range adj.GetMounts() {
		out[m.Destination] = m.Source
	}
	return out
}

func envOf(adj *api.ContainerAdjustment) []string {
	var out []string
	for _, e := range adj.GetEnv() {
		out = append(out, e.Key+"="+e.Value)
	}
	return out
}
