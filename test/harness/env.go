package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// Pod namespace and cgroup parent of every suite pod.
const (
	Namespace    = "gpu-nri-e2e"
	CgroupParent = "/gpu-nri-e2e"
)

// Options configure Setup.
type Options struct {
	// Dir is the work directory (E2E_DIR; default /tmp/gpu-nri-e2e).
	Dir string
	// GPUs is the number of whole GPUs; one more GPU (index GPUs) is in MIG
	// mode with 2 MIG devices. Default 4.
	GPUs int
	// Real reads this machine's driver instead of building a simulated host.
	Real bool
	// Layout is the simulated host's driver layout (simhost.Options.Layout;
	// "" is NVIDIA's).
	Layout string
	// Log receives progress lines (may be nil).
	Log func(format string, args ...any)
	// CRIO also prepares a private CRI-O (Env.CRIO: configured, the images
	// loaded into its containers-storage, not started); it needs the CRI-O
	// test/tools.sh builds.
	CRIO bool
}

// Env is a prepared test bed: tools, binaries, a simulated GPU host, the
// sentinel, a running private containerd with the images imported, and a
// CRI client. Plugins are started by the caller (StartPlugin, Preregister).
type Env struct {
	Repo, Dir string
	Arch      Arch
	Tools     Tools
	Bins      Binaries
	// Host is the simulated host (nil with Options.Real).
	Host *simhost.Host
	// HostConfig is the plugin config's host section.
	HostConfig PluginConfig
	// GPUs is the number of whole GPUs (the MIG GPU has index GPUs).
	GPUs       int
	Sentinel   string
	Containerd *Containerd
	// CRIO is the private CRI-O (nil unless Options.CRIO); UseRuntime
	// makes it the runtime the helpers talk to.
	CRIO *CRIO
	// Runtime is the runtime the helpers (CRI, RunPod, PluginConfig) talk
	// to: Containerd unless UseRuntime chose another.
	Runtime CRIRuntime
	// CRI is a client of Runtime's CRI socket.
	CRI *CRI

	log func(string, ...any)
}

