// Command bench (root) measures container start cost on a real containerd
// through CRI, on the simulated GPU host, with test/harness, beside NVIDIA's
// own paths, and writes docs/benchmarks-e2e.md (`make bench-e2e`).
//
// Variants run in five blocks, one per NRI registration state, so that
// every gpu-nri variant runs with exactly one gpu-nri instance registered,
// as deployed:
//   - none (no NRI plugin): plain (runc), NVIDIA's generated CDI spec
//     through containerd's CDI without its hooks (the mount floor) and in
//     full, NVIDIA's nvidia-container-runtime in CDI mode, crun plain;
//   - hook (gpu-nri, hook loader, gpu-nri-hook as the hook): plain, GPUs
//     0,2 on runc and on crun;
//   - hookless (gpu-nri, hookless loader): plain, GPUs 0,2 on runc and crun;
//   - hookdir, hooklessdir (gpu-nri with injection.libraryDir, hook and
//     hookless loader): GPUs 0,2 on runc, the libraries as one directory
//     mount (sampled once the daemon has built its directories);
//   - crio, crio-hook, crio-hookless: CRI-O 1.34 (the harness's private
//     one, the same runc and crun), with no plugin, gpu-nri hooked or
//     hookless registered with it: plain and GPUs 0,2 on runc and crun. CRI-O
//     runs after containerd's rounds in a phase of its own (started then,
//     stopped after), so that it is not running during them; BENCH_CRIO=0
//     leaves it out.
//
// A round visits the blocks in a rotating order (switching the registered
// plugin, not timed) and runs each block's variants in a rotating order; a
// sample is RunPodSandbox, then CreateContainer + StartContainer of one
// /bin/true container in the glibc image; the pod is removed afterwards.
// Before the rounds, each GPU variant is checked to work (cudatest).
// After them, one more sample per variant runs under strace for syscall
// counts (load-independent; BENCH_COUNTS=0 skips them).
//
// Before the rounds the bench syncs and drops the kernel's dentry and inode
// caches (BENCH_DROP_CACHES=0 keeps them): quiet runs on one VM differed
// with what earlier suites had left there. Each variant is reported by the
// ratio of its median to plain's median and by the median of its per-round
// ratios to plain (the two samples of a round are seconds apart, so slow
// drift of the machine cancels) with that median's distribution-free 95 %
// interval.
//
// Environment: BENCH_ROUNDS (default 40), BENCH_OUT (default
// docs/benchmarks-e2e.md; another path is a scratch file), BENCH_WRITE=0
// (print only), BENCH_SAMPLES=FILE (every timed sample as TSV, for paired
// comparisons the report does not make), BENCH_SETTLE (seconds to wait for the load to fall to 1.0
// before the rounds, default 180), BENCH_COUNTS=0, BENCH_SPECS=DIR (each
// traced sample's final OCI spec as DIR/<key>.json), BENCH_VARIANTS (comma-
// separated variant keys to run, e.g. plain,lplain,hookless: a scratch A/B;
// docs/benchmarks-e2e.md is never written from a subset), BENCH_CMD (the
// timed containers' shell command instead of `true`, e.g. "sleep 3": the
// start of a container that keeps running, whose exit does not overlap the
// StartContainer call; scratch only), BENCH_FS (ext4, the default: the
// bench's directory on a fresh journaled ext4 on a loop device, as on a
// production node; root: on the machine's own filesystem, scratch only; see
// fs.go for why), BENCH_EXPERIMENT=dirmount (adds dirmount.go's variants, a
// design gpu-nri does not have; scratch only), BENCH_EXPERIMENT=procs (the
// hookless blocks again with GOMAXPROCS=1 in gpu-nri's process; scratch
// only) or BENCH_EXPERIMENT=nrifloor (nrifloor.go: the same edits through
// the smallest NRI plugin; scratch only). The bench refuses to
// write docs/benchmarks-e2e.md when the 1-minute load average was over 1.0
// as the rounds began or another build ran during them (compilers, go, other
// containerds, test beds); a scratch file is
// written anyway, marked "NOT A MEASUREMENT".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/pkg/libdir"
	"github.com/gpu-nri/gpu-nri/test/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// variant is one way of starting a pod.
