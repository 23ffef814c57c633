package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// gauge reads one gauge of the registry by name.
func gauge(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestWatchdog(t *testing.T) {
	for _, tc := range []struct {
		name string
		// durations of the requests that enter; open ones never leave
		done     []time.Duration
		open     int
		inFlight float64
		slow     float64
	}{
		{name: "idle"},
		{name: "fast requests leave no trace", done: []time.Duration{time.Millisecond, 50 * time.Microsecond}},
		{name: "a slow request is counted when it ends", done: []time.Duration{SlowCreate + time.Millisecond, time.Millisecond}, slow: 1},
		{name: "a stalled request shows in flight", open: 1, inFlight: 1},
		{name: "two stalled, one slow done", done: []time.Duration{time.Second}, open: 2, inFlight: 2, slow: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New("test")
			start := time.Now().Add(-time.Second) // entered a second ago
			for range tc.open {
				m.CreateStarted(start)
			}
			for _, d := range tc.done {
				m.CreateStarted(start)
				m.CreateDone(d)
			}
			require.Equal(t, tc.inFlight, gauge(t, m, "gpu_nri_create_container_in_flight"))
			require.Equal(t, tc.slow, testutil.ToFloat64(m.watchdog.slow))
			busy := gauge(t, m, "gpu_nri_create_container_busy_seconds")
			if tc.open == 0 {
				require.Zero(t, busy, "idle: not busy")
			} else {
				require.GreaterOrEqual(t, busy, 1.0, "busy since the first open request entered")
			}
		})
	}
}

// Concurrent entries and exits balance: the count returns to 0 and the busy
// time with it (run with -race).
func TestWatchdogConcurrent(t *testing.T) {
	m := New("test")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				m.CreateStarted(time.Now())
				m.CreateDone(time.Microsecond)
			}
		})
	}
	wg.Wait()
	require.Zero(t, gauge(t, m, "gpu_nri_create_container_in_flight"))
	require.Zero(t, gauge(t, m, "gpu_nri_create_container_busy_seconds"))
}

func TestWatchdogNil(t *testing.T) {
	var m *Metrics // metrics off: the handler calls these unconditionally
	require.NotPanics(t, func() {
		m.CreateStarted(time.Now())
		m.CreateDone(time.Second)
	})
}
