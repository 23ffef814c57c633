package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

// counts are the load-independent measures of one container create+start:
// what the final spec holds, what the runtime created in the image's
// writable layer, and the syscalls made by containerd, the shim and the
// processes they started (strace -f), with the scheduling-dependent calls
// left out (noise).
type counts struct {
	specMounts, specNodes, specHooks int
	upperDirs, upperFiles            int
	// by class: "containerd", "shim", "runtime" (runc, runc init, crun,
	// nvidia-container-runtime), "hooks" (hook processes and ldconfig)
	syscalls map[string]int
	mounts   int // mount(2) calls by runtime and hooks
	execs    int // processes started by the shim (execve)
}

// noise are calls whose number depends on scheduling (Go runtime threads,
// polling, signals, pipe chunking), not on the work.
var noise = map[string]bool{
	"futex": true, "epoll_pwait": true, "epoll_wait": true, "epoll_ctl": true, "nanosleep": true, "clock_nanosleep": true,
	"sched_yield": true, "rt_sigreturn": true, "tgkill": true, "getpid": true, "gettid": true, "rt_sigprocmask": true,
	"rt_sigaction": true, "sigaltstack": true, "madvise": true, "mmap": true, "munmap": true, "wait4": true, "waitid": true,
	"read": true, "write": true, "clock_gettime": true, "pselect6": true, "ppoll": true, "poll": true, "restart_syscall": true,
	"clone": true, "clone3": true, "getrandom": true, "sched_getaffinity": true,
}

// countAll runs one traced sample per variant (after the timed rounds).
func (b *bench) countAll(ctx context.Context, vs []variant) error {
	if _, err := exec.LookPath("strace"); err != nil {
		fmt.Println("# no strace: syscall counts skipped")
		return nil
	}
	fmt.Println("== syscall counts (one traced sample per variant)")
	for _, blk := range b.ctdBlocks() {
		if err := b.register(ctx, blk); err != nil {
			return err
		}
		for _, v := range vs {
			if v.block != blk {
				continue
			}
			c, err := b.count(ctx, v)
			if err != nil {
				return fmt.Errorf("counting %s: %w", v.key, err)
			}
			b.counts[v.key] = c
			fmt.Printf("  %s: mounts %d, nodes %d, hooks %d, new in image %d dirs %d files, mount calls %d, execs %d, syscalls %v\n",
				v.key, c.specMounts, c.specNodes, c.specHooks, c.upperDirs, c.upperFiles, c.mounts, c.execs, c.syscalls)
		}
	}
	return nil
}

