package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// watchEvent is one call of Run's callback, with when it came.
type watchEvent struct {
	old, new *inventory.Inventory
	err      error
	at       time.Time
}

// startRun runs w.RunWith until the test ends and returns its callbacks.
func startRun(t *testing.T, w *inventory.Watcher, o inventory.RunOptions) <-chan watchEvent {
	t.Helper()
	events := make(chan watchEvent, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		w.RunWith(ctx, o, func(old, new *inventory.Inventory, err error) {
			events <- watchEvent{old, new, err, time.Now()}
		})
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return events
}

// waitWatched waits until Run watches dir (Run sets its watch up in its own
// goroutine).
func waitWatched(t *testing.T, w *inventory.Watcher, dir string) {
	t.Helper()
	require.Eventually(t, func() bool { return slices.Contains(w.Watched(), dir) },
		10*time.Second, 5*time.Millisecond, "Run never watched %s; it watches %q (watch error %v)", dir, w.Watched(), w.WatchErr())
}

// installTree makes dst's regular files and symlinks those of src, as a
// package manager does: each file is written beside its target and renamed
// over it, then what src does not have is removed. Sockets and device nodes
// are left alone.
func installTree(t *testing.T, src, dst string) {
	t.Helper()
	want := map[string]bool{}
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		want[rel] = true
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tmp := filepath.Join(filepath.Dir(to), "."+filepath.Base(to)+".new")
			_ = os.Remove(tmp)
			if err := os.Symlink(target, tmp); err != nil {
				return err
			}
			return os.Rename(tmp, to)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			tmp := filepath.Join(filepath.Dir(to), "."+filepath.Base(to)+".new")
			if err := os.WriteFile(tmp, data, fi.Mode().Perm()); err != nil {
				return err
			}
			return os.Rename(tmp, to)
		}
		return nil
	}))
	var gone []string
	require.NoError(t, filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		if want[rel] || (!d.IsDir() && !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0) {
			return nil
		}
		gone = append(gone, p)
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}))
	for _, p := range gone {
		require.NoError(t, os.RemoveAll(p))
	}
}

// replaceFile writes src's content over dst by rename.
func replaceFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	tmp := dst + ".new"
	require.NoError(t, os.WriteFile(tmp, data, 0o444))
	require.NoError(t, os.Rename(tmp, dst))
}

// newDriver reports whether inv is the whole inventory of src's driver.
// driverVersionRE matches a driver version in a file name (550.54.14).
var driverVersionRE = regexp.MustCompile(`[0-9]+\.[0-9]+\.[0-9]+`)

func newDriver(inv *inventory.Inventory, src *simhost.Host) bool {
	if inv == nil || inv.DriverVersion != src.DriverVersion || len(inv.Firmware) != len(src.Firmware) {
		return false
	}
	n := 0
	for _, fs := range inv.Libraries {
		for _, f := range fs {
			// Every driver version in a library's name is the new one; some
			// names carry none (libnvidia-nvvm70.so.4, the EGL platform libraries).
			for _, v := range driverVersionRE.FindAllString(filepath.Base(f.Path), -1) {
				if v != src.DriverVersion {
					return false
				}
			}
			n++
		}
	}
	return n == len(src.Libraries)
}

