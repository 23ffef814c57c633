package inventory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ErrWatchUnavailable is reported (wrapped) through Run's callback when the
// file watch cannot be set up, or only partly (no inotify instance left, the
// watch limit reached): Run then polls, and retries the watch at every
// fallback poll.
var ErrWatchUnavailable = errors.New("inventory: file watch unavailable, polling instead")

// Default timings of RunWith (see RunOptions).
const (
	DefaultProcPoll     = 250 * time.Millisecond
	DefaultQuiet        = 150 * time.Millisecond
	DefaultMaxDelay     = time.Second
	DefaultKickInterval = time.Second
)

// RunOptions say how Run follows the host.
type RunOptions struct {
	// Poll is the interval of the full fingerprint check, the fallback that
	// catches what the watch misses. <= 0 disables Run: it returns at once.
	Poll time.Duration
	// Watch turns on the inotify watch of the driver's directories and the
	// fast poll of the procfs fingerprint.
	Watch bool
	// ProcPoll is the interval of the procfs fingerprint poll when Watch is
	// set (default DefaultProcPoll). While the watch is unavailable the
	// whole fingerprint is polled at this interval.
	ProcPoll time.Duration
	// Quiet is how long the watched directories must stay quiet after an
	// event before Run rediscovers (default DefaultQuiet): a driver upgrade
	// replaces dozens of files and is rediscovered once.
	Quiet time.Duration
	// MaxDelay bounds the wait after the first event of a burst that does
	// not settle (default DefaultMaxDelay).
	MaxDelay time.Duration
	// KickInterval is the least time between two rediscoveries asked for by
	// Kick (default DefaultKickInterval); a Kick inside it is served when it
	// ends.
	KickInterval time.Duration
}

func (o RunOptions) withDefaults() RunOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ProcPoll, DefaultProcPoll)
	def(&o.Quiet, DefaultQuiet)
	def(&o.MaxDelay, DefaultMaxDelay)
	def(&o.KickInterval, DefaultKickInterval)
	return o
}

// Run follows the host until ctx is done: it polls the fingerprint every
// interval and, when the Watcher's config.Host has Watch set, watches the
// driver's directories and polls procfs as RunWith describes (with the
// default timings). An interval <= 0 disables both: Run returns at once.
func (w *Watcher) Run(ctx context.Context, interval time.Duration, onChange func(old, new *Inventory, err error)) {
	w.RunWith(ctx, RunOptions{Poll: interval, Watch: w.host.Watch}, onChange)
}

