package inventory

import (
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpu-nri/gpu-nri/config"
)

// Watcher keeps the current Inventory of a host and rebuilds it when the
// host's fingerprint changes, or, while Run watches (see RunWith), when one
// of the driver's directories changes or Kick asks. Current is lock-free;
// refreshes are serialized. A Watcher never logs: Run's callback reports.
type Watcher struct {
	host config.Host
	opts []Option

	cur atomic.Pointer[Inventory]
	err atomic.Pointer[errBox]

	mu sync.Mutex // serializes refreshes and guards the fields below
	// fingerprint is the host state the current result (inventory or
	// ErrNoDriver) was built from; "" forces the next Refresh to discover.
	fingerprint string
	// discovered is when Discover last ran.
	discovered time.Time

	// gen counts discoveries, so that Run knows when to update its watch set.
	gen atomic.Uint64
	// kick carries Kick's requests to Run (capacity 1: requests coalesce).
	kick chan struct{}
	// watchErr is why Run's file watch is unavailable or partial (nil when
	// it watches everything, or does not watch).
	watchErr atomic.Pointer[errBox]
	// watching lists the directories Run watches (nil: none).
	watching atomic.Pointer[[]string]
}

type errBox struct{ err error }

// NewWatcher discovers the host once. A host without a driver is not an
// error: Current returns nil and Err says why until a driver appears. Other
// discovery errors are returned.
func NewWatcher(h config.Host, opts ...Option) (*Watcher, error) {
	if _, err := buildOptions(opts); err != nil {
		return nil, err
	}
	w := &Watcher{host: normalizeHost(h), opts: opts, kick: make(chan struct{}, 1)}
	w.err.Store(&errBox{})
	w.watchErr.Store(&errBox{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.discoverLocked(false); err != nil && !errors.Is(err, ErrNoDriver) {
		return nil, err
	}
	return w, nil
}

// Current returns the current inventory, or nil when the last discovery
// failed (see Err). It never blocks.
func (w *Watcher) Current() *Inventory { return w.cur.Load() }

// Err returns why the last discovery failed (nil when Current is usable).
func (w *Watcher) Err() error { return w.err.Load().err }

// Refresh computes the fingerprint and rediscovers when it differs from the
// one the current inventory was built from. changed reports whether Current
// now returns something else. When rediscovery fails, Current becomes nil
// (the old inventory no longer describes the host) and err says why.
func (w *Watcher) Refresh() (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fp, err := ComputeFingerprint(w.host)
	if err != nil {
		// The host cannot be read; keep what we have and report.
		return false, err
	}
	if fp == w.fingerprint {
		return false, nil
	}
	return w.discoverLocked(false)
}

// RefreshIfStale rediscovers unconditionally (some changes, e.g. MIG
// devices recreated with new UUIDs, do not show in the fingerprint) unless
// the last discovery ran less than minInterval ago. The daemon calls it when
// a request names a device the current inventory does not know, then looks
// again in Current. changed reports whether a new result was installed.
func (w *Watcher) RefreshIfStale(minInterval time.Duration) (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.discovered.IsZero() && time.Since(w.discovered) < minInterval {
		return false, w.err.Load().err
	}
	return w.discoverLocked(false)
}

// rediscover runs Discover unconditionally (a watched file changed, or Kick)
// and keeps the current inventory when the new one describes the same host,
// so that an event that changed nothing Discover reads reports no change.
func (w *Watcher) rediscover() (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.discoverLocked(true)
}

// discoverLocked runs Discover and installs its result. It returns whether
// Current changed and the discovery error. With keepEqual, a successful
// result equal to the current inventory is not installed.
func (w *Watcher) discoverLocked(keepEqual bool) (bool, error) {
	old := w.cur.Load()
	w.discovered = time.Now()
	defer w.gen.Add(1)
	inv, err := Discover(w.host, w.opts...)
	if err != nil {
		w.cur.Store(nil)
		w.err.Store(&errBox{err})
		w.fingerprint = ""
		if errors.Is(err, ErrNoDriver) {
			// Remember the driver-less state so polling stays cheap.
			if fp, ferr := ComputeFingerprint(w.host); ferr == nil {
				w.fingerprint = fp
			}
		}
		return old != nil, err
	}
	w.fingerprint = inv.Fingerprint
	w.err.Store(&errBox{})
	if keepEqual && old != nil && reflect.DeepEqual(old, inv) {
		return false, nil
	}
	w.cur.Store(inv)
	return true, nil
}