// TestWatcherUpgradeWindow measures how long the inventory names the old
// driver's files after a driver upgrade replaced them, with the fallback
// poll at 30s: the window is what the watch achieves. The windows go to
// docs/benchmarks.md ("driver upgrade window"); the bound only tells the
// watch from the poll.
func TestWatcherUpgradeWindow(t *testing.T) {
	const (
		rounds = 5
		poll   = 30 * time.Second
		bound  = 5 * time.Second // far below poll: the watch worked, not the poll
	)
	tmp := t.TempDir()
	cache := filepath.Join(os.TempDir(), "gpu-nri-simhost-cache")
	build := func(name, version string) *simhost.Host {
		h, err := simhost.Build(simhost.Options{Dir: filepath.Join(tmp, name), GPUs: 2, DriverVersion: version, CacheDir: cache})
		require.NoError(t, err)
		return h
	}
	srcs := []*simhost.Host{build("v1", "550.54.14"), build("v2", "570.86.15")}
	tests := []struct {
		name string
		// procLast: the files are replaced while the old module is loaded
		// and the module is reloaded afterwards (a package upgrade and a
		// reload): only the procfs poll sees the reload. Otherwise the
		// module is reloaded first and the files follow (the .run installer,
		// the GPU Operator's driver container): the inotify watch sees them.
		procLast bool
		procPoll time.Duration
	}{
		{name: "module reloaded, then files replaced: inotify", procPoll: poll},
		{name: "files replaced, then module reloaded: procfs poll", procLast: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := build("live-"+strings.Fields(tt.name)[0]+fmt.Sprint(tt.procLast), "550.54.14")
			w, err := inventory.NewWatcher(live.Config, inventory.WithNodeStater(live.Stater()))
			require.NoError(t, err)
			events := startRun(t, w, inventory.RunOptions{Poll: poll, Watch: true, ProcPoll: tt.procPoll})
			libDir := filepath.Join(live.Config.DriverRoot, "usr/lib/x86_64-linux-gnu")
			waitWatched(t, w, libDir)
			version := filepath.Join(live.Config.ProcRoot, "driver/nvidia/version")
			var windows []time.Duration
			for i := range rounds {
				src := srcs[(i+1)%2]
				var t0 time.Time
				if tt.procLast {
					installTree(t, src.Config.DriverRoot, live.Config.DriverRoot)
					// The watch sees the files under the old module (the
					// inventory loses its libraries); the reload comes after.
					select {
					case ev := <-events:
						require.NoError(t, ev.err)
						require.NotEqual(t, src.DriverVersion, ev.new.DriverVersion)
					case <-time.After(bound):
						t.Fatalf("round %d: the replaced files were not seen within %v", i, bound)
					}
					t0 = time.Now()
					replaceFile(t, filepath.Join(src.Config.ProcRoot, "driver/nvidia/version"), version)
				} else {
					replaceFile(t, filepath.Join(src.Config.ProcRoot, "driver/nvidia/version"), version)
					installTree(t, src.Config.DriverRoot, live.Config.DriverRoot)
					t0 = time.Now() // the old files are gone from here on
				}
				deadline := time.After(bound)
			wait:
				for {
					select {
					case ev := <-events:
						require.NoError(t, ev.err)
						if newDriver(ev.new, src) {
							windows = append(windows, ev.at.Sub(t0))
							break wait
						}
					case <-deadline:
						t.Fatalf("round %d: the inventory did not follow the upgrade to %s within %v (fallback poll %v): current %+v",
							i, src.DriverVersion, bound, poll, w.Current())
					}
				}
				require.True(t, newDriver(w.Current(), src))
				fw := filepath.Join(live.Config.DriverRoot, "lib/firmware/nvidia", src.DriverVersion)
				waitWatched(t, w, fw) // the watch set follows the new directories
			}
			sorted := slices.Clone(windows)
			slices.Sort(sorted)
			t.Logf("driver upgrade window, %s: median %v over %d upgrades %v (load: %s)",
				tt.name, sorted[len(sorted)/2].Round(time.Millisecond), rounds, roundAll(windows), loadAvg())
		})
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func (s *fakeStater) remove(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, p)
}

// countingFacts counts Discover calls.
func countingFacts(n *atomic.Int64) inventory.Option {
	return inventory.WithGPUFacts(func(*inventory.Inventory) error { n.Add(1); return nil })
}