// RunWith follows the host until ctx is done. onChange (may be nil) is
// called, from RunWith's goroutine, with the old and new inventories (either
// may be nil) whenever Current changes; with the error whenever a refresh
// fails with an error different from the previous refresh's; and with an
// error wrapping ErrWatchUnavailable (old and new both Current) when the
// watch cannot be set up, once per distinct error. RunWith never fails: what
// it cannot watch it polls.
//
// What triggers a refresh:
//   - every o.Poll: the full fingerprint (ComputeFingerprint) is compared;
//   - with o.Watch, inotify events in <DriverRoot>/etc (ld.so.cache), the
//     library directories (libDirs, their vdpau subdirectories and the
//     directory of every library found), the directories of every binary,
//     configuration file and socket found, the firmware directories
//     (lib/firmware/nvidia and its version directories), <DevRoot>,
//     <DevRoot>/dri and the nvidia-caps directories. In the library, binary,
//     /etc and <DevRoot> directories only names of files the inventory holds
//     or that look like the driver's (nvidia, cuda, nvcuvid, nvoptix,
//     ld.so.cache) count; elsewhere every name does. Events are debounced
//     (o.Quiet, bounded by o.MaxDelay) and then Discover runs
//     unconditionally, since replaced libraries need not change the
//     fingerprint; an equal result is not reported. The watch set follows
//     each discovery (new firmware or library directories are added). A
//     wanted directory that does not exist yet counts as a name in its
//     watched parent: its creation triggers a refresh, which adds it; the
//     fallback poll also re-adds what is missing. The socket directories
//     (/run/nvidia-persistenced, /run/nvidia-fabricmanager) and the driver
//     root's sockets are watched when they exist;
//   - with o.Watch, every o.ProcPoll: ProcFingerprint (procfs: driver
//     version, <proc>/devices, GPU and MIG directories), because inotify
//     never fires for procfs; when it changes, the full fingerprint is
//     compared. While the watch is unavailable the full fingerprint is
//     polled at o.ProcPoll instead;
//   - Kick.
//
// What does not trigger one before the next poll: a change inside a
// directory that was not watched when it happened, such as a driver root
// that is itself replaced by a new mount (the kernel drops the old watches
// silently; the procfs poll sees the module reload that comes with it, or
// the fallback poll re-adds them), a wanted directory whose parent is not
// watched either, and files outside the directories above. A
// RunOptions.Watch host whose procfs is plain files (a simulated host) is
// still only polled there: the watch never covers <ProcRoot>.
func (w *Watcher) RunWith(ctx context.Context, o RunOptions, onChange func(old, new *Inventory, err error)) {
	if o.Poll <= 0 {
		return
	}
	o = o.withDefaults()
	r := &runner{w: w, o: o, onChange: onChange, watched: map[string]bool{}}
	if o.Watch {
		r.startWatch()
		defer r.close()
	}
	poll := time.NewTicker(o.Poll)
	defer poll.Stop()
	var procC <-chan time.Time
	if o.Watch {
		t := time.NewTicker(o.ProcPoll)
		defer t.Stop()
		procC = t.C
		r.lastProc, _ = ProcFingerprint(w.host)
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	kickTimer := time.NewTimer(time.Hour)
	kickTimer.Stop()
	var (
		burstStart time.Time // first event of the pending burst (zero: none)
		lastKick   time.Time
		kickQueued bool
	)
	for {
		var events <-chan fsnotify.Event
		var errs <-chan error
		if r.fs != nil {
			events, errs = r.fs.Events, r.fs.Errors
		}
		// While a Kick waits for its interval, further requests stay in the
		// channel: Kick reports them pending, and the waiting refresh
		// serves them.
		kick := w.kick
		if kickQueued {
			kick = nil
		}
		schedule := func() {
			now := time.Now()
			if burstStart.IsZero() {
				burstStart = now
			}
			d := min(o.Quiet, o.MaxDelay-now.Sub(burstStart))
			debounce.Reset(max(d, 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			r.refresh(w.Refresh)
			if o.Watch {
				r.retryWatch()
			}
		case <-procC:
			r.procTick()
		case ev, ok := <-events:
			if !ok {
				r.lost(errors.New("inotify event channel closed"))
				continue
			}
			if r.relevant(ev) {
				schedule()
			}
		case err, ok := <-errs:
			if !ok {
				r.lost(errors.New("inotify error channel closed"))
				continue
			}
			// An overflow lost events: rediscover. Other errors are
			// reported and the watch is kept.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				schedule()
			} else {
				r.reportWatch(fmt.Errorf("%w: %w", ErrWatchUnavailable, err))
			}
		case <-debounce.C:
			burstStart = time.Time{}
			r.refresh(w.rediscover)
		case <-kick:
			if wait := o.KickInterval - time.Since(lastKick); !lastKick.IsZero() && wait > 0 {
				if !kickQueued {
					kickQueued = true
					kickTimer.Reset(wait)
				}
				continue
			}
			lastKick = time.Now()
			r.refresh(w.rediscover)
		case <-kickTimer.C:
			kickQueued = false
			select {
			case <-w.kick: // served by this refresh
			default:
			}
			lastKick = time.Now()
			r.refresh(w.rediscover)
		}
		r.follow()
	}
}

// Kick asks a running Run to rediscover now, for instance because a
// container failed to start as a file of the current inventory vanished. It
// never blocks and never does file system work: requests coalesce, and Run
// serves at most one per RunOptions.KickInterval (a request inside the
// interval is served when it ends). It returns false when a request is
// already pending. Without a running Run a request waits until Run starts.
func (w *Watcher) Kick() bool {
	select {
	case w.kick <- struct{}{}:
		return true
	default:
		return false
	}
}

// WatchErr says why Run's file watch is unavailable or partial (wrapping
// ErrWatchUnavailable); nil when Run watches everything it means to, or does
// not watch.
func (w *Watcher) WatchErr() error { return w.watchErr.Load().err }

// Watched lists the directories (view paths) a running Run watches with
// inotify, sorted; nil when it watches none.
func (w *Watcher) Watched() []string {
	if p := w.watching.Load(); p != nil {
		return slices.Clone(*p)
	}
	return nil
}

// runner is the state of one Run.
type runner struct {
	w        *Watcher
	o        RunOptions
	onChange func(old, new *Inventory, err error)

	fs *fsnotify.Watcher // nil while the watch is unavailable
	// watched maps each watched directory (view path) to whether every name
	// in it counts (false: only driver-like names).
	watched map[string]bool
	// names are the base names of the current inventory's files.
	names map[string]bool
	// missing are wanted directories that do not exist (yet): their
	// creation in a watched parent counts.
	missing map[string]bool
	// gen is the Watcher's discovery count the watch set was built for.
	gen uint64
	// degraded is set while the watch is unavailable or partial.
	degraded bool

	lastErr      string
	lastWatchErr string
	lastProc     string
}

// refresh runs f and passes its result to onChange as RunWith's doc says.
func (r *runner) refresh(f func() (bool, error)) {
	old := r.w.Current()
	changed, err := f()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	send := changed || (err != nil && msg != r.lastErr)
	r.lastErr = msg
	if send && r.onChange != nil {
		r.onChange(old, r.w.Current(), err)
	}
}

func (r *runner) reportWatch(err error) {
	r.w.watchErr.Store(&errBox{err})
	r.degraded = true
	if msg := err.Error(); msg != r.lastWatchErr {
		r.lastWatchErr = msg
		if r.onChange != nil {
			cur := r.w.Current()
			r.onChange(cur, cur, err)
		}
	}
}

// startWatch opens the inotify instance and adds the watch set.
func (r *runner) startWatch() {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		r.reportWatch(fmt.Errorf("%w: %w", ErrWatchUnavailable, err))
		return
	}
	r.fs = fw
	r.gen = r.w.gen.Load()
	r.reconcile()
}

// retryWatch runs at each fallback poll: it opens the watch if it could not
// be opened and re-adds what is missing.
func (r *runner) retryWatch() {
	if r.fs == nil {
		r.startWatch()
		return
	}
	r.reconcile()
}

// lost drops a watch whose channels closed; the next poll reopens it.
func (r *runner) lost(err error) {
	r.close()
	r.reportWatch(fmt.Errorf("%w: %w", ErrWatchUnavailable, err))
}

func (r *runner) close() {
	if r.fs != nil {
		_ = r.fs.Close()
		r.fs = nil
	}
	clear(r.watched)
	r.w.watching.Store(nil)
}

// follow updates the watch set after a discovery (by Run or anyone else).
func (r *runner) follow() {
	if r.fs == nil {
		return
	}
	if g := r.w.gen.Load(); g != r.gen {
		r.gen = g
		r.reconcile()
	}
}

// procTick polls procfs (or, while the watch is unavailable, the whole
// fingerprint).
func (r *runner) procTick() {
	if r.degraded {
		r.refresh(r.w.Refresh)
		return
	}
	fp, err := ProcFingerprint(r.w.host)
	if err != nil || fp == r.lastProc {
		return // an unreadable procfs is reported by the full poll
	}
	r.lastProc = fp
	r.refresh(r.w.Refresh)
}

// relevant says whether an event may change the inventory.
func (r *runner) relevant(ev fsnotify.Event) bool {
	if _, ok := r.watched[ev.Name]; ok {
		// The watched directory itself went away or was replaced.
		delete(r.watched, ev.Name)
		return true
	}
	all, ok := r.watched[filepath.Dir(ev.Name)]
	if !ok {
		return false
	}
	return all || r.missing[ev.Name] || r.names[filepath.Base(ev.Name)] || driverLike(filepath.Base(ev.Name))
}

// driverLike reports whether a file name looks like one of the driver's.
func driverLike(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"nvidia", "cuda", "nvcuvid", "nvoptix", "ld.so.cache"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// reconcile makes the watched set the wanted one.
func (r *runner) reconcile() {
	want, names, missing := r.wanted()
	r.names, r.missing = names, missing
	// Watches the kernel dropped (directory removed) are no longer listed.
	live := map[string]bool{}
	for _, p := range r.fs.WatchList() {
		live[p] = true
	}
	for p := range r.watched {
		if !live[p] {
			delete(r.watched, p)
		}
	}
	var errs []error
	for _, d := range want {
		if _, ok := r.watched[d.path]; ok {
			r.watched[d.path] = d.all
			continue
		}
		if err := r.fs.Add(d.path); err != nil {
			if notExist(err) {
				continue // added once it exists
			}
			errs = append(errs, err)
			continue
		}
		r.watched[d.path] = d.all
	}
	for p := range r.watched {
		if !slices.ContainsFunc(want, func(d watchDir) bool { return d.path == p }) {
			_ = r.fs.Remove(p)
			delete(r.watched, p)
		}
	}
	list := slices.Sorted(maps.Keys(r.watched))
	r.w.watching.Store(&list)
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w (fs.inotify.max_user_watches reached)", err)
		}
		r.reportWatch(fmt.Errorf("%w: %d of %d directories: %w", ErrWatchUnavailable, len(errs), len(want), err))
		return
	}
	if r.degraded {
		r.degraded = false
		r.lastWatchErr = ""
		r.w.watchErr.Store(&errBox{})
	}
}