// Setup prepares everything up to a running containerd with the images
// imported. On error, what was started is stopped again.
func Setup(ctx context.Context, o Options) (_ *Env, err error) {
	if o.Dir == "" {
		o.Dir = "/tmp/gpu-nri-e2e"
	}
	if o.GPUs == 0 {
		o.GPUs = 4
	}
	if o.Dir == "/" || !filepath.IsAbs(o.Dir) {
		return nil, fmt.Errorf("harness: bad work dir %q", o.Dir)
	}
	e := &Env{Dir: o.Dir, GPUs: o.GPUs, Sentinel: filepath.Join(o.Dir, "sentinel"), log: o.Log}
	if e.log == nil {
		e.log = func(string, ...any) {}
	}
	t0 := time.Now()
	step := func(what string) { e.log("%s done at %d ms", what, time.Since(t0).Milliseconds()) }
	if e.Repo, err = RepoRoot(); err != nil {
		return nil, err
	}
	if e.Arch, err = HostArch(); err != nil {
		return nil, err
	}
	for _, d := range []string{"logs", "etc"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
	}
	if e.Tools, err = Bootstrap(e.Repo); err != nil {
		return nil, err
	}
	step("tools")
	e.Containerd = &Containerd{
		Dir: o.Dir, Tools: e.Tools, PauseImage: PauseImageRef,
		Runtimes:       []Runtime{{Name: "runc", Binary: e.Tools.Runc}},
		PodAnnotations: []string{"*.gpu-nri.io/*", "gpus.gpu-nri.io/*", "capabilities.gpu-nri.io/*", "cdi.k8s.io/*"},
	}
	if e.Tools.Crun != "" {
		e.Containerd.Runtimes = append(e.Containerd.Runtimes, Runtime{Name: "crun", Binary: e.Tools.Crun})
	}
	e.Runtime = e.Containerd
	if o.CRIO {
		if e.Tools.Crio == "" || e.Tools.Conmon == "" || e.Tools.Podman == "" {
			return nil, fmt.Errorf("harness: CRI-O needs crio and pinns in %s (test/tools.sh builds them) and Debian's conmon and podman: have %+v", e.Tools.Bin, e.Tools)
		}
		e.CRIO = &CRIO{Dir: filepath.Join(o.Dir, "crio"), Tools: e.Tools, PauseImage: PauseImageRef, Handlers: e.Containerd.Runtimes}
		e.CRIO.KillStale()
	}
	// A previous run's containerd (E2E_KEEP, a killed test) and leftovers.
	e.Containerd.KillStale()
	cleanupDir(o.Dir)
	if err := sharedDir(e.SharedDir()); err != nil {
		return nil, err
	}
	for _, f := range []string{e.Containerd.LogPath(), e.PluginLog()} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
	}
	if e.Bins, err = BuildBinaries(e.Repo, o.Dir); err != nil {
		return nil, err
	}
	step("builds")
	cudatest := ""
	if o.Real {
		e.HostConfig.Host.Root, e.HostConfig.Host.DriverRoot, e.HostConfig.Host.DevRoot, e.HostConfig.Host.ProcRoot = "/", "/", "/dev", "/proc"
	} else {
		e.Host, err = simhost.Build(simhost.Options{
			Dir: filepath.Join(o.Dir, "host"), GPUs: o.GPUs + 1, MIG: map[int]int{o.GPUs: 2}, RealNodes: true, Layout: o.Layout,
		})
		if err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		e.HostConfig.Host = e.Host.Config
		cudatest = e.Host.CUDATest
		step("simulated host")
	}
	if cudatest == "" {
		cudatest = filepath.Join(o.Dir, "build", "cudatest")
		if err := run("gcc", "-O2", "-o", cudatest, filepath.Join(e.Repo, "test/csrc/cudatest.c"), "-ldl"); err != nil {
			return nil, err
		}
	}
	if err := WriteSentinel(e.Sentinel); err != nil {
		return nil, err
	}
	_ = os.Remove(e.Bins.PreloadMarker)
	images, err := StandardImages(ImageInputs{Arch: e.Arch, BuildDir: filepath.Join(o.Dir, "build", "rootfs"), CUDATest: cudatest, Bins: e.Bins, Sentinel: e.Sentinel})
	if err != nil {
		return nil, err
	}
	archive := filepath.Join(o.Dir, "build", "images.tar")
	if err := WriteOCIArchive(archive, e.Arch, images...); err != nil {
		return nil, err
	}
	_ = os.RemoveAll(filepath.Join(o.Dir, "build", "rootfs"))
	step("images")
	if e.CRIO != nil {
		if err := e.CRIO.LoadImages(archive); err != nil {
			return nil, err
		}
		step("CRI-O image load")
	}

	if err := e.Containerd.Start(ctx, StartOptions{}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = e.Teardown(context.Background())
		}
	}()
	step("containerd")
	if err := e.Containerd.LoadImages(archive); err != nil {
		return nil, err
	}
	step("image import")
	if e.CRI, err = DialCRI(e.Containerd.Socket()); err != nil {
		return nil, err
	}
	return e, nil
}

// Teardown stops containerd (removing its pods), unmounts leftovers under
// Dir, removes containerd's and the runtimes' state and the suite's
// cgroups. Plugins the caller started are the caller's to stop.
func (e *Env) Teardown(ctx context.Context) error {
	var errs []error
	if e.CRI != nil {
		errs = append(errs, e.CRI.Close())
	}
	if e.Containerd != nil {
		errs = append(errs, e.Containerd.Stop(ctx))
	}
	if e.CRIO != nil {
		errs = append(errs, e.CRIO.Stop(ctx))
	}
	cleanupDir(e.Dir)
	return errors.Join(errs...)
}