func TestWatcherDebounce(t *testing.T) {
	tests := []struct {
		name  string
		files func(i int) string // the i-th file of the burst, under the library directory
		want  int64              // discoveries after the burst
	}{
		{"driver files: one refresh", func(i int) string { return fmt.Sprintf("libnvidia-burst%d.so.1", i) }, 1},
		{"unrelated files: none", func(i int) string { return fmt.Sprintf("libunrelated%d.so.1", i) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14"})
			var n atomic.Int64
			w, err := inventory.NewWatcher(h.host, inventory.WithNodeStater(h.nodes), countingFacts(&n))
			require.NoError(t, err)
			require.EqualValues(t, 1, n.Load())
			events := startRun(t, w, inventory.RunOptions{Poll: time.Hour, Watch: true, ProcPoll: time.Hour,
				Quiet: 300 * time.Millisecond, MaxDelay: 10 * time.Second})
			libDir := filepath.Join(h.dir, "usr/lib/x86_64-linux-gnu")
			waitWatched(t, w, libDir)
			for i := range 50 {
				h.write("usr/lib/x86_64-linux-gnu/"+tt.files(i), "x")
			}
			if tt.want > 0 {
				require.Eventually(t, func() bool { return n.Load() > 1 }, 10*time.Second, 5*time.Millisecond)
			}
			// Nothing more comes once the burst has settled.
			time.Sleep(time.Second)
			require.Equal(t, 1+tt.want, n.Load(), "discoveries")
			// The files changed nothing the inventory holds: no report.
			require.Empty(t, events)
		})
	}

	t.Run("a burst that does not settle: bounded by MaxDelay", func(t *testing.T) {
		h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14"})
		var n atomic.Int64
		w, err := inventory.NewWatcher(h.host, inventory.WithNodeStater(h.nodes), countingFacts(&n))
		require.NoError(t, err)
		startRun(t, w, inventory.RunOptions{Poll: time.Hour, Watch: true, ProcPoll: time.Hour,
			Quiet: 300 * time.Millisecond, MaxDelay: 500 * time.Millisecond})
		waitWatched(t, w, filepath.Join(h.dir, "usr/lib/x86_64-linux-gnu"))
		// A write every 50ms for 2s never leaves 300ms of quiet.
		for i := range 40 {
			h.write(fmt.Sprintf("usr/lib/x86_64-linux-gnu/libnvidia-slow%d.so.1", i), "x")
			time.Sleep(50 * time.Millisecond)
		}
		require.Eventually(t, func() bool { return n.Load() >= 3 }, 10*time.Second, 5*time.Millisecond,
			"discoveries during a 2s stream with MaxDelay 500ms: want at least 2 besides NewWatcher's")
	})
}

func TestWatcherKick(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14", mig: map[int]int{0: 1}})
	var n atomic.Int64
	var uuid atomic.Value
	uuid.Store("MIG-11111111-1111-1111-1111-111111111111")
	facts := func(inv *inventory.Inventory) error {
		n.Add(1)
		for i := range inv.GPUs {
			for j := range inv.GPUs[i].MIG {
				inv.GPUs[i].MIG[j].UUID = uuid.Load().(string)
			}
		}
		return nil
	}
	w, err := inventory.NewWatcher(h.host, inventory.WithNodeStater(h.nodes), inventory.WithGPUFacts(facts))
	require.NoError(t, err)
	first := w.Current()
	events := startRun(t, w, inventory.RunOptions{Poll: time.Hour, KickInterval: time.Hour})

	// Invisible to the fingerprint: only a Kick finds it.
	uuid.Store("MIG-22222222-2222-2222-2222-222222222222")
	require.True(t, w.Kick())
	select {
	case ev := <-events:
		require.NoError(t, ev.err)
		require.Same(t, first, ev.old)
		_, ok := ev.new.MIGByUUID("MIG-22222222-2222-2222-2222-222222222222")
		require.True(t, ok)
	case <-time.After(10 * time.Second):
		t.Fatal("Kick did not refresh")
	}
	require.EqualValues(t, 2, n.Load())

	// Rate-limited: a second Kick within KickInterval waits (an hour here),
	// and a third finds it pending.
	require.Eventually(t, func() bool { return w.Kick() }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return !w.Kick() }, 5*time.Second, time.Millisecond, "requests coalesce")
	time.Sleep(300 * time.Millisecond)
	require.EqualValues(t, 2, n.Load(), "no rediscovery inside KickInterval")
}