type variant struct {
	key, label string
	block      string // "none", "hook" or "hookless": which gpu-nri is registered
	handler    string // containerd runtime handler ("" = runc)
	podAnn     map[string]string
	ctrAnn     map[string]string
	env        map[string]string
	// gpu: the variant injects GPUs (verified with cudatest); loads: the
	// driver library must load (false for NVIDIA's spec without hooks).
	gpu, loads bool
	noNodes    bool // an experiment variant with the mounts but no device nodes
	crun       bool
	crio       bool // through CRI-O (its own phase, after containerd's rounds)
}

// Blocks in the order of the first round: containerd's, then CRI-O's
// (a phase of its own, so that CRI-O is not running during containerd's).
var (
	blocks     = []string{"none", "hook", "hookless", "hookdir", "hooklessdir"}
	crioBlocks = []string{"crio", "crio-hook", "crio-hookless"}
)

// loaderOf is the injection.loader of a block's gpu-nri.
func loaderOf(blk string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(blk, procs1), "crio-"), "dir")
}

// isCRIO: the block's containers run through CRI-O (and its gpu-nri is
// registered with CRI-O).
func isCRIO(blk string) bool { return strings.HasPrefix(blk, "crio") }

// libraryDirOf is injection.libraryDir of a block's gpu-nri ("" = off).
func (b *bench) libraryDirOf(blk string) string {
	if !strings.HasSuffix(strings.TrimSuffix(blk, procs1), "dir") {
		return ""
	}
	// Under the suite's shared mount, so that containerd, in its own mount
	// namespace when crun runs, sees the directories gpu-nri mounts.
	return filepath.Join(b.env.SharedDir(), "libdir-"+blk)
}

// gpuPodAnnotations is what every gpu-nri GPU variant's pod asks: GPUs 0
// and 2 (a fresh map for each variant list).
func gpuPodAnnotations() map[string]string { return map[string]string{"gpus.gpu-nri.io/pod": "0,2"} }

func (b *bench) variants() []variant {
	gpus := gpuPodAnnotations()
	vs := []variant{
		{key: "plain", label: "runc, plain container (no GPU)", block: "none"},
		{key: "nvfloor", label: "NVIDIA's generated spec without its hooks (containerd CDI; driver NOT loadable)", block: "none", ctrAnn: map[string]string{"cdi.k8s.io/nvbench": b.nv.names("nvfloor.example.com/gpu")}, gpu: true},
		{key: "nvcdi", label: "NVIDIA's full generated spec (containerd CDI)", block: "none", ctrAnn: map[string]string{"cdi.k8s.io/nvbench": b.nv.names("nvidia.com/gpu")}, gpu: true, loads: true},
		{key: "nvrt", label: "nvidia-container-runtime, CDI mode, full spec", block: "none", handler: "nvidia", env: map[string]string{"NVIDIA_VISIBLE_DEVICES": b.nv.visible()}, gpu: true, loads: true},
		{key: "hplain", label: "runc, plain container, gpu-nri (hook loader) registered", block: "hook"},
		{key: "hook", label: "gpu-nri hooked (gpu-nri-hook), GPUs 0,2", block: "hook", podAnn: gpus, gpu: true, loads: true},
		{key: "lplain", label: "runc, plain container, gpu-nri (hookless) registered", block: "hookless"},
		{key: "hookless", label: "gpu-nri hookless, GPUs 0,2", block: "hookless", podAnn: gpus, gpu: true, loads: true},
		{key: "hookdir", label: "gpu-nri hooked, injection.libraryDir (one directory mount), GPUs 0,2", block: "hookdir", podAnn: gpus, gpu: true, loads: true},
		{key: "hooklessdir", label: "gpu-nri hookless, injection.libraryDir (one directory mount), GPUs 0,2", block: "hooklessdir", podAnn: gpus, gpu: true, loads: true},
	}
	if b.env.Tools.Crun != "" {
		vs = append(vs,
			variant{key: "cplain", label: "crun, plain container (no GPU)", block: "none", handler: "crun", crun: true},
			variant{key: "chook", label: "crun, gpu-nri hooked, GPUs 0,2", block: "hook", handler: "crun", podAnn: gpus, gpu: true, loads: true, crun: true},
			variant{key: "chookless", label: "crun, gpu-nri hookless, GPUs 0,2", block: "hookless", handler: "crun", podAnn: gpus, gpu: true, loads: true, crun: true},
		)
	}
	if b.env.CRIO != nil {
		vs = append(vs,
			variant{key: "crplain", label: "CRI-O, runc, plain container (no GPU)", block: "crio", crio: true},
			variant{key: "crhook", label: "CRI-O, runc, gpu-nri hooked, GPUs 0,2", block: "crio-hook", podAnn: gpus, gpu: true, loads: true, crio: true},
			variant{key: "crhookless", label: "CRI-O, runc, gpu-nri hookless, GPUs 0,2", block: "crio-hookless", podAnn: gpus, gpu: true, loads: true, crio: true},
		)
		if b.env.Tools.Crun != "" {
			vs = append(vs,
				variant{key: "crcplain", label: "CRI-O, crun, plain container (no GPU)", block: "crio", handler: "crun", crun: true, crio: true},
				variant{key: "crchook", label: "CRI-O, crun, gpu-nri hooked, GPUs 0,2", block: "crio-hook", handler: "crun", podAnn: gpus, gpu: true, loads: true, crun: true, crio: true},
				variant{key: "crchookless", label: "CRI-O, crun, gpu-nri hookless, GPUs 0,2", block: "crio-hookless", handler: "crun", podAnn: gpus, gpu: true, loads: true, crun: true, crio: true},
			)
		}
	}
	return append(vs, b.experimentVariants()...)
}