// UseRuntime makes r (e.Containerd or e.CRIO) the runtime the helpers talk
// to: CRI is redialled to r's socket. It starts and stops nothing.
func (e *Env) UseRuntime(r CRIRuntime) error {
	if e.Runtime == r && e.CRI != nil {
		return nil
	}
	cri, err := DialCRI(r.Socket())
	if err != nil {
		return err
	}
	if e.CRI != nil {
		_ = e.CRI.Close()
	}
	e.Runtime, e.CRI = r, cri
	return nil
}

// SharedDir is a shared mount made before any runtime starts: a runtime in
// its own mount namespace (StartOptions.CgroupV1) is its slave, so what a
// plugin mounts under it later (injection.libraryDir) reaches the runtime,
// as the host's shared / does on a systemd host.
func (e *Env) SharedDir() string { return filepath.Join(e.Dir, "shared") }

// sharedDir makes dir a shared bind mount of itself.
func sharedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("harness: bind %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("harness: make %s shared: %w", dir, err)
	}
	return nil
}

// cleanupDir lazily unmounts every mount under dir and removes the state
// directories and the suite's empty cgroups.
func cleanupDir(dir string) {
	for _, m := range mountsUnder(dir + "/") {
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
	for _, sub := range []string{"ctd/root", "ctd/state", "ctd/tmp", "s", "runc", "crun", "nri", "host", "podlogs", "cdi", "crio", "shared"} {
		_ = os.RemoveAll(filepath.Join(dir, sub))
	}
	// CRI-O (cgroupfs) leaves each container's monitor cgroup
	// (crio-conmon-<id>) behind, empty; rmdir removes only empty ones.
	crio, _ := filepath.Glob("/sys/fs/cgroup/*" + CgroupParent + "/crio-*")
	crio2, _ := filepath.Glob("/sys/fs/cgroup" + CgroupParent + "/crio-*")
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*" + CgroupParent)
	cgs2, _ := filepath.Glob("/sys/fs/cgroup" + CgroupParent)
	for _, c := range append(append(append(crio, crio2...), cgs...), cgs2...) {
		_ = os.Remove(c)
	}
}

// mountsUnder lists mount points under prefix, deepest first.
func mountsUnder(prefix string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], prefix) {
			out = append(out, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// PluginConfig is the suite's plugin config with the given loader, in
// external mode (the Runtime's NRI socket and CDI dir).
func (e *Env) PluginConfig(loader string) PluginConfig {
	pc := e.HostConfig
	pc.Socket = e.Runtime.NRISocket()
	pc.Loader = loader
	pc.HookPath = e.Bins.Hook
	pc.CDIDirs = []string{e.Runtime.CDIDir()}
	return pc
}

// PluginLog is where started plugins write.
func (e *Env) PluginLog() string { return filepath.Join(e.Dir, "logs", "gpu-nri.log") }

// StartPlugin starts gpu-nri in external mode with cfg (written to
// Dir/etc/<name>.yaml) and returns once /readyz says it is registered.
func (e *Env) StartPlugin(ctx context.Context, name string, cfg PluginConfig) (*Plugin, error) {
	return StartPlugin(ctx, e.Bins.GPUNRI, filepath.Join(e.Dir, "etc", name+".yaml"), e.PluginLog(), cfg)
}

// RunPod starts a pod of the suite (host network, the suite's namespace and
// cgroup parent, logs in a fresh directory under Dir/podlogs).
func (e *Env) RunPod(ctx context.Context, name, handler string, annotations map[string]string) (*Pod, error) {
	base := filepath.Join(e.Dir, "podlogs")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	logDir, err := os.MkdirTemp(base, name+"-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	return e.CRI.RunPod(ctx, PodConfig{
		Name: name, Namespace: Namespace, Annotations: annotations, RuntimeHandler: handler,
		CgroupParent: CgroupParent, LogDir: logDir, PID: e.Runtime.PodPID(),
	})
}