func (b *bench) count(ctx context.Context, v variant) (*counts, error) {
	pod, err := b.env.RunPod(ctx, "t-"+v.key, v.handler, v.podAnn)
	if err != nil {
		return nil, err
	}
	defer func() { _ = pod.Remove(ctx) }()
	shim := shimPid(pod.ID)
	if shim == 0 {
		return nil, fmt.Errorf("no shim found for pod %s", pod.ID)
	}
	trace := filepath.Join(b.env.Dir, "logs", "strace-"+v.key+".txt")
	// --pidns-translation: hooks run in the container's PID namespace, where
	// clone returns that namespace's numbers.
	st := exec.Command("strace", "-f", "-qq", "--pidns-translation", "-s", "256", "-o", trace)
	seed := map[int]string{}
	for pid, name := range map[int]string{b.env.Containerd.Pid(): "containerd", shim: "shim"} {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			st.Args = append(st.Args, "-p", t.Name())
			seed[tid] = name
		}
	}
	if err := st.Start(); err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = st.Process.Kill()
			_ = st.Wait()
		}
	}()
	time.Sleep(1500 * time.Millisecond) // strace attaches to every thread
	id, err := pod.Create(ctx, harness.Container{Name: "t-" + v.key, Image: harness.ImageRef("glibc"), Command: []string{"/bin/sh", "-c", "true"}, Annotations: v.ctrAnn, Env: v.env})
	if err != nil {
		return nil, err
	}
	if err := pod.Start(ctx, id); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, harness.DefaultTimeout)
	defer cancel()
	if _, err := pod.WaitExit(wctx, id); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond)
	_ = st.Process.Signal(syscall.SIGINT)
	_ = st.Wait()
	stopped = true
	c, err := parseTrace(trace, seed)
	if err != nil {
		return nil, err
	}
	spec, err := b.env.CRI.Spec(ctx, id)
	if err != nil {
		return nil, err
	}
	if dir := os.Getenv("BENCH_SPECS"); dir != "" {
		if err := writeSpec(dir, v.key, spec); err != nil {
			return nil, err
		}
	}
	c.specMounts = len(spec.Mounts)
	if spec.Linux != nil {
		c.specNodes = len(spec.Linux.Devices)
	}
	if h := spec.Hooks; h != nil {
		c.specHooks = len(h.CreateRuntime) + len(h.CreateContainer) + len(h.StartContainer) + len(h.Poststart)
	}
	if v.handler == "nvidia" {
		// nvidia-container-runtime edits the spec it hands runc, after containerd.
		c.specMounts += b.nv.full.mounts
		c.specNodes += b.nv.full.nodes
		c.specHooks += b.nv.full.hooks
	}
	c.upperDirs, c.upperFiles = b.upper(id)
	return c, nil
}

// writeSpec keeps a traced sample's final OCI spec as DIR/<key>.json
// (BENCH_SPECS=DIR), to compare what two variants hand the runtime.
func writeSpec(dir, key string, spec any) error {
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("BENCH_SPECS: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("BENCH_SPECS: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, key+".json"), data, 0o644); err != nil {
		return fmt.Errorf("BENCH_SPECS: %w", err)
	}
	return nil
}

// upper counts the directories and files the container's start created in
// its writable layer (mount points, hook output), from the snapshot.
func (b *bench) upper(id string) (dirs, files int) {
	out, err := exec.Command(b.env.Tools.Ctr, "-a", b.env.Containerd.Socket(), "-n", "k8s.io", "snapshots", "--snapshotter", "overlayfs", "mounts", "/x", id).CombinedOutput()
	if err != nil {
		return -1, -1
	}
	m := regexp.MustCompile(`upperdir=([^,\s]+)`).FindStringSubmatch(string(out))
	if m == nil {
		return -1, -1
	}
	_ = filepath.Walk(m[1], func(p string, fi os.FileInfo, err error) error {
		switch {
		case err != nil || p == m[1]:
		case fi.IsDir():
			dirs++
		default:
			files++
		}
		return nil
	})
	return dirs, files
}

func shimPid(podID string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cl), "containerd-shim-runc-v2") && strings.Contains(string(cl), podID) {
			return pid
		}
	}
	return 0
}

var (
	lineRE    = regexp.MustCompile(`^(\d+)\s+(.*)$`)
	callRE    = regexp.MustCompile(`^([a-z0-9_]+)\(`)
	resumedRE = regexp.MustCompile(`^<\.\.\. ([a-z0-9_]+) resumed>.*= (-?\d+)`)
	// a return value, with --pidns-translation's "/* N in strace's PID NS */"
	retRE  = regexp.MustCompile(`= (-?\d+)(?: /\* (\d+) in strace's PID NS \*/)?(?: [A-Z].*)?$`)
	execRE = regexp.MustCompile(`^execve(?:at)?\((?:\d+, )?"([^"]*)", \["([^"]*)"`)
)