// watchDir is a directory to watch.
type watchDir struct {
	path string // view path
	all  bool   // every name counts, not only driver-like ones
}

// wanted lists the directories to watch for the host and its current
// inventory, each existing directory once (by device and inode), the base
// names of the inventory's files and the wanted directories that are missing.
func (r *runner) wanted() ([]watchDir, map[string]bool, map[string]bool) {
	h := r.w.host
	inv := r.w.Current()
	var dirs []watchDir
	add := func(hostPath string, all bool) {
		dirs = append(dirs, watchDir{h.View(hostPath), all})
	}
	drv := func(rel string) string { return filepath.Join(h.DriverRoot, rel) }
	add(drv("etc"), false)
	for _, d := range slices.Concat(libDirs(), vdpauDirs()) {
		add(drv(d), false)
	}
	add(drv("usr/bin"), false)
	for _, d := range []string{"lib/firmware/nvidia", "usr/lib/firmware/nvidia"} {
		add(drv(d), true)
	}
	add(h.DevRoot, false)
	for _, d := range []string{"dri", "nvidia-caps", "nvidia-caps-imex-channels"} {
		add(filepath.Join(h.DevRoot, d), true)
	}
	for _, root := range socketRoots(h) {
		for _, s := range driverSockets() {
			add(filepath.Dir(filepath.Join(root, s.p)), true)
		}
	}
	names := map[string]bool{}
	if inv != nil {
		var files []File
		for _, m := range []map[Capability][]File{inv.Libraries, inv.Binaries, inv.ConfigFiles, inv.Sockets} {
			for _, fs := range m {
				files = append(files, fs...)
			}
		}
		for _, fw := range inv.Firmware {
			add(filepath.Dir(fw.HostPath), true)
		}
		for _, f := range files {
			add(filepath.Dir(f.HostPath), false)
			names[filepath.Base(f.HostPath)] = true
			names[filepath.Base(f.Path)] = true
			if f.SONAME != "" {
				names[f.SONAME] = true
			}
		}
	}
	// Each directory once: the same inode under two paths (merged /usr)
	// would be one inotify watch under whichever path was added last.
	type key struct{ dev, ino uint64 }
	seen := map[key]int{}
	missing := map[string]bool{}
	out := dirs[:0]
	for _, d := range dirs {
		fi, err := os.Stat(d.path)
		if err != nil || !fi.IsDir() {
			missing[d.path] = true
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			out = append(out, d)
			continue
		}
		k := key{uint64(st.Dev), st.Ino}
		if i, dup := seen[k]; dup {
			out[i].all = out[i].all || d.all
			continue
		}
		seen[k] = len(out)
		out = append(out, d)
	}
	return out, names, missing
}
