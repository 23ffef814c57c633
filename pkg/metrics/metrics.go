package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// outcomes lists every outcome label value (engine's Outcome* words, the
// audit line's and explain's too); each is exported as 0 from the start.
func outcomes() []string {
	return []string{engine.OutcomeInjected, engine.OutcomeNotGPU, engine.OutcomeRefused, engine.OutcomeError, engine.OutcomeLate}
}

// createBuckets are the latency histogram buckets in seconds: the handler is
// expected to answer in well under a millisecond from a cached inventory, and
// the runtime drops a plugin after 2 s.
func createBuckets() []float64 {
	return []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2}
}

// Metrics is the daemon's set of metrics in its own registry. The zero value
// is not usable; a nil *Metrics ignores every call, so callers need no checks
// when metrics are off.
type Metrics struct {
	reg           *prometheus.Registry
	createSeconds *prometheus.HistogramVec
	containers    *prometheus.CounterVec
	devices       prometheus.Counter
	refreshes     prometheus.Counter
	refreshErrors prometheus.Counter
	computeReady  prometheus.Gauge
	connected     prometheus.Gauge
	reconnects    prometheus.Counter
	buildInfo     *prometheus.GaugeVec
	libraryMounts *prometheus.CounterVec
	watchdog      *watchdog // watchdog.go
}

// New returns the metrics for a daemon of the given version, registered in a
// fresh registry together with the Go and process collectors.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		createSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gpu_nri_create_container_seconds",
			Help:    "Time gpu-nri spent handling one NRI CreateContainer request, by outcome.",
			Buckets: createBuckets(),
		}, []string{"outcome"}),
		containers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpu_nri_containers_total",
			Help: "Containers handled by gpu-nri, by outcome (injected, not-gpu, refused, error, late).",
		}, []string{"outcome"}),
		devices: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpu_nri_devices_injected_total",
			Help: "GPU devices given to containers.",
		}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpu_nri_inventory_refreshes_total",
			Help: "Inventory loads and reloads attempted.",
		}),
		refreshErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpu_nri_inventory_refresh_errors_total",
			Help: "Inventory loads and reloads that failed.",
		}),
		computeReady: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gpu_nri_compute_ready",
			Help: "1 when CUDA can run on the node (the inventory has no compute problem: nvidia-uvm present, libraries of the loaded module's version), 0 when it cannot or there is no inventory.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gpu_nri_nri_connected",
			Help: "1 while gpu-nri is registered with the container runtime over NRI, else 0.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpu_nri_nri_reconnects_total",
			Help: "Reconnections to the runtime after it closed the NRI connection.",
		}),
		libraryMounts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpu_nri_library_mounts_total",
			Help: "With injection.libraryDir: injected containers that got the driver's libraries as the daemon's directory (directory) or, while its directory was not built yet, as per-file mounts (files).",
		}, []string{"how"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gpu_nri_build_info",
			Help: "Build information of the running gpu-nri; always 1.",
		}, []string{"version", "goversion"}),
	}
	m.watchdog = newWatchdog() // watchdog.go
	m.reg.MustRegister(m.watchdog.collectors()...)
	m.reg.MustRegister(m.createSeconds, m.containers, m.devices, m.refreshes, m.refreshErrors, m.computeReady,
		m.connected, m.reconnects, m.buildInfo, m.libraryMounts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range outcomes() {
		m.containers.WithLabelValues(o)
		m.createSeconds.WithLabelValues(o)
	}
	m.libraryMounts.WithLabelValues("directory")
	m.libraryMounts.WithLabelValues("files")
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	return m
}

// ObserveLibraryMounts records, with injection.libraryDir on, whether an
// injected container got the library directory (or per-file mounts).
func (m *Metrics) ObserveLibraryMounts(directory bool) {
	if m == nil {
		return
	}
	how := "files"
	if directory {
		how = "directory"
	}
	m.libraryMounts.WithLabelValues(how).Inc()
}

// Registry returns the registry holding every metric (for tests and for
// callers that add their own collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveCreate records one CreateContainer request: its outcome (one of
// engine's Outcome constants; anything else is counted as "error"), how many GPU
// devices it injected and how long handling took.
func (m *Metrics) ObserveCreate(outcome string, devices int, d time.Duration) {
	if m == nil {
		return
	}
	switch outcome {
	case engine.OutcomeInjected, engine.OutcomeNotGPU, engine.OutcomeRefused, engine.OutcomeError, engine.OutcomeLate:
	default:
		outcome = engine.OutcomeError
	}
	m.containers.WithLabelValues(outcome).Inc()
	m.createSeconds.WithLabelValues(outcome).Observe(d.Seconds())
	if devices > 0 {
		m.devices.Add(float64(devices))
	}
}

// InventoryRefresh records one inventory load or reload and whether it failed.
func (m *Metrics) InventoryRefresh(err error) {
	if m == nil {
		return
	}
	m.refreshes.Inc()
	if err != nil {
		m.refreshErrors.Inc()
	}
}

// SetComputeReady records whether CUDA can run with inv, the inventory
// the daemon now answers from (nil: none): 0 when inv is nil or has
// ComputeProblems, which requirements.computeNotReady: allow turns into a
// warning per container instead of a refusal.
func (m *Metrics) SetComputeReady(inv *inventory.Inventory) {
	if m == nil {
		return
	}
	if inv != nil && len(inv.ComputeProblems) == 0 {
		m.computeReady.Set(1)
		return
	}
	m.computeReady.Set(0)
}

// SetConnected records whether the plugin is registered with the runtime.
func (m *Metrics) SetConnected(connected bool) {
	if m == nil {
		return
	}
	if connected {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

// Reconnect records one reconnection after the runtime closed the connection.
func (m *Metrics) Reconnect() {
	if m == nil {
		return
	}
	m.reconnects.Inc()
}

// Handler serves /metrics, /healthz and /readyz. ready is called on every
// /readyz request; nil means always ready. A nil *Metrics serves an empty
// /metrics.
func (m *Metrics) Handler(ready func() error) http.Handler {
	reg := prometheus.NewRegistry()
	if m != nil {
		reg = m.reg
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve listens on addr and serves h until ctx is done, then shuts the server
// down (waiting up to 5 s for requests in flight). It returns the listen
// error, or nil after a shutdown caused by ctx.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener is Serve on an existing listener (tests use 127.0.0.1:0).
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("metrics: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("metrics: shutdown: %w", err)
		}
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics: serve: %w", err)
		}
		return nil
	}
}