// parseTrace reads `strace -f` output: seed names the attached threads;
// every other process is named by the program it last executed (or its
// parent's), and each syscall is counted for its process's class.
func parseTrace(file string, seed map[int]string) (*counts, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type line struct {
		pid  int
		rest string
	}
	var lines []line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if m := lineRE.FindStringSubmatch(sc.Text()); m != nil {
			pid, _ := strconv.Atoi(m[1])
			lines = append(lines, line{pid, m[2]})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Pass 1: the parent of every new task and whether it is a thread.
	parent, thread, pending := map[int]int{}, map[int]bool{}, map[int]string{}
	isClone := func(call string) bool {
		return call == "clone" || call == "clone3" || call == "fork" || call == "vfork"
	}
	for _, l := range lines {
		if m := callRE.FindStringSubmatch(l.rest); m != nil && isClone(m[1]) {
			if strings.Contains(l.rest, "<unfinished") {
				pending[l.pid] = l.rest
				continue
			}
			if c := retPid(l.rest); c > 0 {
				parent[c], thread[c] = l.pid, strings.Contains(l.rest, "CLONE_THREAD")
			}
		} else if m := resumedRE.FindStringSubmatch(l.rest); m != nil && isClone(m[1]) {
			if c := retPid(l.rest); c > 0 {
				parent[c], thread[c] = l.pid, strings.Contains(pending[l.pid], "CLONE_THREAD")
			}
			delete(pending, l.pid)
		}
	}
	tgid := func(p int) int {
		for i := 0; thread[p] && i < 1000; i++ {
			p = parent[p]
		}
		return p
	}
	exe := map[int]string{}
	for t, n := range seed {
		exe[t] = n
	}
	name := func(p int) string {
		for g, i := tgid(p), 0; i < 1000; i++ {
			if e, ok := exe[g]; ok {
				return e
			}
			pp, ok := parent[g]
			if !ok {
				return "?"
			}
			g = tgid(pp)
		}
		return "?"
	}
	c := &counts{syscalls: map[string]int{}}
	pendingExec := map[int]string{}
	for _, l := range lines {
		m := callRE.FindStringSubmatch(l.rest)
		if m == nil {
			if r := resumedRE.FindStringSubmatch(l.rest); r != nil && (r[1] == "execve" || r[1] == "execveat") && r[2] == "0" {
				if e, ok := pendingExec[l.pid]; ok {
					exe[tgid(l.pid)] = e
				}
			}
			continue
		}
		call := m[1]
		class := classOf(name(l.pid))
		if call == "execve" || call == "execveat" {
			if e := execRE.FindStringSubmatch(l.rest); e != nil {
				prog := filepath.Base(e[1])
				switch e[1] {
				case "/proc/self/exe":
					prog = name(l.pid) // a re-exec (nvidia-cdi-hook) keeps its name
				case "":
					prog = filepath.Base(e[2]) // execveat of an fd (runc init's memfd, a hook's ldconfig): argv[0]
				}
				if strings.Contains(l.rest, "<unfinished") {
					pendingExec[l.pid] = prog
				} else if strings.HasSuffix(l.rest, "= 0") {
					exe[tgid(l.pid)] = prog
				}
				class = classOf(prog) // the call belongs to the program it starts
				if class != "containerd" {
					c.execs++
				}
			}
		}
		if class == "workload" || noise[call] {
			continue
		}
		c.syscalls[class]++
		if call == "mount" && (class == "runtime" || class == "hooks") {
			c.mounts++
		}
	}
	return c, nil
}

// retPid is the task id a clone returned, in strace's PID namespace.
func retPid(s string) int {
	r := retRE.FindStringSubmatch(s)
	if r == nil {
		return 0
	}
	if r[2] != "" {
		r[1] = r[2]
	}
	n, _ := strconv.Atoi(r[1])
	return n
}

// classOf maps a program name to a counting class.
func classOf(exe string) string {
	switch {
	case exe == "containerd" || exe == "shim":
		return exe
	case exe == "containerd-shim-runc-v2":
		return "shim"
	case exe == "sh" || exe == "true":
		return "workload"
	case strings.Contains(exe, "hook") || strings.Contains(exe, "ldconfig"):
		return "hooks"
	}
	return "runtime"
}
