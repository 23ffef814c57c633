//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

// requestTimeout is the harness containerd's plugin_request_timeout
// (test/harness/containerd.go); a freeze lasts a second longer.
const requestTimeout = 5 * time.Second

// podDeadline bounds one pod of a burst, retries included;
// harness.PodRemoveTimeout bounds its removal (StopPodSandbox has no bound
// of its own).
const podDeadline = 60 * time.Second

// defaultPhaseTimeout bounds one burst (60 pods take 8-22 s here;
// FAULTS_PHASE_TIMEOUT changes it): a burst still running then, or a
// minute before `go test -timeout`, is stopped and the phase fails with a
// report of what its pods were waiting on.
const defaultPhaseTimeout = 4 * time.Minute

// documentedHole is, per runtime version, how many GPU-less containers one
// death or freeze of gpu-nri may cost under fail-closed (docs/deploy.md,
// "Fail-closed and the request in flight"): containerd's NRI before v0.12.4
// lets the request in flight when the plugin fails proceed without it, and
// it holds one lock across CreateContainer calls, so that is at most one
// request. A runtime not listed is held to the same bound.
func documentedHole(runtimeVersion string) int {
	switch runtimeVersion {
	default:
		return 1
	}
}

type suiteEnv struct {
	env      *harness.Env
	setupErr error
}

var suite suiteEnv

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	dir := os.Getenv("E2E_DIR")
	if dir == "" {
		dir = "/tmp/gpu-nri-faults"
	}
	t0 := time.Now()
	suite.env, suite.setupErr = harness.Setup(context.Background(), harness.Options{Dir: dir, Log: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "# setup: "+f+"\n", a...)
	}})
	fmt.Fprintf(os.Stderr, "# setup: err=%v in %d ms\n", suite.setupErr, time.Since(t0).Milliseconds())
	code := m.Run()
	if suite.env != nil && os.Getenv("E2E_KEEP") != "1" {
		socket := suite.env.Containerd.Socket()
		if err := suite.env.Teardown(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "# teardown:", err)
		}
		fmt.Fprintf(os.Stderr, "# teardown: %d shims containerd lost track of across its SIGKILLs, killed\n", killOrphanShims(socket))
	}
	os.Exit(code)
}

// killOrphanShims SIGKILLs the shims still serving containerd's socket after
// teardown: sandboxes being created when containerd was SIGKILLed are not
// in its state after the restart, so no CRI call removes their shim. It
// returns how many it killed.
func killOrphanShims(socket string) int {
	n := 0
	for _, pid := range shims(socket) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// shims are the pids of the runc shims serving containerd's socket.
func shims(socket string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, f := range procs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !strings.HasSuffix(args[0], "containerd-shim-runc-v2") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == socket {
				if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
					pids = append(pids, pid)
				}
				break
			}
		}
	}
	return pids
}

// envPositive is the environment variable name parsed by parse, def when
// it is unset; the test fails when it does not parse or is not positive.
func envPositive[T int | time.Duration](t *testing.T, name string, def T, parse func(string) (T, error)) T {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := parse(v)
	require.NoError(t, err, "%s=%q", name, v)
	require.Positive(t, n, name)
	return n
}

// tally is one burst's outcome.
type tally struct {
	gpu, gpuLess, unfinished atomic.Int64
	refusals, criErrors      atomic.Int64
	removeErrors             atomic.Int64
	done                     atomic.Int64
	mu                       sync.Mutex
	gpuLessNames             []string
	lastErr, firstRemoveErr  string
	inFlight                 map[string]step // pod -> the call it waits on
	stall                    string          // what the pods waited on when the burst was stopped
}

// step is the CRI call a pod of a burst is in, and since when.
type step struct {
	call  string
	since time.Time
}

func (b *tally) note(err error) {
	b.mu.Lock()
	b.lastErr = err.Error()
	b.mu.Unlock()
}