// bench is one run's state.
type bench struct {
	env       *harness.Env
	fs        string // what the bench's directory lives on (benchFS)
	nv        *nvidia
	plugin    *harness.Plugin
	current   string // registered block
	rounds    int
	pass      int
	fail      []string
	cmd       string              // the timed containers' command (`true` unless BENCH_CMD)
	samples   map[string][]sample // key -> its timed samples
	busy      []string            // why this run is not a measurement (besides the load)
	maxLoad   float64             // highest 1-minute load average seen
	startLoad float64             // 1-minute load average when the rounds began
	load      [2]string           // load average before and after the rounds
	dentries  [2]string           // the kernel's dentry cache (in use, unused) before and after
	dropped   bool                // the dentry and inode caches were dropped before the rounds
	cgroupV1  bool                // the runtimes run without the cgroup2 mount (crun on a hybrid host)
	counts    map[string]*counts
	dm        *dirmount // BENCH_EXPERIMENT=dirmount (dirmount.go); nil otherwise
	exp       string    // BENCH_EXPERIMENT
	floorBin  string    // BENCH_EXPERIMENT=nrifloor: the nrifloor binary
}

// ctdBlocks are the containerd blocks of this run: blocks, plus
// procs1Blocks under BENCH_EXPERIMENT=procs and floorBlock under
// BENCH_EXPERIMENT=nrifloor.
func (b *bench) ctdBlocks() []string {
	switch b.exp {
	case "procs":
		return append(append([]string(nil), blocks...), procs1Blocks...)
	case "nrifloor":
		return append(append([]string(nil), blocks...), floorBlock)
	}
	return blocks
}

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("the benchmark needs root (it runs containerd, runc and mknod)")
	}
	rounds, err := envInt("BENCH_ROUNDS", 40)
	if err != nil {
		return err
	}
	settle, err := envInt("BENCH_SETTLE", 180)
	if err != nil {
		return err
	}
	ctx := context.Background()
	repo, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	out := os.Getenv("BENCH_OUT")
	official := filepath.Join(repo, "docs", "benchmarks-e2e.md")
	if out == "" {
		out = official
	}
	out, _ = filepath.Abs(out)
	nvDir, err := nvidiaTools(repo)
	if err != nil {
		return err
	}
	dir := os.Getenv("E2E_DIR")
	if dir == "" {
		dir = "/tmp/gpu-nri-bench"
	}
	fs, err := mountBenchFS(dir)
	if err != nil {
		return err
	}
	defer func() {
		if err := fs.unmount(); err != nil {
			fmt.Println("#", err)
		}
	}()
	// containerd (and so the shim and nvidia-container-runtime) inherits this.
	nvConfig := filepath.Join(dir, "etc", "nvidia-container-runtime.toml")
	if err := os.Setenv("NVIDIA_CTK_CONFIG_FILE_PATH", nvConfig); err != nil {
		return err
	}
	env, err := harness.Setup(ctx, harness.Options{Dir: dir, CRIO: os.Getenv("BENCH_CRIO") != "0", Log: func(f string, a ...any) { fmt.Printf("# setup: "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	b := &bench{env: env, fs: fs.desc, rounds: rounds, cmd: "true", samples: map[string][]sample{}, counts: map[string]*counts{}}
	if c := os.Getenv("BENCH_CMD"); c != "" {
		b.cmd = c
	}
	defer func() {
		b.stopPlugin()
		_ = env.Teardown(ctx)
	}()
	if b.nv, err = setupNVIDIA(env, nvDir, nvConfig); err != nil {
		return err
	}
	exp, err := experiment()
	if err != nil {
		return err
	}
	b.exp = exp
	if exp != "" && out == official && os.Getenv("BENCH_WRITE") != "0" {
		return fmt.Errorf("BENCH_EXPERIMENT measures a design gpu-nri does not have: set BENCH_OUT to a scratch file (or BENCH_WRITE=0)")
	}
	if exp == "dirmount" || exp == "nrifloor" {
		if b.dm, err = setupDirmount(env, dir, env.Containerd.CDIDir()); err != nil {
			return err
		}
		defer func() {
			if err := b.dm.unmount(); err != nil {
				fmt.Println("#", err)
			}
		}()
	}
	if exp == "nrifloor" {
		if b.floorBin, err = buildFloor(repo, dir); err != nil {
			return err
		}
	}
	env.Containerd.Runtimes = append(env.Containerd.Runtimes, harness.Runtime{Name: "nvidia", Binary: b.nv.runtime})
	b.cgroupV1 = env.Tools.Crun != "" && hybrid()
	if err := env.Containerd.Restart(ctx, harness.StartOptions{CgroupV1: b.cgroupV1}); err != nil {
		return err
	}
	vs, err := selectVariants(b.variants(), os.Getenv("BENCH_VARIANTS"))
	if err != nil {
		return err
	}
	if os.Getenv("BENCH_VARIANTS") != "" && out == official && os.Getenv("BENCH_WRITE") != "0" {
		return fmt.Errorf("BENCH_VARIANTS runs a subset: set BENCH_OUT to a scratch file (or BENCH_WRITE=0), %s needs every variant", official)
	}
	if os.Getenv("BENCH_FS") == "root" && out == official && os.Getenv("BENCH_WRITE") != "0" {
		return fmt.Errorf("BENCH_FS=root measures this machine's own filesystem: set BENCH_OUT to a scratch file (or BENCH_WRITE=0), %s is measured on a journaled ext4", official)
	}
	if b.cmd != "true" && out == official && os.Getenv("BENCH_WRITE") != "0" {
		return fmt.Errorf("BENCH_CMD changes what is timed: set BENCH_OUT to a scratch file (or BENCH_WRITE=0), %s times `true`", official)
	}

	var ctdVs, crioVs []variant
	for _, v := range vs {
		if v.crio {
			crioVs = append(crioVs, v)
		} else {
			ctdVs = append(ctdVs, v)
		}
	}
	fmt.Println("== checks: every GPU variant gives GPUs and a loadable driver")
	if err := b.check(ctx, b.ctdBlocks(), ctdVs); err != nil {
		return err
	}

	b.settle(settle)
	if os.Getenv("BENCH_DROP_CACHES") != "0" {
		if err := dropCaches(); err != nil {
			return err
		}
		b.dropped = true
	}
	b.load[0] = loadavg()
	b.dentries[0] = dentries()
	b.startLoad = load1()
	b.checkBusy()
	fmt.Printf("== %d interleaved rounds (load %s)\n", rounds, b.load[0])
	t0 := time.Now()
	if err := b.phase(ctx, b.ctdBlocks(), ctdVs); err != nil {
		return err
	}
	if len(crioVs) > 0 {
		if err := b.crioPhase(ctx, crioVs); err != nil {
			return err
		}
	}
	b.load[1] = loadavg()
	b.dentries[1] = dentries()
	fmt.Printf("\n# rounds: %d s, load %s\n", int(time.Since(t0).Seconds()), b.load[1])

	if os.Getenv("BENCH_COUNTS") != "0" {
		if err := b.register(ctx, "none"); err != nil {
			return err
		}
		if err := b.countAll(ctx, ctdVs); err != nil {
			return err
		}
	}
	b.stopPlugin()

	if f := os.Getenv("BENCH_SAMPLES"); f != "" {
		if err := os.WriteFile(f, []byte(b.rawSamples(vs)), 0o644); err != nil {
			return err
		}
		fmt.Println("# samples written to", f)
	}
	report := b.report(vs, out != official)
	fmt.Println("== results")
	if i := strings.Index(report, "| variant"); i >= 0 {
		fmt.Println(report[i:])
	}
	if os.Getenv("BENCH_WRITE") == "0" {
		return nil
	}
	if out == official && b.notMeasured() {
		return fmt.Errorf("not writing %s: the machine was busy (%s); rerun on a quiet machine, or set BENCH_OUT to a scratch file", out, b.busyReason())
	}
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Println("# written to", out)
	return nil
}

// check verifies vs's GPU variants, block by block.
func (b *bench) check(ctx context.Context, blks []string, vs []variant) error {
	for _, blk := range blks {
		if err := b.register(ctx, blk); err != nil {
			return err
		}
		for _, v := range vs {
			if v.block == blk && v.gpu {
				b.verify(ctx, v)
			}
		}
	}
	if len(b.fail) > 0 {
		return fmt.Errorf("variants do not work: %s", strings.Join(b.fail, "; "))
	}
	return nil
}

// phase runs one warm-up sample of each of vs, then b.rounds rounds, each
// visiting blks in a rotating order and a block's variants in a rotating
// order.
func (b *bench) phase(ctx context.Context, blks []string, vs []variant) error {
	for _, blk := range blks {
		if err := b.register(ctx, blk); err != nil {
			return err
		}
		for _, v := range vs {
			if v.block == blk {
				_, _, _, _, _ = b.sample(ctx, v, "") // warm-up
			}
		}
	}
	for r := 0; r < b.rounds; r++ {
		for i := range blks {
			blk := blks[(i+r)%len(blks)]
			var in []variant
			for _, v := range vs {
				if v.block == blk {
					in = append(in, v)
				}
			}
			if len(in) == 0 { // a subset (BENCH_VARIANTS) with none of this block's
				continue
			}
			fresh := b.current != blk
			if err := b.register(ctx, blk); err != nil {
				return err
			}
			if fresh && hasPlugin(blk) {
				// A plugin process started for this visit: its first requests
				// pay first-use costs a long-running daemon pays once
				// (nrirtt's cold mode: 0.25-0.3 ms for any Go plugin), so one
				// untimed sample first and the block measures the steady state.
				_, _, _, _, _ = b.sample(ctx, warmVariant(in), "")
			}
			for j := range in {
				v := in[(j+r)%len(in)]
				runp, cr, st, _, err := b.sample(ctx, v, "")
				if err != nil {
					fmt.Printf("# sample %s failed: %v\n", v.key, err)
					continue
				}
				b.samples[v.key] = append(b.samples[v.key], sample{round: r, runp: runp, create: cr, start: st})
			}
		}
		b.checkBusy()
		fmt.Print(".")
	}
	return nil
}

// crioPhase starts CRI-O (the same runtimes, its own NRI socket), checks
// and times vs through it, then stops it: containerd's rounds ran without
// it, and CRI-O's run with containerd idle and no plugin registered there.
func (b *bench) crioPhase(ctx context.Context, vs []variant) error {
	if err := b.register(ctx, "none"); err != nil {
		return err
	}
	c := b.env.CRIO
	if err := c.Start(ctx, harness.StartOptions{CgroupV1: b.cgroupV1}); err != nil {
		return fmt.Errorf("CRI-O: %w\n%s", err, c.LogTail(20))
	}
	defer func() { _ = c.Stop(ctx) }()
	fmt.Printf("\n== CRI-O %s: checks, then %d interleaved rounds\n", first(b.env.Tools.Crio, 2, "--version"), b.rounds)
	if err := b.check(ctx, crioBlocks, vs); err != nil {
		return err
	}
	if err := b.phase(ctx, crioBlocks, vs); err != nil {
		return err
	}
	return b.register(ctx, "none")
}

// selectVariants keeps the variants whose keys list names (comma-separated;
// "" keeps all), in their usual order; an unknown key is an error naming the
// known ones.
func selectVariants(vs []variant, list string) ([]variant, error) {
	if strings.TrimSpace(list) == "" {
		return vs, nil
	}
	want := map[string]bool{}
	for _, k := range strings.Split(list, ",") {
		if k = strings.TrimSpace(k); k != "" {
			want[k] = true
		}
	}
	var out []variant
	var keys []string
	for _, v := range vs {
		keys = append(keys, v.key)
		if want[v.key] {
			out = append(out, v)
			delete(want, v.key)
		}
	}
	if len(want) > 0 {
		var bad []string
		for k := range want {
			bad = append(bad, k)
		}
		sort.Strings(bad)
		return nil, fmt.Errorf("BENCH_VARIANTS: unknown variant(s) %s; known: %s", strings.Join(bad, ", "), strings.Join(keys, ", "))
	}
	return out, nil
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q is not a number >= 0", name, v)
	}
	return n, nil
}

func hybrid() bool {
	data, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return err == nil && strings.TrimSpace(string(data)) != ""
}

// hasPlugin: blk registers a plugin process (gpu-nri or nrifloor).
func hasPlugin(blk string) bool { return blk != "none" && blk != "crio" }

// warmVariant is the variant of in that warms a new plugin: its first GPU
// container (the path the block times), else its first.
func warmVariant(in []variant) variant {
	for _, v := range in {
		if v.gpu {
			return v
		}
	}
	return in[0]
}

// register makes blk's gpu-nri the only registered NRI plugin (none for
// "none").
func (b *bench) register(ctx context.Context, blk string) error {
	if b.current == blk && (blk == "none" || blk == "crio" || b.plugin != nil) {
		return nil
	}
	b.stopPlugin()
	b.current = blk
	var rt harness.CRIRuntime = b.env.Containerd
	if isCRIO(blk) {
		rt = b.env.CRIO
	}
	if err := b.env.UseRuntime(rt); err != nil {
		return err
	}
	if blk == "none" || blk == "crio" {
		return nil
	}
	if blk == floorBlock {
		p, err := b.startFloor(ctx)
		b.plugin = p
		return err
	}
	cfg := b.env.PluginConfig(loaderOf(blk))
	cfg.LibraryDir = b.libraryDirOf(blk)
	if strings.HasSuffix(blk, procs1) {
		cfg.Env = []string{"GOMAXPROCS=1"}
	}
	cfg.LogLevel = "info"
	// gpu-nri reads its own (empty) CDI directory, not containerd's, which
	// holds NVIDIA's specs for the NVIDIA variants.
	cfg.CDIDirs = []string{filepath.Join(b.env.Dir, "gpu-nri-cdi")}
	if err := os.MkdirAll(cfg.CDIDirs[0], 0o755); err != nil {
		return err
	}
	p, err := b.env.StartPlugin(ctx, "gpu-nri-"+blk, cfg)
	if err != nil {
		return fmt.Errorf("gpu-nri (%s): %w", blk, err)
	}
	b.plugin = p
	if cfg.LibraryDir != "" {
		return waitLibraryDirs(cfg.LibraryDir)
	}
	return nil
}

// waitLibraryDirs waits until gpu-nri has built its directories for the
// default capabilities and `all` (built right after start; a container
// created before gets the per-file mounts).
func waitLibraryDirs(root string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := len(libdir.Built(root))
		if n >= 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gpu-nri built %d of its 2 library directories in %s within 30s", n, root)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bench) stopPlugin() {
	if b.plugin == nil {
		return
	}
	_ = b.plugin.Stop()
	b.plugin = nil
	// containerd drops a plugin when it reads EOF on its connection.
	time.Sleep(300 * time.Millisecond)
}

// sample starts one pod of variant v: the RunPodSandbox, CreateContainer
// and StartContainer wall times; the pod is removed afterwards (not timed).
// cmd "" is a timed sample (b.cmd, not waited for); any other cmd is
// waited for and its output returned.
func (b *bench) sample(ctx context.Context, v variant, cmd string) (runp, create, start time.Duration, out string, err error) {
	timed := cmd == ""
	if timed {
		cmd = b.cmd
	}
	t0 := time.Now()
	pod, err := b.env.RunPod(ctx, "b-"+v.key, v.handler, v.podAnn)
	if err != nil {
		return 0, 0, 0, "", err
	}
	defer func() { _ = pod.Remove(ctx) }()
	t1 := time.Now()
	id, err := pod.Create(ctx, harness.Container{Name: "b-" + v.key, Image: harness.ImageRef("glibc"), Command: []string{"/bin/sh", "-c", cmd}, Annotations: v.ctrAnn, Env: v.env})
	if err != nil {
		return 0, 0, 0, "", err
	}
	t2 := time.Now()
	if err := pod.Start(ctx, id); err != nil {
		return 0, 0, 0, "", err
	}
	t3 := time.Now()
	if !timed {
		wctx, cancel := context.WithTimeout(ctx, harness.DefaultTimeout)
		defer cancel()
		st, err := pod.WaitExit(wctx, id)
		if err != nil {
			return 0, 0, 0, "", err
		}
		if out, err = pod.Logs(st); err != nil {
			return 0, 0, 0, "", err
		}
	}
	return t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), out, nil
}

// verify: a GPU variant really gives GPU device nodes and (unless it is
// NVIDIA's spec without hooks) a loadable driver.
func (b *bench) verify(ctx context.Context, v variant) {
	script := "cudatest; ls /dev/nvidia0 /dev/nvidia2"
	if v.noNodes {
		script = "cudatest; ls /dev/nvidia0 2>&1"
	}
	if b.libraryDirOf(v.block) != "" { // the libraries came as the one directory mount
		script += "; grep -c ' /usr/local/nvidia/lib64 ' /proc/self/mountinfo | sed 's/^/libdir mounts: /'"
	}
	_, _, _, out, err := b.sample(ctx, v, script)
	first := strings.TrimSpace(strings.Split(out, "\n")[0])
	ok := err == nil && strings.Contains(out, "/dev/nvidia0\n") && strings.Contains(out, "/dev/nvidia2\n")
	if v.noNodes {
		ok = err == nil && strings.Contains(out, "No such file")
	}
	if b.libraryDirOf(v.block) != "" {
		ok = ok && strings.Contains(out, "libdir mounts: 1\n")
	}
	if v.loads {
		ok = ok && strings.Contains(first, "dlopen=ok lib=libcuda.so.1 devices=")
	} else {
		ok = ok && strings.Contains(first, "dlopen=FAIL")
	}
	if ok {
		b.pass++
		fmt.Printf("  PASS %s: %s\n", v.key, first)
		return
	}
	b.fail = append(b.fail, v.key+" does not work")
	fmt.Printf("  FAIL %s: %v\n%s", v.key, err, out)
}

// dropCaches writes back dirty data and drops the kernel's clean dentry and
// inode caches (not the page cache): quiet runs on the same VM differed
// with the size of the dentry cache that earlier suites had left.
func dropCaches() error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0o200); err != nil {
		return fmt.Errorf("dropping the dentry and inode caches before the rounds (BENCH_DROP_CACHES=0 skips it): %w", err)
	}
	return nil
}

