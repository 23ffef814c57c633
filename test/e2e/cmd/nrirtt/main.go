// Command nrirtt measures NRI's CreateContainer round trip to a plugin
// process, without a container runtime: a bench tool (make bench-nrirtt),
// never deployed. It tells what gpu-nri's process costs per request over
// the smallest NRI plugin (test/e2e/cmd/nrifloor) returning the same
// edits, where the end-to-end bench (test/e2e/cmd/bench) sees it only
// through containerd's and runc's noise.
//
// It builds gpu-nri and nrifloor (static, as the suites do) and a simulated
// 4-GPU host (real device nodes: root), and registers each plugin process
// with its own in-process NRI runtime (github.com/containerd/nri/pkg/
// adaptation, the code containerd embeds) over a unix socket; a third
// runtime has no plugin. gpu-nri runs as the bench's headline variant runs
// it (hookless with injection.libraryDir, log level info, its metrics
// server and inventory watch on; NRIRTT_LIBDIR=0: per-file mounts);
// nrifloor answers with gpu-nri's own answer for GPUs 0 and 2, captured
// once (NRIFLOOR_ADJUSTMENT), so both return the same bytes. Each round
// sends one CreateContainer per variant in a rotating order:
//   - none: the runtime with no plugin (the adaptation's own cost);
//   - fplain, fgpu: nrifloor, a container it does not touch, one it gives
//     GPUs 0 and 2;
//   - plain, gpu: gpu-nri, the same two containers (GPUs 0 and 2 by pod
//     annotation, as the bench asks).
//
// The requests are shaped like containerd's (its annotations, labels,
// mounts, env and Linux fields for a CRI container). Every GPU answer is
// checked (the two GPUs' device nodes); a wrong one stops the run. The
// report gives each variant's median and 90th percentile, the paired
// per-round differences with a distribution-free 95 % interval, and each
// plugin process's CPU time per request (from /proc/PID/stat over the
// rounds) and while idle (10 s after the rounds: background work).
//
// NRIRTT_ROUNDS sets the rounds (default 3000); NRIRTT_OUT writes the
// report to a file as well as to stdout; NRIRTT_GAP (e.g. 20ms) pauses
// before each request, so that the plugins are idle when it comes, as
// between a runtime's container starts; NRIRTT_PLUGIN_ENV adds NAME=value
// words to gpu-nri's environment (an experiment, e.g. GOMAXPROCS=1). Only
// the paired columns compare across processes: the same binary's median
// moved by 30 µs between two runs.
//
// NRIRTT_COLD=N measures instead what the end-to-end bench does to a
// plugin when it switches blocks: N times it restarts both plugin
// processes and times the first requests each new process answers,
// NRIRTT_GAP apart (default 80 ms, one bench sample), against the same
// process warm (cold.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"

	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/nritest"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nrirtt:", err)
		os.Exit(1)
	}
}

const floorAnnotation = "nrifloor.example.com/gpu"

func run() error {
	rounds := 3000
	if v := os.Getenv("NRIRTT_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("NRIRTT_ROUNDS %q: want a positive number", v)
		}
		rounds = n
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (the simulated host's device nodes)")
	}
	repo, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "nrirtt-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ctx := context.Background()

	libdir := os.Getenv("NRIRTT_LIBDIR") != "0"
	s, err := setup(ctx, repo, dir, libdir)
	if err != nil {
		return err
	}
	defer s.close()

	out := io.Writer(os.Stdout)
	if path := os.Getenv("NRIRTT_OUT"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		out = io.MultiWriter(os.Stdout, f)
	}
	var gap time.Duration
	if v := os.Getenv("NRIRTT_GAP"); v != "" {
		gap, err = time.ParseDuration(v)
		if err != nil || gap < 0 {
			return fmt.Errorf("NRIRTT_GAP %q: want a duration such as 20ms", v)
		}
	}
	if v := os.Getenv("NRIRTT_COLD"); v != "" {
		cycles, err := strconv.Atoi(v)
		if err != nil || cycles < 6 {
			return fmt.Errorf("NRIRTT_COLD %q: want a number of restarts, at least 6", v)
		}
		if gap == 0 {
			gap = coldGap
		}
		res, err := s.cold(ctx, cycles, gap)
		if err != nil {
			return err
		}
		res.libdir = libdir
		return res.report(out)
	}
	res, err := s.measure(ctx, rounds, gap)
	if err != nil {
		return err
	}
	res.libdir = libdir
	return res.report(out)
}

// session is the running runtimes and plugins.
type session struct {
	none, floor, gpunri *adaptation.Adaptation
	floorProc, gpuProc  *harness.Plugin
	restart             map[string]func() error // by runtime ("floor", "gpunri"): stop the process, start a new one
	closers             []func()
	gpuNodes            []string // the device nodes a GPU answer must hold
}