// at records that pod name now waits on call ("" when it is done).
func (b *tally) at(name, call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inFlight == nil {
		b.inFlight = map[string]step{}
	}
	if call == "" {
		delete(b.inFlight, name)
		return
	}
	b.inFlight[name] = step{call: call, since: time.Now()}
}

// waiting says how many pods wait on each call and since when the oldest
// does, and lists the three longest waits.
func (b *tally) waiting(now time.Time) (summary string, longest []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	type wait struct {
		pod string
		step
	}
	var waits []wait
	for pod, s := range b.inFlight {
		waits = append(waits, wait{pod, s})
	}
	slices.SortFunc(waits, func(a, c wait) int { return a.since.Compare(c.since) })
	calls := map[string]int{}
	oldest := map[string]time.Duration{}
	for _, w := range waits {
		if calls[w.call]++; calls[w.call] == 1 {
			oldest[w.call] = now.Sub(w.since).Round(time.Millisecond)
		}
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(calls)) {
		parts = append(parts, fmt.Sprintf("%d in %s (oldest %s)", calls[c], c, oldest[c]))
	}
	for _, w := range waits[:min(len(waits), 3)] {
		longest = append(longest, fmt.Sprintf("  %s in %s for %s", w.pod, w.call, now.Sub(w.since).Round(time.Millisecond)))
	}
	if len(parts) == 0 {
		return "none", nil
	}
	return strings.Join(parts, ", "), longest
}

// procStats are gpu-nri's process metrics from /metrics.
type procStats struct {
	pid                   int
	rssMB, fds, goroutine float64
	reconnects            float64
}

func (s procStats) String() string {
	return fmt.Sprintf("pid %d: RSS %.1f MB, %.0f fds, %.0f goroutines", s.pid, s.rssMB, s.fds, s.goroutine)
}

func scrape(ctx context.Context, p *harness.Plugin) (procStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.MetricsAddress+"/metrics", nil)
	if err != nil {
		return procStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return procStats{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	vals := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				vals[f[0]] = v
			}
		}
	}
	return procStats{pid: p.Pid(), rssMB: vals["process_resident_memory_bytes"] / (1 << 20), fds: vals["process_open_fds"],
		goroutine: vals["go_goroutines"], reconnects: vals["gpu_nri_nri_reconnects_total"]}, sc.Err()
}

// gpuCheck prints gpu=yes when the container sees its GPU node (and
// nvidiactl), else gpu=no.
func gpuCheck(i int) string {
	return fmt.Sprintf(`if [ -c /dev/nvidia%d ] && [ -c /dev/nvidiactl ]; then echo gpu=yes; else echo gpu=no; ls /dev; fi`, i)
}

