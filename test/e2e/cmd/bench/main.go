// Command bench (root) measures container start cost on a real containerd
// through CRI, on the simulated GPU host, with test/harness, and writes
// docs/benchmarks-e2e.md (BENCH_WRITE=0: print only).
//
//   - Phase A, gpu-nri registered (three instances: hook loader with the
//     gpu-nri binary as the hook, answering gpus.hook.gpu-nri.io/pod; hook
//     loader with the small gpu-nri-hook, gpus.smallhook.gpu-nri.io/pod;
//     hookless, gpus.hookless.gpu-nri.io/pod): plain pod | GPUs 0,2 each way.
//   - Phase B, no NRI plugin: plain pod | GPUs 0,2 through containerd's
//     native CDI with a hand-written spec mounting the same driver files as
//     gpu-nri and running NVIDIA's nvidia-cdi-hook create-symlinks +
//     update-ldcache (v1.20.2): the loader part of NVIDIA's generated spec.
//   - Phase C, crun (when test/tools.sh built it), two gpu-nri instances
//     (hook, hookless): runc plain | crun plain | crun hooked | crun hookless.
//     On a hybrid-cgroup host containerd runs without the cgroup2 mount.
//
// Each round runs every variant of its phase once, in a rotating order; a
// sample is the wall time of RunPodSandbox, then CreateContainer +
// StartContainer of one /bin/true container in the glibc image. BENCH_ROUNDS
// (default 20) rounds per phase. BENCH_NVHOOK names an nvidia-cdi-hook binary
// (default: built into .cache/tools/nvidia-cdi-hook-v1.20.2 when missing).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
	cdi "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

const nvVersion = "v1.20.2"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// variant is one way of starting a pod.
type variant struct {
	name, handler string
	podAnn        map[string]string // pod annotations
	ctrAnn        map[string]string // container annotations
}

func variants() map[string]variant {
	gpus := func(domain string) map[string]string {
		return map[string]string{"gpus." + domain + ".gpu-nri.io/pod": "0,2"}
	}
	return map[string]variant{
		"plain":     {name: "plain"},
		"hook":      {name: "hook", podAnn: gpus("hook")},
		"smallhook": {name: "smallhook", podAnn: gpus("smallhook")},
		"hookless":  {name: "hookless", podAnn: gpus("hookless")},
		"nvidia":    {name: "nvidia", ctrAnn: map[string]string{"cdi.k8s.io/nvbench": "nvbench.example.com/gpu=gpus"}},
		"cplain":    {name: "cplain", handler: "crun"},
		"chook":     {name: "chook", handler: "crun", podAnn: gpus("hook")},
		"chookless": {name: "chookless", handler: "crun", podAnn: gpus("hookless")},
	}
}

// bench is one run's state.
type bench struct {
	env     *harness.Env
	plugins []*harness.Plugin
	rounds  int
	pass    int
	fail    []string
	samples map[string][][2]time.Duration // "A-plain" -> (runp, create+start)
}