func (s *session) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func setup(ctx context.Context, repo, dir string, libdir bool) (*session, error) {
	s := &session{}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(dir, "host"), GPUs: 4, RealNodes: true})
	if err != nil {
		return nil, err
	}
	for _, i := range []int{0, 2} {
		s.gpuNodes = append(s.gpuNodes, fmt.Sprintf("/dev/nvidia%d", i))
	}
	gpuNRI, floorBin := filepath.Join(dir, "bin", "gpu-nri"), filepath.Join(dir, "bin", "nrifloor")
	for bin, pkg := range map[string]string{gpuNRI: "./plugin/cmd/gpu-nri", floorBin: "./test/e2e/cmd/nrifloor"} {
		if err := harness.GoBuild(repo, bin, pkg); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"cdi", "etc", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// One short socket directory: unix socket paths are limited to 108 bytes.
	sockDir, err := os.MkdirTemp("", "rtt")
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = os.RemoveAll(sockDir) })
	for _, r := range []struct {
		name string
		ptr  **adaptation.Adaptation
	}{{"none", &s.none}, {"floor", &s.floor}, {"gpunri", &s.gpunri}} {
		a, err := nritest.NewRuntime(filepath.Join(dir, "rt-"+r.name), filepath.Join(sockDir, r.name+".sock"))
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, a.Stop)
		*r.ptr = a
	}

	cfg := harness.PluginConfig{Host: h.Config, Socket: filepath.Join(sockDir, "gpunri.sock"), Loader: "hookless",
		HookPath: "/opt/gpu-nri/bin/gpu-nri-hook", CDIDirs: []string{filepath.Join(dir, "cdi")}, LogLevel: "info"}
	if libdir {
		cfg.LibraryDir = filepath.Join(dir, "libdir")
	}
	if e := os.Getenv("NRIRTT_PLUGIN_ENV"); e != "" {
		cfg.Env = strings.Fields(e)
	}
	cfgPath := filepath.Join(dir, "etc", "gpu-nri.yaml")
	s.gpuProc, err = harness.StartPlugin(ctx, gpuNRI, cfgPath, filepath.Join(dir, "logs", "gpu-nri.log"), cfg)
	if err != nil {
		return nil, err
	}
	s.restart = map[string]func() error{"gpunri": func() error {
		_ = s.gpuProc.Stop()
		p, err := harness.StartPlugin(ctx, gpuNRI, cfgPath, filepath.Join(dir, "logs", "gpu-nri.log"), cfg)
		if err != nil {
			return err
		}
		s.gpuProc = p
		return nil
	}}
	s.closers = append(s.closers, func() { _ = s.gpuProc.Stop() })

	// nrifloor answers with gpu-nri's own answer, byte for byte.
	adj, err := s.gpuAnswer(ctx, cfg.LibraryDir != "")
	if err != nil {
		return nil, err
	}
	data, err := protojson.Marshal(adj)
	if err != nil {
		return nil, err
	}
	adjPath := filepath.Join(dir, "gpu-nri-answer.json")
	if err := os.WriteFile(adjPath, data, 0o644); err != nil {
		return nil, err
	}
	fcfg := cfg
	fcfg.Name, fcfg.Socket = "nrifloor", filepath.Join(sockDir, "floor.sock")
	fcfg.Env = []string{"NRIFLOOR_ADJUSTMENT=" + adjPath, "NRIFLOOR_ANNOTATION=" + floorAnnotation}
	s.floorProc, err = harness.StartPlugin(ctx, floorBin, filepath.Join(dir, "etc", "nrifloor.yaml"),
		filepath.Join(dir, "logs", "nrifloor.log"), fcfg)
	if err != nil {
		return nil, err
	}
	s.restart["floor"] = func() error {
		_ = s.floorProc.Stop()
		p, err := harness.StartPlugin(ctx, floorBin, filepath.Join(dir, "etc", "nrifloor.yaml"),
			filepath.Join(dir, "logs", "nrifloor.log"), fcfg)
		if err != nil {
			return err
		}
		s.floorProc = p
		return nil
	}
	s.closers = append(s.closers, func() { _ = s.floorProc.Stop() })

	// Ready means synchronized; the runtime routes requests to a plugin
	// only once it has processed that answer: probe until both take part.
	deadline := time.Now().Add(15 * time.Second)
	for _, v := range []variant{variantByKey("fgpu")} {
		for {
			_, err := s.send(ctx, v, 0)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s never answered: %w", v.key, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ok = true
	return s, nil
}

// gpuAnswer waits until gpu-nri answers a GPU request (with the library
// directory's mount when dir: the daemon builds it after its start) and
// returns that answer.
func (s *session) gpuAnswer(ctx context.Context, dir bool) (*api.ContainerAdjustment, error) {
	deadline := time.Now().Add(15 * time.Second)
	v := variantByKey("gpu")
	for {
		rpl, err := s.gpunri.CreateContainer(ctx, request(v, -1))
		if err == nil {
			if !dir {
				return rpl.GetAdjust(), nil
			}
			for _, m := range rpl.GetAdjust().GetMounts() {
				if m.GetDestination() == hookproto.HooklessDir {
					return rpl.GetAdjust(), nil
				}
			}
		}
		if err == nil {
			err = errors.New("the answer has no library directory mount")
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("gpu-nri never answered a GPU request (library directory: %v): %w; its log:\n%s",
				dir, err, s.gpuProc.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