// onePod runs pod i of a burst to completion: a refused or failed create is
// retried until podDeadline, as the kubelet would.
func onePod(ctx context.Context, e *harness.Env, name string, gpu int, b *tally) {
	ctx, cancel := context.WithTimeout(ctx, podDeadline)
	defer cancel()
	defer b.done.Add(1)
	defer b.at(name, "")
	retry := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
			return true
		}
	}
	var pod *harness.Pod
	for {
		var err error
		b.at(name, "RunPodSandbox")
		if pod, err = e.RunPod(ctx, name, "runc", nil); err == nil {
			break
		}
		b.criErrors.Add(1)
		b.note(err)
		if !retry() {
			b.unfinished.Add(1)
			return
		}
	}
	defer func() {
		b.at(name, "Stop/RemovePodSandbox")
		rctx, cancel := context.WithTimeout(context.Background(), harness.PodRemoveTimeout)
		defer cancel()
		if err := pod.Remove(rctx); err != nil {
			if b.removeErrors.Add(1) == 1 {
				b.mu.Lock()
				b.firstRemoveErr = err.Error()
				b.mu.Unlock()
			}
			b.note(err)
		}
	}()
	c := harness.Container{Name: "c", Image: harness.ImageRef("glibc"), Command: []string{"/bin/sh", "-c", gpuCheck(gpu)},
		Env: map[string]string{"NVIDIA_VISIBLE_DEVICES": strconv.Itoa(gpu)}}
	for attempt := 0; ; attempt++ {
		c.Name = fmt.Sprintf("c%d", attempt) // a lost attempt keeps its name reserved
		b.at(name, "Create/StartContainer+exit")
		res, err := pod.Run(ctx, c, 20*time.Second)
		var ce *harness.CreateError
		switch {
		case err == nil && strings.Contains(res.Output, "gpu=yes"):
			b.gpu.Add(1)
			return
		case err == nil:
			b.gpuLess.Add(1)
			b.mu.Lock()
			b.gpuLessNames = append(b.gpuLessNames, name)
			b.mu.Unlock()
			return
		case errors.As(err, &ce):
			if strings.Contains(ce.Message, "gpu-nri") || strings.Contains(ce.Message, "required plugin") {
				b.refusals.Add(1)
			} else {
				b.criErrors.Add(1)
			}
			b.note(err)
		default:
			b.criErrors.Add(1)
			b.note(err)
		}
		if !retry() {
			b.unfinished.Add(1)
			return
		}
	}
}

// burst runs n pods at concurrency c until ctx ends; fault, when set, runs
// once when a third of the pods are done, while the burst goes on. If ctx
// ends first, the pods not yet begun are left out, those running give up,
// and the tally's stall says what they were waiting on at that moment,
// followed by report().
func burst(ctx context.Context, e *harness.Env, phase string, n, c int, fault func(), report func() (string, string)) *tally {
	b := &tally{}
	idx := make(chan int)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for i := range idx {
				onePod(ctx, e, fmt.Sprintf("%s-%d", phase, i), i%e.GPUs, b)
			}
		})
	}
	faultDone := make(chan struct{})
	go func() {
		defer close(faultDone)
		if fault == nil {
			return
		}
		for b.done.Load() < int64(n/3) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		fault()
	}()
	finished, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
			waits, longest := b.waiting(time.Now())
			host, details := report()
			stall := fmt.Sprintf("(%v) with %d of %d pods done\nin flight: %s\n%s\n%s\n%s",
				context.Cause(ctx), b.done.Load(), n, waits, host, strings.Join(longest, "\n"), details)
			b.mu.Lock()
			b.stall = stall
			b.mu.Unlock()
		case <-finished:
		}
	}()
feed:
	for i := range n {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	<-faultDone
	close(finished)
	<-watched
	return b
}

// row is one phase's figures.
type row struct {
	mode, phase    string
	pods           int
	wall           time.Duration
	b              *tally
	reconnect      time.Duration
	before, after  procStats
	allowedGPULess int
	note           string
	faultErr       error
}

type faultRun struct {
	t              *testing.T
	e              *harness.Env
	n, c           int
	phaseTimeout   time.Duration
	mu             sync.Mutex // guards plugin, replaced by kill while a burst runs
	plugin         *harness.Plugin
	runtimeVersion string
	rows           []row
}

func (f *faultRun) startPlugin() error {
	p, err := f.e.StartPlugin(context.Background(), "gpu-nri-faults", f.e.PluginConfig("hook"))
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.plugin = p
	f.mu.Unlock()
	return nil
}

