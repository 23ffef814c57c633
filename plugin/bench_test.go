package plugin_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

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

// cudaEnv is a typical CUDA image environment (about 30 variables).
func cudaEnv(visible string) []string {
	env := []string{"PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"NVARCH=x86_64", "NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471",
		"NV_CUDA_CUDART_VERSION=12.4.99-1", "CUDA_VERSION=12.4.1", "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
		"NVIDIA_VISIBLE_DEVICES=" + visible, "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "NV_CUDA_LIB_VERSION=12.4.1-1",
		"NV_NVTX_VERSION=12.4.127-1", "NV_LIBNPP_VERSION=12.2.5.30-1", "NV_LIBCUSPARSE_VERSION=12.3.1.170-1",
		"NV_LIBCUBLAS_VERSION=12.4.5.8-1", "NV_LIBNCCL_PACKAGE_VERSION=2.21.5-1", "NCCL_VERSION=2.21.5-1",
		"HOSTNAME=trainer-0", "HOME=/root", "TERM=xterm", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1", "PIP_NO_CACHE_DIR=1",
		"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_PORT=tcp://10.96.0.1:443",
		"MASTER_ADDR=trainer-0", "MASTER_PORT=29500", "WORLD_SIZE=8", "RANK=0", "OMP_NUM_THREADS=8", "TZ=UTC"}
	return env
}

// BenchmarkCreateContainer measures the plugin's CreateContainer handler on
// an 8-GPU host with the full simulated driver library set, without the
// socket (the runtime's ttrpc cost is the same for every plugin).
func BenchmarkCreateContainer(b *testing.B) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(b.TempDir(), "host"), GPUs: 8})
	require.NoError(b, err)
	for _, loader := range config.Loaders() {
		p := benchPlugin(b, h, loader)
		pod := &api.PodSandbox{Id: "p", Name: "trainer", Namespace: "ml"}
		for _, tc := range []struct{ name, visible string }{
			{"not-gpu", "void"}, {"2-gpus", "0,2"}, {"all-8", "all"},
		} {
			env := cudaEnv(tc.visible)
			if tc.visible == "void" {
				env = env[:6] // a non-CUDA container: no NVIDIA_* request
			}
			ctr := &api.Container{Id: "c", Name: "main", Env: env}
			b.Run(fmt.Sprintf("%s/%s", loader, tc.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					adj, _, err := p.CreateContainer(context.Background(), pod, ctr)
					if err != nil {
						b.Fatal(err)
					}
					if tc.visible != "void" && adj == nil {
						b.Fatal("no adjustment")
					}
				}
			})
		}
	}
}

// benchPlugin is a configured plugin for h with the given loader: no CDI
// spec dirs, logs discarded, driver facts as a Tesla Hopper host reports them.
func benchPlugin(b *testing.B, h *simhost.Host, loader config.Loader) *plugin.Plugin {
	b.Helper()
	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Injection.Loader = loader
	cfg.Injection.CDISpecDirs = nil
	log := logrus.New()
	log.SetOutput(io.Discard)
	p, err := plugin.New(plugin.Options{Config: cfg, Logger: log, Metrics: metrics.New("bench"), HostOptions: []hostsrc.Option{
		hostsrc.WithNodeStater(h.Stater()),
		hostsrc.WithGPUFacts(func(inv *inventory.Inventory) error {
			inv.CUDAVersion = h.CUDAVersion
			for i := range inv.GPUs {
				inv.GPUs[i].Brand, inv.GPUs[i].Arch = "tesla", "9.0"
			}
			return nil
		})}})
	require.NoError(b, err)
	_, err = p.Configure(context.Background(), "", "containerd", "v2.4.2")
	require.NoError(b, err)
	return p
}

// scalePlugin builds a hooked plugin for a host of gpus GPUs whose last
// migGPUs GPUs are in MIG mode with 7 MIG devices each (an H100/H200 node
// cut into 1g slices).
func scalePlugin(b *testing.B, gpus, migGPUs int) (*plugin.Plugin, *simhost.Host) {
	b.Helper()
	mig := map[int]int{}
	for g := gpus - migGPUs; g < gpus; g++ {
		mig[g] = 7
	}
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(b.TempDir(), "host"), GPUs: gpus, MIG: mig})
	require.NoError(b, err)
	return benchPlugin(b, h, config.LoaderHook), h
}

// BenchmarkCreateContainerScale: the handler on 8- and 16-GPU hosts with
// MIG (2 resp. 4 GPUs in MIG mode, 7 slices each), for one whole GPU, two
// MIG slices of one GPU, and all (every whole GPU and every slice).
func BenchmarkCreateContainerScale(b *testing.B) {
	for _, host := range []struct{ gpus, migGPUs int }{{8, 2}, {16, 4}} {
		p, _ := scalePlugin(b, host.gpus, host.migGPUs)
		firstMIG := host.gpus - host.migGPUs
		pod := &api.PodSandbox{Id: "p", Name: "trainer", Namespace: "ml"}
		for _, tc := range []struct{ name, visible string }{
			{"1-gpu", "0"},
			{"2-mig", fmt.Sprintf("%d:0,%d:1", firstMIG, firstMIG)},
			{"all", "all"},
		} {
			ctr := &api.Container{Id: "c", Name: "main", Env: cudaEnv(tc.visible)}
			b.Run(fmt.Sprintf("%d-gpus/%s", host.gpus, tc.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if adj, _, err := p.CreateContainer(context.Background(), pod, ctr); err != nil || adj == nil {
						b.Fatalf("adjustment %v, error %v", adj, err)
					}
				}
			})
		}
	}
}

// BenchmarkCreateContainerBurst: bursts of 100 concurrent CreateContainer
// calls (2 GPUs each, the 16-GPU host) as a runtime creating many pods at
// once would send them; reports each call's latency percentiles over all
// bursts (p50-µs, p99-µs) beside the time per burst.
func BenchmarkCreateContainerBurst(b *testing.B) {
	const burst = 100
	p, _ := scalePlugin(b, 16, 4)
	pod := &api.PodSandbox{Id: "p", Name: "trainer", Namespace: "ml"}
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		out := make([]time.Duration, burst)
		errs := make([]error, burst)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range burst {
			ctr := &api.Container{Id: fmt.Sprintf("c%d", i), Name: "main", Env: cudaEnv(fmt.Sprintf("%d,%d", i%12, (i+1)%12))}
			wg.Go(func() {
				<-start
				t0 := time.Now()
				_, _, errs[i] = p.CreateContainer(context.Background(), pod, ctr)
				out[i] = time.Since(t0)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		lat = append(lat, out...)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
