package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

func TestObserveCreate(t *testing.T) {
	m := New("1.2.3")
	m.ObserveCreate(engine.OutcomeInjected, 2, 300*time.Microsecond)
	m.ObserveCreate(engine.OutcomeInjected, 1, 2*time.Millisecond)
	m.ObserveCreate(engine.OutcomeNotGPU, 0, 10*time.Microsecond)
	m.ObserveCreate(engine.OutcomeRefused, 0, 50*time.Microsecond)
	m.ObserveCreate("something-else", 0, time.Millisecond)

	for _, tc := range []struct {
		outcome string
		want    float64
	}{
		{engine.OutcomeInjected, 2},
		{engine.OutcomeNotGPU, 1},
		{engine.OutcomeRefused, 1},
		{engine.OutcomeError, 1}, // unknown outcomes count as errors
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			if got := testutil.ToFloat64(m.containers.WithLabelValues(tc.outcome)); got != tc.want {
				t.Errorf("gpu_nri_containers_total{outcome=%q} = %v, want %v", tc.outcome, got, tc.want)
			}
		})
	}
	if got := testutil.ToFloat64(m.devices); got != 3 {
		t.Errorf("gpu_nri_devices_injected_total = %v, want 3", got)
	}
	if n := testutil.CollectAndCount(m.createSeconds); n != len(outcomes()) {
		t.Errorf("histogram series = %d, want %d", n, len(outcomes()))
	}
	want := `
# HELP gpu_nri_devices_injected_total GPU devices given to containers.
# TYPE gpu_nri_devices_injected_total counter
gpu_nri_devices_injected_total 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "gpu_nri_devices_injected_total"); err != nil {
		t.Error(err)
	}
	// the injected histogram saw one observation in (0.00025, 0.0005] and one in (0.001, 0.0025]
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gpu_nri_create_container_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			if mt.GetLabel()[0].GetValue() != engine.OutcomeInjected {
				continue
			}
			h := mt.GetHistogram()
			if h.GetSampleCount() != 2 {
				t.Errorf("injected histogram count = %d, want 2", h.GetSampleCount())
			}
			got := map[float64]uint64{}
			for _, b := range h.GetBucket() {
				got[b.GetUpperBound()] = b.GetCumulativeCount()
			}
			for le, want := range map[float64]uint64{0.00025: 0, 0.0005: 1, 0.001: 1, 0.0025: 2, 2: 2} {
				if got[le] != want {
					t.Errorf("injected bucket le=%v = %d, want %d", le, got[le], want)
				}
			}
		}
	}
}

func TestInventoryAndConnection(t *testing.T) {
	m := New("v")
	m.InventoryRefresh(nil)
	m.InventoryRefresh(errors.New("boom"))
	m.InventoryRefresh(nil)
	m.SetConnected(true)
	m.Reconnect()
	m.Reconnect()
	for name, tc := range map[string]struct {
		got, want float64
	}{
		"refreshes":     {testutil.ToFloat64(m.refreshes), 3},
		"refreshErrors": {testutil.ToFloat64(m.refreshErrors), 1},
		"connected":     {testutil.ToFloat64(m.connected), 1},
		"reconnects":    {testutil.ToFloat64(m.reconnects), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", name, tc.got, tc.want)
		}
	}
	m.SetConnected(false)
	if got := testutil.ToFloat64(m.connected); got != 0 {
		t.Errorf("connected after SetConnected(false) = %v", got)
	}
}

func TestComputeReady(t *testing.T) {
	m := New("v")
	for _, tc := range []struct {
		name string
		inv  *inventory.Inventory
		want float64
	}{
		{"ready", &inventory.Inventory{DriverVersion: "550.54.14"}, 1},
		{"no nvidia-uvm", &inventory.Inventory{ComputeProblems: []inventory.ComputeProblem{{Cause: "nvidia-uvm is not loaded", Fix: "modprobe nvidia-uvm"}}}, 0},
		{"ready again", &inventory.Inventory{}, 1},
		{"no inventory", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.SetComputeReady(tc.inv)
			if got := testutil.ToFloat64(m.computeReady); got != tc.want {
				t.Errorf("gpu_nri_compute_ready = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBuildInfoAndLint(t *testing.T) {
	m := New("1.2.3")
	if got := testutil.ToFloat64(m.buildInfo); got != 1 {
		t.Errorf("build info = %v", got)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() == "gpu_nri_build_info" {
			lbl := map[string]string{}
			for _, l := range mf.GetMetric()[0].GetLabel() {
				lbl[l.GetName()] = l.GetValue()
			}
			if lbl["version"] != "1.2.3" || !strings.HasPrefix(lbl["goversion"], "go") {
				t.Errorf("build info labels = %v", lbl)
			}
		}
	}
	for _, n := range []string{"gpu_nri_create_container_seconds", "gpu_nri_containers_total", "gpu_nri_devices_injected_total",
		"gpu_nri_inventory_refreshes_total", "gpu_nri_inventory_refresh_errors_total", "gpu_nri_compute_ready", "gpu_nri_nri_connected",
		"gpu_nri_nri_reconnects_total", "gpu_nri_build_info", "go_goroutines"} {
		if !names[n] {
			t.Errorf("metric %s not exported", n)
		}
	}
	for _, n := range []string{"gpu_nri_containers_total", "gpu_nri_create_container_seconds", "gpu_nri_nri_connected", "gpu_nri_compute_ready"} {
		probs, err := testutil.GatherAndLint(m.Registry(), n)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range probs {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
}

func TestOwnRegistry(t *testing.T) {
	// two instances in one process must not collide (no default registry)
	a, b := New("a"), New("b")
	a.ObserveCreate(engine.OutcomeInjected, 1, time.Millisecond)
	if got := testutil.ToFloat64(b.containers.WithLabelValues(engine.OutcomeInjected)); got != 0 {
		t.Errorf("second instance saw the first one's counter: %v", got)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ObserveCreate(engine.OutcomeInjected, 1, time.Millisecond)
	m.InventoryRefresh(nil)
	m.SetComputeReady(nil)
	m.SetConnected(true)
	m.Reconnect()
	rec := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("nil metrics /healthz = %d", rec.Code)
	}
}

func TestHandler(t *testing.T) {
	m := New("1.2.3")
	m.ObserveCreate(engine.OutcomeInjected, 2, time.Millisecond)
	readyErr := errors.New("not registered with the runtime")
	h := m.Handler(func() error { return readyErr })
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct {
		name, path string
		ready      error
		code       int
		body       string
	}{
		{"healthz while not ready", "/healthz", readyErr, 200, "ok"},
		{"readyz not ready", "/readyz", readyErr, 503, "not registered with the runtime"},
		{"readyz ready", "/readyz", nil, 200, "ok"},
		{"metrics", "/metrics", nil, 200, `gpu_nri_containers_total{outcome="injected"} 1`},
		{"metrics zero outcomes", "/metrics", nil, 200, `gpu_nri_containers_total{outcome="refused"} 0`},
		{"unknown path", "/nope", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			readyErr = tc.ready
			code, body := get(tc.path)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.body)
			}
		})
	}
}

func TestServeListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, New("v").Handler(nil)) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Errorf("/readyz = %d %q", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeListener after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeListener did not return after cancel")
	}
	if err := Serve(context.Background(), "256.0.0.1:bad", nil); err == nil {
		t.Error("Serve on a bad address: no error")
	}
}