// hostReport is what a stalled burst's failure shows of the node: a line
// with the load, mounts and shims, then containerd's goroutines in NRI and
// CRI calls, its latest warnings and errors and the tail of gpu-nri's log.
func (f *faultRun) hostReport() (summary, details string) {
	load, _ := os.ReadFile("/proc/loadavg")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	f.mu.Lock()
	p := f.plugin
	f.mu.Unlock()
	summary = fmt.Sprintf("load average %s; %d mounts; %d shims on containerd's socket",
		strings.TrimSpace(string(load)), bytes.Count(mounts, []byte("\n")), len(shims(f.e.Containerd.Socket())))
	var warnings []string
	for _, l := range strings.Split(f.e.Containerd.LogTail(300), "\n") {
		if strings.Contains(l, "level=error") || strings.Contains(l, "level=warning") {
			warnings = append(warnings, cut(l, 300))
		}
	}
	var gpunri []string
	for _, l := range strings.Split(p.LogTail(5), "\n") {
		gpunri = append(gpunri, cut(l, 300))
	}
	details = fmt.Sprintf("%s\ncontainerd's last warnings and errors:\n%s\ngpu-nri's log:\n%s", f.containerdStacks("stall"),
		strings.Join(warnings[max(0, len(warnings)-8):], "\n"), strings.Join(gpunri, "\n"))
	return summary, details
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}

