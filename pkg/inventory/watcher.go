package inventory

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpu-nri/gpu-nri/config"
)

// Watcher keeps the current Inventory of a host and rebuilds it when the
// host's fingerprint changes. Current is lock-free; refreshes are
// serialized. A Watcher never logs: Run's callback reports.
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
}

type errBox struct{ err error }

// NewWatcher discovers the host once. A host without a driver is not an
// error: Current returns nil and Err says why until a driver appears. Other
// discovery errors are returned.
func NewWatcher(h config.Host, opts ...Option) (*Watcher, error) {
	if _, err := buildOptions(opts); err != nil {
		return nil, err
	}
	w := &Watcher{host: normalizeHost(h), opts: opts}
	w.err.Store(&errBox{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.discoverLocked(); err != nil && !errors.Is(err, ErrNoDriver) {
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
	return w.discoverLocked()
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
	return w.discoverLocked()
}

// discoverLocked runs Discover and installs its result. It returns whether
// Current changed and the discovery error.
func (w *Watcher) discoverLocked() (bool, error) {
	old := w.cur.Load()
	w.discovered = time.Now()
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
	w.cur.Store(inv)
	w.err.Store(&errBox{})
	w.fingerprint = inv.Fingerprint
	return true, nil
}

// Run polls the fingerprint every interval until ctx is done and
// rediscovers when it changes. onChange (may be nil) is called, from Run's
// goroutine, with the old and new inventories (either may be nil) whenever
// Current changes, and with the error whenever a refresh fails with an
// error different from the previous refresh's. An interval <= 0 disables
// polling: Run returns at once.
func (w *Watcher) Run(ctx context.Context, interval time.Duration, onChange func(old, new *Inventory, err error)) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		old := w.Current()
		changed, err := w.Refresh()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		report := changed || (err != nil && msg != lastErr)
		lastErr = msg
		if report && onChange != nil {
			onChange(old, w.Current(), err)
		}
	}
}