// TestWatcherWatchFallback runs itself in a child process whose file
// descriptors are used up, so that inotify_init fails (EMFILE) as it does
// when fs.inotify.max_user_instances is reached: Run must report it and
// follow the host by polling.
func TestWatcherWatchFallback(t *testing.T) {
	if os.Getenv("GPU_NRI_WATCH_FALLBACK_CHILD") == "1" {
		watchFallbackChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatcherWatchFallback$", "-test.v")
	cmd.Env = append(os.Environ(), "GPU_NRI_WATCH_FALLBACK_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child:\n%s", out)
	require.Contains(t, string(out), "fallback: polled change seen", "child:\n%s", out)
}

func watchFallbackChild(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14"})
	w, err := inventory.NewWatcher(h.host, inventory.WithNodeStater(h.nodes))
	require.NoError(t, err)

	// Use up the file descriptors under a low limit.
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	low := lim
	low.Cur = 64
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	var fillers []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			require.True(t, errors.Is(err, syscall.EMFILE), "filling fds: %v", err)
			break
		}
		fillers = append(fillers, f)
	}
	release := func() {
		for _, f := range fillers {
			_ = f.Close()
		}
		fillers = nil
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	defer release()

	events := startRun(t, w, inventory.RunOptions{Poll: time.Hour, Watch: true, ProcPoll: 20 * time.Millisecond})
	var ev watchEvent
	select {
	case ev = <-events:
	case <-time.After(10 * time.Second):
		release()
		t.Fatal("no report of the unavailable watch")
	}
	release()
	require.ErrorIs(t, ev.err, inventory.ErrWatchUnavailable)
	require.ErrorIs(t, ev.err, syscall.EMFILE)
	require.ErrorIs(t, w.WatchErr(), inventory.ErrWatchUnavailable)
	require.Same(t, ev.old, ev.new, "a watch report changes no inventory")
	require.NotNil(t, w.Current())
	require.Nil(t, w.Watched())

	// Run goes on polling the whole fingerprint at ProcPoll: a node that
	// goes away is seen although nothing watches /dev.
	modeset := filepath.Join(h.dir, "dev/nvidia-modeset")
	require.NoError(t, os.Remove(modeset))
	h.nodes.remove(modeset)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.err != nil {
				continue // refreshes that ran out of descriptors before the release
			}
			require.NotNil(t, ev.new)
			if ev.new.Modeset == nil {
				t.Log("fallback: polled change seen")
				return
			}
		case <-deadline:
			t.Fatalf("the polled change was not seen; current %+v", w.Current())
		}
	}
}

func TestVanishedFile(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14"})
	inv, err := inventory.Discover(h.host, inventory.WithNodeStater(h.nodes))
	require.NoError(t, err)
	lib := inv.Libraries[inventory.Compute][0].HostPath
	fw := inv.Firmware[0].HostPath
	tests := []struct {
		name string
		msg  string
		want string // "" when no file of the inventory is named
	}{
		{"runc mount of a vanished library",
			`failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "` +
				lib + `" to rootfs at "/usr/lib/x86_64-linux-gnu/libcuda.so.1": mount ` + lib + `:/usr/lib/x86_64-linux-gnu/libcuda.so.1 (via /proc/self/fd/7), flags: 0x5001: no such file or directory: unknown`, lib},
		{"crun's form (cannot stat `%s`), firmware", "crun: cannot stat `" + fw + "`: No such file or directory", fw},
		{"another error about the file", `error mounting "` + lib + `": permission denied`, ""},
		{"a longer path that starts with the file's", `error mounting "` + lib + `.1": no such file or directory`, ""},
		{"a file the inventory does not hold", `error mounting "/usr/lib/libfoo.so": no such file or directory`, ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := inv.VanishedFile(tt.msg)
			require.Equal(t, tt.want != "", ok)
			require.Equal(t, tt.want, f.HostPath)
		})
	}
	var none *inventory.Inventory
	_, ok := none.VanishedFile("no such file or directory")
	require.False(t, ok, "nil inventory")
}