// waitReconnected waits until gpu-nri counted a reconnection past prev and
// says it is ready, and returns how long that took from since.
func (f *faultRun) waitReconnected(prev float64, since time.Time) (time.Duration, error) {
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s, err := scrape(ctx, f.plugin); err == nil && s.reconnects > prev && f.plugin.Ready(ctx) == nil {
			return time.Since(since), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("gpu-nri did not reconnect within 30 s\n%s\ngpu-nri's log:\n%s", f.containerdStacks("reconnect"), f.plugin.LogTail(12))
}

// containerdStacks is what a failure shows of containerd's goroutines in
// its NRI and CRI code, one line per distinct stack (a plugin that never
// gets its Synchronize shows there as the sync waiting for a lock, and
// what holds it); the whole dump is kept beside containerd's log.
func (f *faultRun) containerdStacks(label string) string {
	dump, err := f.e.Containerd.DumpStacks(context.Background())
	if err != nil {
		return err.Error()
	}
	path := filepath.Join(filepath.Dir(f.e.Containerd.LogPath()), "containerd-stacks-"+label+".log")
	if err := os.WriteFile(path, []byte(dump), 0o644); err != nil {
		path = err.Error()
	}
	return fmt.Sprintf("containerd's goroutines in NRI and CRI calls (whole dump: %s):\n%s", path,
		harness.StackSummary(dump, 14, "containerd/nri/pkg/adaptation", "containerd/v2/internal/nri", "containerd/v2/internal/cri/server"))
}

func (f *faultRun) phase(mode, name string, fault func(*row) error) {
	t := f.t
	ctx := context.Background()
	require.NoError(t, f.plugin.WaitReady(ctx, 15*time.Second), "gpu-nri ready before %s/%s", mode, name)
	before, err := scrape(ctx, f.plugin)
	require.NoError(t, err)
	r := row{mode: mode, phase: name, pods: f.n, before: before}
	var fn func()
	if fault != nil {
		fn = func() { r.faultErr = fault(&r) }
	}
	bctx, cancel := context.WithTimeout(ctx, f.phaseTimeout)
	defer cancel()
	if d, ok := t.Deadline(); ok {
		var cancelEarly context.CancelFunc
		bctx, cancelEarly = context.WithDeadlineCause(bctx, d.Add(-time.Minute), errors.New("a minute left before go test's -timeout"))
		defer cancelEarly()
	}
	t0 := time.Now()
	r.b = burst(bctx, f.e, mode+"-"+name, f.n, f.c, fn, f.hostReport)
	r.wall = time.Since(t0)
	if r.b.stall != "" {
		first, rest, _ := strings.Cut(r.b.stall, "\n")
		require.FailNow(t, "burst stopped", "%s/%s stopped after %s %s; fault error: %v\nlast error: %s\n%s",
			mode, name, r.wall.Round(time.Millisecond), first, r.faultErr, cut(r.b.lastErr, 300), rest)
	}
	require.NoError(t, r.faultErr, "the fault of %s/%s", mode, name)
	require.NoError(t, f.plugin.WaitReady(ctx, 15*time.Second), "gpu-nri ready after %s/%s", mode, name)
	r.after, err = scrape(ctx, f.plugin)
	require.NoError(t, err)
	f.rows = append(f.rows, r)
	t.Logf("%s/%s: %d pods in %s: %d with GPU, %d GPU-less %v, %d refusals, %d other CRI errors, %d unfinished, %d pod removals failed %q; reconnect %s (%s); before %s; after %s; last error: %s",
		mode, name, r.pods, r.wall.Round(time.Millisecond), r.b.gpu.Load(), r.b.gpuLess.Load(), r.b.gpuLessNames, r.b.refusals.Load(),
		r.b.criErrors.Load(), r.b.unfinished.Load(), r.b.removeErrors.Load(), r.b.firstRemoveErr, r.reconnect.Round(time.Millisecond), r.note, r.before, r.after, r.b.lastErr)
	require.Zero(t, r.b.unfinished.Load(), "pods that never ran within %s", podDeadline)
	switch {
	case fault == nil:
		require.Zero(t, r.b.gpuLess.Load(), "GPU-less containers with gpu-nri healthy: %v", r.b.gpuLessNames)
	case mode == "fail-closed":
		require.LessOrEqual(t, r.b.gpuLess.Load(), int64(r.allowedGPULess),
			"GPU-less containers under fail-closed beyond what docs/deploy.md documents for %s: %v", f.runtimeVersion, r.b.gpuLessNames)
	}
}

// kill: SIGKILL gpu-nri mid-burst, start a new one at once.
func (f *faultRun) kill(r *row) error {
	old := f.plugin
	t0 := time.Now()
	r.allowedGPULess = documentedHole(f.runtimeVersion)
	r.note = "reconnect = SIGKILL to a new process's /readyz"
	if err := old.Kill(); err != nil {
		return err
	}
	err := f.startPlugin()
	r.reconnect = time.Since(t0)
	return err
}

// freeze: SIGSTOP gpu-nri for a second longer than the request timeout.
func (f *faultRun) freeze(r *row) error {
	r.allowedGPULess = documentedHole(f.runtimeVersion)
	r.note = fmt.Sprintf("SIGSTOP %s; reconnect = SIGCONT to registered again", requestTimeout+time.Second)
	s, err := scrape(context.Background(), f.plugin)
	if err != nil {
		return err
	}
	pid := f.plugin.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(requestTimeout + time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return err
	}
	r.reconnect, err = f.waitReconnected(s.reconnects, time.Now())
	return err
}

// restartRuntime: SIGKILL containerd mid-burst and start it again.
func (f *faultRun) restartRuntime(r *row) error {
	r.allowedGPULess = 0 // gpu-nri itself is healthy: no request is in flight to a dead plugin
	r.note = "containerd SIGKILL + start; reconnect = containerd up to gpu-nri registered"
	s, err := scrape(context.Background(), f.plugin)
	if err != nil {
		return err
	}
	if err := f.e.Containerd.Kill(); err != nil {
		return err
	}
	if err := f.e.Containerd.Start(context.Background(), harness.StartOptions{}); err != nil {
		return err
	}
	r.reconnect, err = f.waitReconnected(s.reconnects, time.Now())
	return err
}

func TestTallyWaiting(t *testing.T) {
	now := time.Now()
	b := &tally{}
	summary, longest := b.waiting(now)
	require.Equal(t, "none", summary)
	require.Empty(t, longest)
	b.at("p1", "RunPodSandbox")
	b.at("gone", "RunPodSandbox")
	b.at("gone", "")
	b.inFlight["p2"] = step{call: "RunPodSandbox", since: now.Add(-3 * time.Second)}
	b.inFlight["p3"] = step{call: "Stop/RemovePodSandbox", since: now.Add(-40 * time.Second)}
	b.inFlight["p4"] = step{call: "RunPodSandbox", since: now.Add(-time.Second)}
	b.inFlight["p1"] = step{call: "RunPodSandbox", since: now.Add(-500 * time.Millisecond)}
	summary, longest = b.waiting(now)
	require.Equal(t, "3 in RunPodSandbox (oldest 3s), 1 in Stop/RemovePodSandbox (oldest 40s)", summary)
	require.Equal(t, []string{"  p3 in Stop/RemovePodSandbox for 40s", "  p2 in RunPodSandbox for 3s", "  p4 in RunPodSandbox for 1s"}, longest)
}

func TestFaults(t *testing.T) {
	harness.RequireRoot(t)
	require.NoError(t, suite.setupErr, "suite setup")
	e := suite.env
	f := &faultRun{t: t, e: e, n: envPositive(t, "FAULTS_PODS", 60, strconv.Atoi), c: envPositive(t, "FAULTS_CONCURRENCY", 10, strconv.Atoi),
		phaseTimeout: envPositive(t, "FAULTS_PHASE_TIMEOUT", defaultPhaseTimeout, time.ParseDuration)}
	v, err := e.CRI.Version(context.Background())
	require.NoError(t, err)
	f.runtimeVersion = v.RuntimeName + " " + v.RuntimeVersion
	t.Logf("runtime %s; bursts of %d pods at concurrency %d", f.runtimeVersion, f.n, f.c)
	require.NoError(t, f.startPlugin())
	defer func() { _ = f.plugin.Stop() }()

	t.Run("fail-open", func(t *testing.T) {
		f.t = t
		f.phase("fail-open", "healthy", nil)
		f.phase("fail-open", "kill-9", f.kill)
		f.phase("fail-open", "sigstop", f.freeze)
		f.phase("fail-open", "runtime-restart", f.restartRuntime)
	})
	t.Run("fail-closed", func(t *testing.T) {
		f.t = t
		e.Containerd.Imports = []string{filepath.Join(e.Repo, "deploy/runtime/containerd/v3/20-gpu-nri-required.toml")}
		t.Cleanup(func() { e.Containerd.Imports = nil })
		s, err := scrape(context.Background(), f.plugin)
		require.NoError(t, err)
		require.NoError(t, e.Containerd.Kill())
		require.NoError(t, e.Containerd.Start(context.Background(), harness.StartOptions{}))
		_, err = f.waitReconnected(s.reconnects, time.Now())
		require.NoError(t, err, "gpu-nri back after containerd restarted with required_plugins")
		f.phase("fail-closed", "healthy", nil)
		f.phase("fail-closed", "kill-9", f.kill)
		f.phase("fail-closed", "sigstop", f.freeze)
		f.phase("fail-closed", "runtime-restart", f.restartRuntime)
	})
	f.t = t
	writeTable(t, f)
}

func writeTable(t *testing.T, f *faultRun) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; bursts of %d pods at concurrency %d; request timeout %s\n\n", f.runtimeVersion, f.n, f.c, requestTimeout)
	b.WriteString("| mode | fault | wall | with GPU | GPU-less (allowed) | refusals | other CRI errors | reconnect | RSS MB before/after | fds | goroutines |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range f.rows {
		allowed := "not enforced"
		if r.mode == "fail-closed" || r.phase == "healthy" {
			allowed = strconv.Itoa(r.allowedGPULess)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f s | %d | %d (%s) | %d | %d | %s | %.1f / %.1f | %.0f / %.0f | %.0f / %.0f |\n",
			r.mode, r.phase, r.wall.Seconds(), r.b.gpu.Load(), r.b.gpuLess.Load(), allowed, r.b.refusals.Load(), r.b.criErrors.Load(),
			r.reconnect.Round(time.Millisecond), r.before.rssMB, r.after.rssMB, r.before.fds, r.after.fds, r.before.goroutine, r.after.goroutine)
	}
	t.Log("\n" + b.String())
	if out := os.Getenv("FAULTS_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, []byte(b.String()), 0o644))
	}
}
