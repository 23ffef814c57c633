package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gpu-nri/gpu-nri/test/benchstat"
)

func median(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	n := len(s)
	if n%2 == 1 {
		return float64(s[n/2]) / 1e6
	}
	return float64(s[n/2-1]+s[n/2]) / 2e6
}

// sample is one timed container of a round.
type sample struct {
	round               int
	runp, create, start time.Duration
}

// stats are the medians of one variant: runp, CreateContainer,
// StartContainer and create+start (the median of the sums).
func (b *bench) stats(key string) (n int, runp, create, start, cs float64) {
	var r, cr, st, c []time.Duration
	for _, s := range b.samples[key] {
		r, cr, st, c = append(r, s.runp), append(cr, s.create), append(st, s.start), append(c, s.create+s.start)
	}
	return len(b.samples[key]), median(r), median(cr), median(st), median(c)
}

// pairedRatios are key's create+start over base's, round by round (rounds
// where either sample failed are left out).
func (b *bench) pairedRatios(key, base string) []float64 {
	bs := map[int]time.Duration{}
	for _, s := range b.samples[base] {
		bs[s.round] = s.create + s.start
	}
	var out []float64
	for _, s := range b.samples[key] {
		if d, ok := bs[s.round]; ok && d > 0 {
			out = append(out, float64(s.create+s.start)/float64(d))
		}
	}
	return out
}

// paired formats key's per-round ratio to base: "median [lo, hi]".
func (b *bench) paired(key, base string) string {
	med, lo, hi, ok := benchstat.MedianCI(b.pairedRatios(key, base))
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f [%.2f, %.2f]", med, lo, hi)
}

func ratio(a, b float64) string {
	if b <= 0 || a <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// overhead is a-b in milliseconds, signed, or "n/a" when either variant
// has no samples (a BENCH_VARIANTS subset).
func overhead(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f", a-b)
}

// basePlain is the plain variant a variant compares with: runc or crun
// plain with no plugin registered.
func basePlain(v variant) string {
	switch {
	case v.crio && v.crun:
		return "crcplain"
	case v.crio:
		return "crplain"
	case v.crun:
		return "cplain"
	}
	return "plain"
}

// blockPlain is the plain runc container of v's block (same plugin registered).
func blockPlain(v variant) string {
	// The directory blocks' registered plain is the same NRI round trip as
	// their loader's block.
	// A procs block's is its own registered plain (the same GOMAXPROCS).
	blk, p1 := strings.CutSuffix(v.block, procs1)
	plain := map[string]string{"none": "plain", "hook": "hplain", "hookless": "lplain", "hookdir": "hplain", "hooklessdir": "lplain", floorBlock: "fplain"}[blk]
	if p1 {
		return plain + procs1
	}
	return plain
}

func (b *bench) dropNote() string {
	if b.dropped {
		return "Before the rounds the bench ran sync and dropped the kernel's dentry and inode caches (`echo 2 > drop_caches`)."
	}
	return "The kernel's caches were NOT dropped before the rounds (BENCH_DROP_CACHES=0)."
}

func first(bin string, n int, args ...string) string {
	if bin == "" {
		return "-"
	}
	out, _ := exec.Command(bin, args...).Output()
	l, _, _ := strings.Cut(string(out), "\n")
	if f := strings.Fields(l); len(f) > n {
		return f[n]
	}
	return "?"
}

func machine() (cpu, mem string) {
	cpu, mem = "?", "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf("%d GiB", (kb+512*1024)/(1024*1024))
		}
	}
	return cpu, mem
}