// dentries is the kernel's dentry cache size, "<in use> (<unused> unused)"
// from /proc/sys/fs/dentry-state: quiet runs differed with it
// (docs/benchmarks-e2e.md), which the load average does not show.
func dentries() string {
	data, err := os.ReadFile("/proc/sys/fs/dentry-state")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return "?"
	}
	return f[0] + " (" + f[1] + " unused)"
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func load1() float64 {
	f := strings.Fields(loadavg())
	if len(f) == 0 {
		return 99
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 99
	}
	return v
}

// settle waits up to secs for the 1-minute load average to fall to 1.0
// (the setup compiles).
func (b *bench) settle(secs int) {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for load1() > 1.0 && time.Now().Before(deadline) {
		fmt.Printf("# waiting for the load to fall to 1.0 (now %s)\n", loadavg())
		time.Sleep(10 * time.Second)
	}
}

// buildProcs are process names that mean another build or test bed runs.
var buildProcs = map[string]bool{"compile": true, "link": true, "asm": true, "cgo": true, "vet": true, "cc1": true, "cc1plus": true, "ld": true, "golangci-lint": true, "make": true, "kubelet": true, "kube-apiserver": true, "crio": true, "podman": true, "buildah": true}

// checkBusy records why this run is not a measurement: a 1-minute load over
// 1.0, or a build or another containerd running.
func (b *bench) checkBusy() {
	add := func(s string) {
		for _, x := range b.busy {
			if x == s {
				return
			}
		}
		b.busy = append(b.busy, s)
	}
	if l := load1(); l > b.maxLoad {
		b.maxLoad = l
	}
	ours := b.env.Containerd.Pid()
	mine := ancestors()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || mine[pid] {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		switch {
		case name == "crio" && b.env.CRIO != nil && b.env.CRIO.Running() && descends(pid, b.env.CRIO.Pid()):
			// the bench's own CRI-O (and what it runs under its own name)
		case buildProcs[name]:
			add("another build or test bed was running (" + name + ")")
		case name == "containerd" && pid != ours:
			add("another containerd was running")
		case strings.HasSuffix(name, ".test"):
			add("a Go test binary was running (" + name + ")")
		}
	}
}

