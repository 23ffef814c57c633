package metrics

// ---------------------------------------------------------------- watchdog (issue 14, faults 4)
//
// The CreateContainer watchdog: a handler that never returns cannot be seen
// in a latency histogram (it is observed only when it ends), and the runtime
// holds one lock across its plugin calls, so a stalled handler stalls every
// container on the node. The watchdog counts handlers in flight and how long
// the handler has been continuously busy, from two atomics set on entry and
// exit: no lock, no goroutine, no clock read beyond the one the handler
// already makes.

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SlowCreate is the handler duration over which a CreateContainer run is
// counted as slow: the handler answers from memory in well under a
// millisecond, and the runtime's request timeout (2 s by default) is
// twenty times this.
const SlowCreate = 100 * time.Millisecond

// watchdog holds the in-flight state. busySince is the UnixNano time the
// in-flight count last went from 0 to 1 (0: idle).
type watchdog struct {
	inFlight  atomic.Int64
	busySince atomic.Int64
	slow      prometheus.Counter
}

func newWatchdog() *watchdog {
	return &watchdog{slow: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gpu_nri_create_container_slow_total",
		Help: "CreateContainer runs that took longer than 100ms (counted when they end).",
	})}
}

// collectors are the watchdog's metrics, read at scrape time.
func (w *watchdog) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		w.slow,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gpu_nri_create_container_in_flight",
			Help: "CreateContainer requests gpu-nri is handling now; above 0 on consecutive scrapes means a stalled handler.",
		}, func() float64 { return float64(w.inFlight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gpu_nri_create_container_busy_seconds",
			Help: "How long at least one CreateContainer request has been in flight without a break (0 when idle); an upper bound on the oldest one's age.",
		}, func() float64 {
			since := w.busySince.Load()
			if since == 0 || w.inFlight.Load() == 0 {
				return 0
			}
			return time.Since(time.Unix(0, since)).Seconds()
		}),
	}
}

// CreateStarted records a CreateContainer request entering the handler at
// start. Call CreateDone with the same start when it leaves.
func (m *Metrics) CreateStarted(start time.Time) {
	if m == nil {
		return
	}
	if m.watchdog.inFlight.Add(1) == 1 {
		m.watchdog.busySince.Store(start.UnixNano())
	}
}

// CreateDone records a CreateContainer request leaving the handler after d.
func (m *Metrics) CreateDone(d time.Duration) {
	if m == nil {
		return
	}
	// Loaded before the decrement: if another request enters between the
	// decrement and the swap, it has stored its own start and the swap fails.
	since := m.watchdog.busySince.Load()
	if m.watchdog.inFlight.Add(-1) == 0 {
		m.watchdog.busySince.CompareAndSwap(since, 0)
	}
	if d > SlowCreate {
		m.watchdog.slow.Inc()
	}
}

// ---------------------------------------------------------------- end of watchdog