func (b *bench) report(vs []variant, scratch bool) string {
	e := b.env
	var w strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&w, f+"\n", a...) }
	cs := func(k string) float64 { _, _, _, _, c := b.stats(k); return c }
	cgroup := "v1 (hybrid: containerd ran without the cgroup2 mount, which crun refuses)"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroup = "v2"
	} else if !hybrid() {
		cgroup = "v1"
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	describe, _ := exec.Command("git", "-C", e.Repo, "describe", "--always", "--dirty").Output()
	cpu, mem := machine()

	p("# End-to-end benchmarks: GPU container start through CRI")
	p("")
	if b.notMeasured() {
		p("**NOT A MEASUREMENT**: the machine was busy during this run (%s). Timings below are only a", b.busyReason())
		p("check that the bench runs; the syscall counts are still valid (they do not depend on load).")
		p("")
	}
	if scratch {
		p("(Scratch output of the bench, not docs/benchmarks-e2e.md.)")
		p("")
	}
	p("Generated by `make bench-e2e` (`go run ./test/e2e/cmd/bench`) on %s.", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("Machine: %d CPUs (%s), %s, kernel %s, cgroup %s.", runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(kernel)), cgroup)
	p("Load average (1, 5, 15 min) before the rounds: %s; after: %s; highest 1-minute load during them %.2f (the bench's own containers keep about one of the CPUs busy).", b.load[0], b.load[1], b.maxLoad)
	p("Filesystem of the bench's directory (containerd's root and state, so every container's writable layer): %s.", b.fs)
	p("Kernel dentry cache before the rounds: %s; after: %s (recorded because quiet runs on this VM differed with it: see the Analysis).", b.dentries[0], b.dentries[1])
	p("Components: containerd %s, runc %s, crun %s, NVIDIA container toolkit %s (nvidia-container-runtime, nvidia-ctk,",
		first(e.Tools.Containerd, 2, "--version"), first(e.Tools.Runc, 2, "--version"), first(e.Tools.Crun, 2, "--version"), nvVersion)
	p("nvidia-cdi-hook, built by `test/tools.sh` TOOLS=nvidia), gpu-nri %s. Simulated host (test/simhost: real device", strings.TrimSpace(string(describe)))
	p("nodes, gcc-built driver libraries) with %d GPUs; every GPU container asks for GPUs 0 and 2.", e.GPUs)
	p("")
	p("Method: one private containerd with runtime handlers runc, crun and nvidia (`nvidia-container-runtime` as runc's")
	p("BinaryName, `mode = \"cdi\"`). A sample is CRI RunPodSandbox (host network, no CNI), then CreateContainer +")
	p("StartContainer of one container running `/bin/sh -c %s` in a glibc image; pods are removed between samples (not", b.cmd)
	p("timed). The variants run in five blocks, one per NRI registration state, so that each gpu-nri variant has exactly one")
	p("gpu-nri registered, as deployed: no plugin (plain, NVIDIA's paths, crun plain), gpu-nri with the hook loader")
	p("(`gpu-nri-hook` as the hook), gpu-nri hookless, and both loaders with `injection.libraryDir` (the driver's libraries as")
	p("one mount of a daemon-built directory at /usr/local/nvidia/lib64; sampled once the daemon has built it). Each round")
	p("(%d in all, after one warm-up sample per variant) visits", b.rounds)
	p("the blocks in a rotating order (a block whose plugin process was just started first gets one untimed GPU sample: a new")
	p("process's first requests pay first-use costs that a long-running daemon pays once) and runs a block's variants in a")
	p("rotating order. Medians in milliseconds (create: CRI CreateContainer, where NRI's")
	p("CreateContainer round trip happens; start: StartContainer, where the runtime mounts and runs the hooks); \"vs plain\"")
	p("compares with the plain container of the same runtime with no plugin registered, \"vs block plain\" with the plain")
	p("runc container while the same gpu-nri is registered (the injection alone, without NRI's round trip). \"per round vs")
	p("plain\" is the median of the variant's create+start over plain's in the same round (two samples seconds apart, so")
	p("drift of the machine between rounds cancels), with a distribution-free 95 %% interval of that median (order")
	p("statistics). %s", b.dropNote())
	if b.env.CRIO != nil {
		p("")
		p("CRI-O %s (the same runc and crun, cgroupfs, NRI enabled) runs after containerd's rounds, in a phase of its own: started", first(e.Tools.Crio, 2, "--version"))
		p("then, so that it was not running during containerd's rounds, with no plugin registered with containerd, and the same")
		p("rounds over three blocks (no plugin, gpu-nri hooked, gpu-nri hookless registered with CRI-O); its rows compare with")
		p("CRI-O's own plain container of the same runtime. Its rows have no syscall counts (the tracer follows containerd).")
	}
	p("")
	mode := "`--mode nvml` (one CDI device per GPU: GPUs 0 and 2 asked by name; nvidia-ctk runs in a private mount namespace whose `/proc/driver` holds the simulated host's `nvidia-caps/mig-minors`, which NVIDIA reads from that fixed path)"
	if b.nv.mode != "nvml" {
		mode = fmt.Sprintf("`--mode management` (one device `all`: every GPU node; used because `--mode nvml` failed on the simulated NVML: %q)", b.nv.modeNote)
	}
	p("NVIDIA's specs: `nvidia-ctk cdi generate` %s, for this host. Full spec: %d mounts, %d device", mode, b.nv.full.mounts, b.nv.full.nodes)
	p("nodes, %d hooks for the container; the floor is the same spec generated with `--disable-hooks all` (%d mounts, %d nodes,", b.nv.full.hooks, b.nv.floor.mounts, b.nv.floor.nodes)
	p("no hooks: the cost of the mounts alone; the driver is then NOT loadable by SONAME).")
	if dm := b.dm; dm != nil {
		p("")
		p("Experiment dirmount (test/e2e/cmd/bench/dirmount.go; not a gpu-nri mode): through containerd's CDI with no plugin,")
		p("gpu-nri's hookless edits as generated (%d mounts, %d device nodes) and the same with the library mounts replaced by one", dm.xhl.mounts, dm.xhl.nodes)
		p("rbind of a host tmpfs at %s holding %d read-only bind-mounted library files and %d SONAME/alias links (%d mounts,", dirmountDest, dm.libs, dm.links, dm.xdir.mounts)
		p("%d device nodes; LD_LIBRARY_PATH=%s).", dm.xdir.nodes, dirmountDest)
	}
	p("")
	p("## Create+start")
	p("")
	p("| variant | samples | runp | create | start | create+start | vs plain | per round vs plain [95 %%] | vs block plain |")
	p("|---|---|---|---|---|---|---|---|---|")
	for _, v := range vs {
		n, runp, cr, st, c := b.stats(v.key)
		bp, pr := "-", "-"
		if v.block != "none" && !v.crun && !v.crio {
			bp = ratio(c, cs(blockPlain(v)))
		}
		if v.key != basePlain(v) {
			pr = b.paired(v.key, basePlain(v))
		}
		p("| %s | %d | %.1f | %.1f | %.1f | %.1f | %s | %s | %s |", v.label, n, runp, cr, st, c, ratio(c, cs(basePlain(v))), pr, bp)
	}
	p("")
	ov := func(k, base string) string { return overhead(cs(k), cs(base)) }
	nvrt := cs("nvrt") - cs("plain")
	if cs("nvrt") <= 0 || cs("plain") <= 0 {
		nvrt = 0
	}
	frac := func(k string) string {
		if nvrt <= 0 || cs(k) <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", (cs(k)-cs("plain"))/nvrt)
	}
	p("Overheads over plain runc (create+start medians, ms): NVIDIA's mount floor %s, NVIDIA's full spec %s,", ov("nvfloor", "plain"), ov("nvcdi", "plain"))
	p("nvidia-container-runtime %s; gpu-nri hooked %s (%s of nvidia-container-runtime's), hookless %s (%s).", ov("nvrt", "plain"),
		ov("hook", "plain"), frac("hook"), ov("hookless", "plain"), frac("hookless"))
	p("With injection.libraryDir: hooked %s (%s), hookless %s (%s).", ov("hookdir", "plain"), frac("hookdir"),
		ov("hooklessdir", "plain"), frac("hooklessdir"))
	if len(b.samples["crplain"]) > 0 {
		p("CRI-O (over its own plain runc container, create+start medians, ms): gpu-nri hooked %s (%s), hookless %s (%s).",
			ov("crhook", "crplain"), ratio(cs("crhook"), cs("crplain")), ov("crhookless", "crplain"), ratio(cs("crhookless"), cs("crplain")))
	}
	r := func(k string) string { return ratio(cs(k), cs("plain")) }
	p("Targets (issue 14), on \"vs plain\": hookless <= 1.10x plain (here %s, with injection.libraryDir %s), hooked <= 1.15x (here %s,", r("hookless"), r("hooklessdir"), r("hook"))
	p("with injection.libraryDir %s).", r("hookdir"))
	if len(b.samples["hook"]) > 0 && len(b.samples["hookless"]) > 0 {
		lib := ""
		if len(b.samples["hookdir"]) > 0 && len(b.samples["hooklessdir"]) > 0 {
			lib = fmt.Sprintf("; with injection.libraryDir, where both have the same mounts, %s", b.paired("hookdir", "hooklessdir"))
		}
		p("The hook loader over hookless, per round [95 %%]: %s%s.", b.paired("hook", "hookless"), lib)
	}
	if len(b.counts) > 0 {
		p("")
		p("## Syscall counts (one traced sample per variant; counts, not timings)")
		p("")
		p("`strace -f` of containerd and the pod's shim (all threads) from before CreateContainer to after the container")
		p("exited, with the calls whose number depends on scheduling left out (futex, epoll, read/write, mmap, clone, signals,")
		p("clock). \"runtime\" is runc/crun (create, init, start, delete) and nvidia-container-runtime, \"hooks\" the hook processes")
		p("and ldconfig; \"new in image\" the directories/files the start created in the container's writable layer (mount points,")
		p("the hook's files). Spec columns are the final OCI spec's mounts (the runtime's own included), device nodes and hooks.")
		p("")
		p("| variant | spec mounts | device nodes | hooks | new in image (dirs/files) | mount(2) calls | runtime syscalls | hook syscalls | shim | containerd | execs |")
		p("|---|---|---|---|---|---|---|---|---|---|---|")
		for _, v := range vs {
			c := b.counts[v.key]
			if c == nil {
				continue
			}
			p("| %s | %d | %d | %d | %d/%d | %d | %d | %d | %d | %d | %d |", v.label, c.specMounts, c.specNodes, c.specHooks,
				c.upperDirs, c.upperFiles, c.mounts, c.syscalls["runtime"], c.syscalls["hooks"], c.syscalls["shim"], c.syscalls["containerd"], c.execs)
		}
	}
	p("")
	p("Reproduce on a quiet machine: `sudo make bench-e2e` (BENCH_ROUNDS=N; BENCH_OUT=FILE writes a scratch file even when")
	p("the machine is busy; docs/benchmarks-e2e.md is refused when the 1-minute load average is over 1.0 or another build runs).")
	p("The hook process alone: `sudo go test -count=1 -run TestHookProcessTiming -v ./pkg/hook/`.")
	// The hand-written analysis below the tables is kept across runs.
	if data, err := os.ReadFile(filepath.Join(e.Repo, "docs", "benchmarks-e2e.md")); err == nil {
		if i := strings.Index(string(data), "\n"+analysisHeading); i >= 0 {
			p("%s", strings.TrimRight(string(data[i:]), "\n"))
		}
	}
	return w.String()
}

// analysisHeading starts the hand-written part of docs/benchmarks-e2e.md,
// which the bench copies into every report it writes.
const analysisHeading = "## Analysis"

// rawSamples is every timed sample of vs as TSV (variant, round, runp,
// create, start in milliseconds), in the variants' order.
func (b *bench) rawSamples(vs []variant) string {
	var sb strings.Builder
	sb.WriteString("variant\tround\trunp_ms\tcreate_ms\tstart_ms\n")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, v := range vs {
		for _, s := range b.samples[v.key] {
			fmt.Fprintf(&sb, "%s\t%d\t%.3f\t%.3f\t%.3f\n", v.key, s.round, ms(s.runp), ms(s.create), ms(s.start))
		}
	}
	return sb.String()
}