// notMeasured: the 1-minute load average was over 1.0 when the rounds
// began, or something else ran during them. The load during the rounds is
// recorded, not judged: on a 2-CPU machine the bench's own containers keep
// about one CPU busy, so its own 1-minute load reaches 1.0-1.6 with nothing
// else running; other work is caught by checkBusy's process scan.
func (b *bench) notMeasured() bool { return b.startLoad > 1.0 || len(b.busy) > 0 }

func (b *bench) busyReason() string {
	r := b.busy
	if b.startLoad > 1.0 {
		r = append([]string{fmt.Sprintf("1-minute load average %.2f > 1.0 when the rounds began", b.startLoad)}, r...)
	}
	return strings.Join(r, "; ")
}

// descends: pid is root or one of its descendants.
func descends(pid, root int) bool {
	for i := 0; pid > 1 && i < 64; i++ {
		if pid == root {
			return true
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 2 {
			return false
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			return false
		}
	}
	return false
}

// ancestors are this process and its parents (make bench-e2e, go run).
func ancestors() map[int]bool {
	out := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !out[pid]; {
		out[pid] = true
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 2 {
			break
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			break
		}
	}
	return out
}

// nvidiaTools builds (or finds, cached by version) NVIDIA's container
// toolkit with test/tools.sh TOOLS=nvidia and returns its directory.
func nvidiaTools(repo string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(repo, "test", "tools.sh"))
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "TOOLS=nvidia", "WITH_PODMAN=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("test/tools.sh TOOLS=nvidia: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}