func run() error {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP: the benchmark needs root (it runs containerd, runc and mknod)")
		fmt.Println("0 passed, 0 failed")
		return nil
	}
	rounds := 20
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("BENCH_ROUNDS=%q is not a positive number", v)
		}
		rounds = n
	}
	ctx := context.Background()
	env, err := harness.Setup(ctx, harness.Options{Dir: os.Getenv("E2E_DIR"), Log: func(f string, a ...any) { fmt.Printf("# setup: "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	b := &bench{env: env, rounds: rounds, samples: map[string][][2]time.Duration{}}
	defer func() {
		b.stopPlugins()
		_ = env.Teardown(ctx)
	}()
	nvhook, err := nvidiaHook(env)
	if err != nil {
		return err
	}

	fmt.Println("== phase A: gpu-nri registered (hook, small hook and hookless instances)")
	for _, p := range []struct{ name, idx, loader, domain, hook string }{
		{"gpu-nri-hook", "10", "hook", "hook", env.Bins.GPUNRI},
		{"gpu-nri-hookless", "11", "hookless", "hookless", env.Bins.Hook},
		{"gpu-nri-smallhook", "12", "hook", "smallhook", env.Bins.Hook},
	} {
		if err := b.startPlugin(ctx, p.name, p.idx, p.loader, p.domain, p.hook); err != nil {
			return err
		}
	}
	b.verify(ctx, "hook", "smallhook", "hookless")
	hooks, err := b.hooksInSpec(ctx)
	if err != nil {
		return err
	}
	b.phase(ctx, "A", "plain", "hook", "smallhook", "hookless")
	b.stopPlugins()

	fmt.Println("== phase B: no NRI plugin; NVIDIA's hooks through containerd's native CDI")
	nvMounts, nvLinks, err := writeNVIDIASpec(env, nvhook)
	if err != nil {
		return err
	}
	b.verify(ctx, "nvidia")
	b.phase(ctx, "B", "plain", "nvidia")
	_ = os.Remove(filepath.Join(env.Containerd.CDIDir(), "nvbench.yaml"))

	phaseC := env.Tools.Crun != ""
	if phaseC {
		fmt.Println("== phase C: crun, gpu-nri registered")
		if hybrid() {
			if err := env.Containerd.Restart(ctx, harness.StartOptions{CgroupV1: true}); err != nil {
				return err
			}
		}
		for _, p := range []struct{ name, idx, loader, domain string }{{"gpu-nri-hook", "10", "hook", "hook"}, {"gpu-nri-hookless", "11", "hookless", "hookless"}} {
			if err := b.startPlugin(ctx, p.name, p.idx, p.loader, p.domain, env.Bins.Hook); err != nil {
				return err
			}
		}
		b.verify(ctx, "chook", "chookless")
		b.phase(ctx, "C", "plain", "cplain", "chook", "chookless")
		b.stopPlugins()
	}

	report := b.report(hooks, nvMounts, nvLinks, phaseC)
	fmt.Println("== results")
	if i := strings.Index(report, "| variant"); i >= 0 {
		fmt.Println(report[i:])
	}
	if os.Getenv("BENCH_WRITE") != "0" {
		if err := os.WriteFile(filepath.Join(env.Repo, "docs", "benchmarks-e2e.md"), []byte(report), 0o644); err != nil {
			return err
		}
		fmt.Println("# written to docs/benchmarks-e2e.md")
	}
	if len(b.fail) > 0 {
		fmt.Println("Failed checks:")
		for _, f := range b.fail {
			fmt.Println("  - " + f)
		}
	}
	fmt.Printf("%d passed, %d failed\n", b.pass, len(b.fail))
	if len(b.fail) > 0 {
		return errors.New("some variants did not work")
	}
	return nil
}

func hybrid() bool {
	data, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return err == nil && strings.TrimSpace(string(data)) != ""
}

// nvidiaHook is BENCH_NVHOOK or NVIDIA's nvidia-cdi-hook, built (cgo) into
// the tool cache when missing.
func nvidiaHook(env *harness.Env) (string, error) {
	if p := os.Getenv("BENCH_NVHOOK"); p != "" {
		return p, nil
	}
	dir := filepath.Join(env.Repo, ".cache", "tools", "nvidia-cdi-hook-"+nvVersion)
	bin := filepath.Join(dir, "nvidia-cdi-hook")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Printf("# building nvidia-cdi-hook %s (cgo) into %s\n", nvVersion, dir)
	cmd := exec.Command("go", "install", "github.com/NVIDIA/nvidia-container-toolkit/cmd/nvidia-cdi-hook@"+nvVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building nvidia-cdi-hook: %w: %s", err, out)
	}
	return bin, nil
}

func (b *bench) startPlugin(ctx context.Context, name, idx, loader, domain, hook string) error {
	cfg := b.env.PluginConfig(loader)
	cfg.Name, cfg.Index, cfg.AnnotationDomain, cfg.HookPath, cfg.LogLevel = name, idx, domain+".gpu-nri.io", hook, "info"
	p, err := harness.StartPlugin(ctx, b.env.Bins.GPUNRI, filepath.Join(b.env.Dir, "etc", name+".yaml"), filepath.Join(b.env.Dir, "logs", name+".log"), cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	b.plugins = append(b.plugins, p)
	return nil
}

func (b *bench) stopPlugins() {
	for _, p := range b.plugins {
		_ = p.Stop()
	}
	b.plugins = nil
	// containerd drops a plugin when it reads EOF on its connection.
	time.Sleep(300 * time.Millisecond)
}

// sample starts one pod of variant v: the RunPodSandbox and the
// CreateContainer+StartContainer wall times; the pod is removed afterwards
// (not timed). With cmd != "" it waits for the container and returns its output.
func (b *bench) sample(ctx context.Context, v variant, cmd string) (runp, cs time.Duration, out string, err error) {
	if cmd == "" {
		cmd = "true"
	}
	t0 := time.Now()
	pod, err := b.env.RunPod(ctx, "b-"+v.name, v.handler, v.podAnn)
	if err != nil {
		return 0, 0, "", err
	}
	defer func() { _ = pod.Remove(ctx) }()
	t1 := time.Now()
	id, err := pod.Create(ctx, harness.Container{Name: "b-" + v.name, Image: harness.ImageRef("glibc"), Command: []string{"/bin/sh", "-c", cmd}, Annotations: v.ctrAnn})
	if err != nil {
		return 0, 0, "", err
	}
	if err := pod.Start(ctx, id); err != nil {
		return 0, 0, "", err
	}
	t2 := time.Now()
	if cmd != "true" {
		wctx, cancel := context.WithTimeout(ctx, harness.DefaultTimeout)
		defer cancel()
		st, err := pod.WaitExit(wctx, id)
		if err != nil {
			return 0, 0, "", err
		}
		if out, err = pod.Logs(st); err != nil {
			return 0, 0, "", err
		}
	}
	return t1.Sub(t0), t2.Sub(t1), out, nil
}

// verify: each variant really gives a loadable driver and GPUs 0 and 2.
func (b *bench) verify(ctx context.Context, names ...string) {
	for _, n := range names {
		_, _, out, err := b.sample(ctx, variants()[n], "cudatest; ls /dev/nvidia0 /dev/nvidia2")
		if err == nil && strings.Contains(out, "dlopen=ok lib=libcuda.so.1 devices=2") {
			b.pass++
			fmt.Printf("  PASS %s: %s\n", n, strings.TrimSpace(strings.Split(out, "\n")[0]))
			continue
		}
		b.fail = append(b.fail, n+" does not work")
		fmt.Printf("  FAIL %s does not work: %v\n%s", n, err, out)
	}
}

// hooksInSpec counts the createContainer hooks gpu-nri's hooked variant adds.
func (b *bench) hooksInSpec(ctx context.Context) (int, error) {
	v := variants()["hook"]
	pod, err := b.env.RunPod(ctx, "b-inspect", "", v.podAnn)
	if err != nil {
		return 0, err
	}
	defer func() { _ = pod.Remove(ctx) }()
	id, err := pod.Create(ctx, harness.Container{Name: "b-inspect", Image: harness.ImageRef("glibc"), Command: []string{"true"}})
	if err != nil {
		return 0, err
	}
	spec, err := b.env.CRI.Spec(ctx, id)
	if err != nil {
		return 0, err
	}
	if spec.Hooks == nil {
		return 0, nil
	}
	return len(spec.Hooks.CreateContainer), nil
}

// phase runs one warm-up sample per variant, then rounds interleaved rounds.
func (b *bench) phase(ctx context.Context, phase string, names ...string) {
	vs := variants()
	for _, n := range names {
		_, _, _, _ = b.sample(ctx, vs[n], "")
	}
	t0 := time.Now()
	for r := 0; r < b.rounds; r++ {
		for i := range names {
			n := names[(i+r)%len(names)]
			runp, cs, _, err := b.sample(ctx, vs[n], "")
			if err != nil {
				fmt.Printf("# sample %s failed: %v\n", n, err)
				continue
			}
			b.samples[phase+"-"+n] = append(b.samples[phase+"-"+n], [2]time.Duration{runp, cs})
		}
		fmt.Print(".")
	}
	fmt.Printf("\n# phase %s: %d s\n", phase, int(time.Since(t0).Seconds()))
}

// writeNVIDIASpec writes the CDI spec of phase B: the same driver files
// gpu-nri mounts for compute,utility, the same device nodes, and NVIDIA's
// two loader hooks. It returns the number of mounts and links.
func writeNVIDIASpec(env *harness.Env, nvhook string) (int, int, error) {
	h := env.Host
	dev := h.Config.DevRoot
	node := func(n string) *cdi.DeviceNode {
		return &cdi.DeviceNode{Path: "/dev/" + n, HostPath: filepath.Join(dev, n)}
	}
	wanted := func(c string) bool { return c == "compute" || c == "utility" || c == "" }
	var mounts []*cdi.Mount
	for _, list := range [][]simFile{files(h.Libraries), files(h.Binaries), files(h.ConfigFiles), files(h.Firmware), files(h.Sockets)} {
		for _, f := range list {
			if wanted(f.cap) {
				mounts = append(mounts, &cdi.Mount{HostPath: f.hostPath, ContainerPath: f.path, Options: []string{"ro", "nosuid", "nodev", "bind"}})
			}
		}
	}
	args := []string{"nvidia-cdi-hook", "create-symlinks"}
	links := 0
	for _, f := range files(h.Libraries) {
		if f.link != "" && (f.cap == "compute" || f.cap == "utility") {
			args = append(args, "--link", filepath.Base(f.path)+"::"+f.link)
			links++
		}
	}
	libdir := env.Arch.UsrLibDir()
	args = append(args, "--link", "libcuda.so.1::"+libdir+"/libcuda.so")
	links++
	spec := cdi.Spec{
		Version: "0.6.0", Kind: "nvbench.example.com/gpu",
		Devices: []cdi.Device{{Name: "gpus", ContainerEdits: cdi.ContainerEdits{DeviceNodes: []*cdi.DeviceNode{node("nvidia0"), node("nvidia2")}}}},
		ContainerEdits: cdi.ContainerEdits{
			DeviceNodes: []*cdi.DeviceNode{node("nvidiactl"), node("nvidia-uvm"), node("nvidia-uvm-tools")},
			Mounts:      mounts,
			Hooks: []*cdi.Hook{
				{HookName: "createContainer", Path: nvhook, Args: args, Env: []string{"NVIDIA_CTK_DEBUG=false"}},
				{HookName: "createContainer", Path: nvhook, Args: []string{"nvidia-cdi-hook", "update-ldcache", "--ldconfig-path", "/sbin/ldconfig", "--folder", libdir}, Env: []string{"NVIDIA_CTK_DEBUG=false"}},
			},
		},
	}
	data, err := yaml.Marshal(spec)
	if err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(filepath.Join(env.Containerd.CDIDir(), "nvbench.yaml"), data, 0o644); err != nil {
		return 0, 0, err
	}
	time.Sleep(500 * time.Millisecond) // containerd's CDI cache watches the directory
	return len(mounts), links, nil
}

// simFile is the part of a simulated driver file the spec needs.
type simFile struct{ cap, path, hostPath, link string }

func files(list []simhost.File) []simFile {
	out := make([]simFile, 0, len(list))
	for _, f := range list {
		out = append(out, simFile{cap: string(f.Capability), path: f.Path, hostPath: f.HostPath, link: f.Link})
	}
	return out
}

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

// stats are the medians of one phase-variant: runp, create+start, total.
func (b *bench) stats(key string) (n int, runp, cs, tot float64) {
	var r, c, t []time.Duration
	for _, s := range b.samples[key] {
		r, c, t = append(r, s[0]), append(c, s[1]), append(t, s[0]+s[1])
	}
	return len(b.samples[key]), median(r), median(c), median(t)
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func (b *bench) row(label, key, base string) string {
	n, runp, cs, tot := b.stats(key)
	_, _, bcs, btot := b.stats(base)
	return fmt.Sprintf("| %s | %d | %.1f | %.1f | %.1f | %s | %s |", label, n, runp, cs, tot, ratio(cs, bcs), ratio(tot, btot))
}

func (b *bench) report(hooks, nvMounts, nvLinks int, phaseC bool) string {
	e := b.env
	cs := func(k string) float64 { _, _, c, _ := b.stats(k); return c }
	tot := func(k string) float64 { _, _, _, t := b.stats(k); return t }
	cpu := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	var uts [3]string
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		copy(uts[:], strings.Fields(string(data)))
	}
	cgroup := "v1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroup = "v2"
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	describe, _ := exec.Command("git", "-C", e.Repo, "describe", "--always", "--dirty").Output()
	first := func(bin string, n int, args ...string) string {
		out, _ := exec.Command(bin, args...).Output()
		l, _, _ := strings.Cut(string(out), "\n")
		if f := strings.Fields(l); len(f) > n {
			return f[n]
		}
		return "?"
	}
	var w strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&w, f+"\n", a...) }
	p("# End-to-end benchmarks: GPU container start through CRI")
	p("")
	p("Generated by `go run ./test/e2e/cmd/bench` on %s.", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("Machine: %d CPUs (%s), kernel %s,", runtime.NumCPU(), cpu, strings.TrimSpace(string(kernel)))
	p("cgroup %s; load average at the end: %s.", cgroup, strings.Join(uts[:], " "))
	p("Components: containerd %s, runc %s,", first(e.Tools.Containerd, 2, "--version"), first(e.Tools.Runc, 2, "--version"))
	p("gpu-nri %s, nvidia-cdi-hook %s; simulated host with", strings.TrimSpace(string(describe)), nvVersion)
	p("%d GPUs (test/simhost: real device nodes, gcc-built driver libraries); every container asks for GPUs 0 and 2 with the", e.GPUs)
	p("default capabilities (compute, utility).")
	p("")
	p("Method: one private containerd; a sample is CRI RunPodSandbox (host network, no CNI) then CreateContainer + StartContainer of")
	p("one container running `/bin/true` in a glibc image; pods are removed between samples (not timed). %d interleaved rounds", b.rounds)
	p("per phase (each round runs every variant of its phase once, in a rotating order), after one warm-up sample each. Medians")
	p("in milliseconds. Phase A has three gpu-nri instances registered (hooked with the full `gpu-nri` binary as the hook, answering")
	p("`gpus.hook.gpu-nri.io/pod`; hooked with the small `gpu-nri-hook` binary, `gpus.smallhook.gpu-nri.io/pod`; hookless,")
	p("`gpus.hookless.gpu-nri.io/pod`), so its plain pods also pay three NRI round trips. Phase B has no NRI")
	p("plugin; its GPU variant uses containerd's own CDI injection with a hand-written spec: the same %d driver files and", nvMounts)
	p("5 device nodes, plus NVIDIA's `nvidia-cdi-hook create-symlinks` (%d links) and `update-ldcache` hooks, i.e. the", nvLinks)
	p("loader part of what `nvidia-ctk cdi generate` emits. gpu-nri hooked adds %d createContainer hook(s); hookless", hooks)
	p("adds none.")
	p("")
	p("Numbers from a shared VM are noisy (other builds ran at the same time); compare rows within one run, not across runs.")
	p("")
	p("## Pod create+start, with and without GPUs (gpu-nri registered)")
	p("")
	p("| variant | samples | runp | create+start | pod total | create+start vs plain | total vs plain |")
	p("|---|---|---|---|---|---|---|")
	p("%s", b.row("plain container (no GPU)", "A-plain", "A-plain"))
	p("%s", b.row("gpu-nri, hook loader (hook = gpu-nri binary), GPUs 0,2", "A-hook", "A-plain"))
	p("%s", b.row("gpu-nri, hook loader (hook = gpu-nri-hook binary), GPUs 0,2", "A-smallhook", "A-plain"))
	p("%s", b.row("gpu-nri, hookless, GPUs 0,2", "A-hookless", "A-plain"))
	p("")
	p("## Against NVIDIA's hooks (no NRI plugin registered)")
	p("")
	p("| variant | samples | runp | create+start | pod total | create+start vs plain | total vs plain |")
	p("|---|---|---|---|---|---|---|")
	p("%s", b.row("plain container (no GPU)", "B-plain", "B-plain"))
	p("%s", b.row("CDI spec + nvidia-cdi-hook create-symlinks + update-ldcache", "B-nvidia", "B-plain"))
	p("")
	p("Side by side (create+start medians, each against the plain row of its own phase): plain %.1f / %.1f ms,", cs("A-plain"), cs("B-plain"))
	p("gpu-nri hooked %.1f ms (%sx), with the small hook binary", cs("A-hook"), ratio(cs("A-hook"), cs("A-plain")))
	p("%.1f ms (%sx), gpu-nri hookless %.1f ms", cs("A-smallhook"), ratio(cs("A-smallhook"), cs("A-plain")), cs("A-hookless"))
	p("(%sx), NVIDIA's hooks %.1f ms (%sx).", ratio(cs("A-hookless"), cs("A-plain")), cs("B-nvidia"), ratio(cs("B-nvidia"), cs("B-plain")))
	p("The cost of having the three gpu-nri instances registered for a plain container: %.1f vs %.1f ms per pod.", tot("A-plain"), tot("B-plain"))
	if phaseC {
		p("")
		p("## crun instead of runc (gpu-nri registered, hooked and hookless instances)")
		p("")
		note := ""
		if hybrid() {
			note = " This host has hybrid cgroups, which crun refuses: containerd ran in its own mount namespace without the cgroup2 mount, so both runtimes used cgroup v1."
		}
		p("crun %s (test/tools.sh), pods of containerd's `crun` runtime handler; runc plain in the same rounds for", first(e.Tools.Crun, 2, "--version"))
		p("reference.%s", note)
		p("")
		p("| variant | samples | runp | create+start | pod total | create+start vs crun plain | total vs crun plain |")
		p("|---|---|---|---|---|---|---|")
		p("%s", b.row("runc, plain container (no GPU)", "C-plain", "C-cplain"))
		p("%s", b.row("crun, plain container (no GPU)", "C-cplain", "C-cplain"))
		p("%s", b.row("crun, gpu-nri hook loader, GPUs 0,2", "C-chook", "C-cplain"))
		p("%s", b.row("crun, gpu-nri hookless, GPUs 0,2", "C-chookless", "C-cplain"))
	} else {
		p("")
		p("(No crun: phase C was skipped.)")
	}
	p("")
	p("Reproduce: `sudo go run ./test/e2e/cmd/bench` (BENCH_ROUNDS=N for more rounds, BENCH_WRITE=0 to print only).")
	return w.String()
}
