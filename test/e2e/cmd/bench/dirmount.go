package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
	cdi "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/pkg/cdispec"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/ldcache"
	"github.com/gpu-nri/gpu-nri/test/harness"
)

// The dirmount experiment (BENCH_EXPERIMENT=dirmount, scratch files only)
// measures a design gpu-nri does not have, to size it before anyone builds
// it: the driver's libraries in one daemon-owned host directory, bind-mounted
// file by file once on the host, and mounted into each container as one
// rbind at /usr/local/nvidia/lib64 (the directory NVIDIA's CUDA images list
// in LD_LIBRARY_PATH). Two variants run through containerd's own CDI with no
// NRI plugin registered, so that they differ in the libraries' mounts only:
//   - xhl: gpu-nri's hookless edits for GPUs 0 and 2 as `gpu-nri cdi
//     generate` writes them (what the hookless variant gets over NRI);
//   - xdir: the same edits with every library mount (the versioned files and
//     their SONAME copies in /usr/lib/<triplet> and /usr/lib64) replaced by
//     the one directory mount, and LD_LIBRARY_PATH=/usr/local/nvidia/lib64;
//   - xtrue: xdir plus a createContainer hook running /bin/true (what runc
//     costs for running any hook);
//   - xdirhook: the directory mount without LD_LIBRARY_PATH, plus gpu-nri-hook
//     adding the directory's libraries to the image's ld.so.cache (hook mode
//     with the directory);
//   - xhwcaps: the directory mounted at glibc-hwcaps/x86-64-v2 under both
//     default loader directories (/usr/lib/<triplet> and /usr/lib64), no
//     LD_LIBRARY_PATH and no hook: glibc >= 2.33 searches that subdirectory
//     of every directory on its search path, its own defaults included, on
//     any CPU of that level (x86-64 only; the bench skips it elsewhere);
//   - xnodes: xdir's device nodes (and so their cgroup rules) only, no
//     mounts, no environment; xmounts: xdir's mounts and environment only,
//     no device nodes: what each half of a GPU container costs.
//
// The directory is a tmpfs under the bench's directory holding an empty file
// per library, each bind-mounted read-only from the simulated host's file,
// and relative symbolic links for the SONAME and alias names; it is made
// rprivate so that no container's copy follows later changes on the host.
const (
	dirmountKind = "xdir.example.com/gpu"
	hooklessKind = "xhl.example.com/gpu"
	trueKind     = "xtrue.example.com/gpu"
	dirhookKind  = "xdirhook.example.com/gpu"
	hwcapsKind   = "xhwcaps.example.com/gpu"
	nodesKind    = "xnodes.example.com/gpu"
	mountsKind   = "xmounts.example.com/gpu"
	dirmountDest = "/usr/local/nvidia/lib64"
)

// dirmount is the experiment's host directory.
type dirmount struct {
	root     string // the tmpfs
	libs     int    // library files bind-mounted into it
	links    int    // SONAME and alias links in it
	xdirSpec string // the xdir spec's file (nrifloor returns its edits)
	// mounts of each variant's spec for one container (GPUs 0 and 2).
	xhl, xdir specCount
}

// cdiVariant is an experiment variant asking kind for GPUs 0 and 2.
func cdiVariant(key, kind, label string) variant {
	return variant{key: key, label: "experiment: " + label, block: "none",
		ctrAnn: map[string]string{"cdi.k8s.io/" + key: kind + "=0," + kind + "=2"}, gpu: true, loads: true}
}

// experiment returns BENCH_EXPERIMENT ("", "dirmount", "procs" or
// "nrifloor").
func experiment() (string, error) {
	switch e := os.Getenv("BENCH_EXPERIMENT"); e {
	case "", "dirmount", "procs", "nrifloor":
		return e, nil
	default:
		return "", fmt.Errorf("BENCH_EXPERIMENT=%q: the experiments are dirmount, procs and nrifloor", e)
	}
}

func (b *bench) experimentVariants() []variant {
	switch b.exp {
	case "procs":
		return procsVariants()
	case "nrifloor":
		return floorVariants()
	}
	if b.dm == nil {
		return nil
	}
	vs := []variant{
		cdiVariant("xhl", hooklessKind, "gpu-nri's hookless edits through containerd CDI (no plugin)"),
		cdiVariant("xdir", dirmountKind, "the same, the libraries in one directory mount, LD_LIBRARY_PATH (not a gpu-nri mode)"),
		cdiVariant("xtrue", trueKind, "xdir plus a /bin/true createContainer hook"),
		cdiVariant("xdirhook", dirhookKind, "the directory mount plus gpu-nri-hook merging its ld.so.cache entries (not a gpu-nri mode)"),
	}
	nodes := cdiVariant("xnodes", nodesKind, "xdir's device nodes only: no mounts, no env (not a gpu-nri mode)")
	nodes.loads = false
	mounts := cdiVariant("xmounts", mountsKind, "xdir's mounts and env only: no device nodes (not a gpu-nri mode)")
	mounts.noNodes = true
	vs = append(vs, nodes, mounts)
	if runtime.GOARCH == "amd64" {
		vs = append(vs, cdiVariant("xhwcaps", hwcapsKind, "the directory at glibc-hwcaps/x86-64-v2 of both loader directories, no env, no hook (not a gpu-nri mode)"))
	}
	return vs
}

// setupDirmount builds the directory under dir and writes both variants'
// specs into cdiDir.
func setupDirmount(env *harness.Env, dir, cdiDir string) (_ *dirmount, err error) {
	cfg := env.PluginConfig("hookless")
	data, err := cfg.YAML()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "etc", "xdir.yaml")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		return nil, err
	}
	out, err := exec.Command(env.Bins.GPUNRI, "cdi", "generate", "-c", cfgPath, "--kind", hooklessKind, "--format", "json", "--output", "-").Output()
	if err != nil {
		return nil, fmt.Errorf("gpu-nri cdi generate: %w", err)
	}
	var spec cdi.Spec
	if err := json.Unmarshal(out, &spec); err != nil {
		return nil, fmt.Errorf("gpu-nri cdi generate: %w", err)
	}
	dm := &dirmount{root: filepath.Join(dir, "xdir")}
	defer func() {
		if err != nil {
			_ = dm.unmount()
		}
	}()
	if err := os.MkdirAll(dm.root, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount("tmpfs", dm.root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return nil, fmt.Errorf("mount tmpfs %s: %w", dm.root, err)
	}
	lib64 := filepath.Join(dm.root, "lib64")
	if err := os.Mkdir(lib64, 0o755); err != nil {
		return nil, err
	}
	var kept []*cdi.Mount
	var sonames []hookproto.Soname
	files := map[string]bool{} // host file name -> bound
	for _, m := range spec.ContainerEdits.Mounts {
		d, name := path.Split(m.ContainerPath)
		if !isLibDir(path.Clean(d)) || !strings.Contains(name, ".so") {
			kept = append(kept, m)
			continue
		}
		file := filepath.Base(m.HostPath)
		if !files[file] {
			files[file] = true
			if err := bindFile(m.HostPath, filepath.Join(lib64, file)); err != nil {
				return nil, err
			}
			dm.libs++
			so, err := ldcache.ReadSONAME(m.HostPath)
			if err != nil && !errors.Is(err, ldcache.ErrNoSONAME) {
				return nil, err
			}
			sonames = append(sonames, hookproto.CacheNames(path.Join(dirmountDest, file), so, false)...)
		}
		if name != file {
			if _, err := os.Lstat(filepath.Join(lib64, name)); errors.Is(err, os.ErrNotExist) {
				if err := os.Symlink(file, filepath.Join(lib64, name)); err != nil {
					return nil, err
				}
				dm.links++
			}
		}
	}
	if err := unix.Mount("", dm.root, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("make %s rprivate: %w", dm.root, err)
	}
	xhlPath, err := cdispec.Write(&spec, cdiDir, cdispec.FormatJSON)
	if err != nil {
		return nil, err
	}
	dspec := spec
	dspec.Kind = dirmountKind
	dspec.ContainerEdits.Mounts = append(kept, &cdi.Mount{HostPath: lib64, ContainerPath: dirmountDest, Type: "bind",
		Options: []string{"ro", "nosuid", "nodev", "rbind", "rprivate"}})
	dspec.ContainerEdits.Env = append(append([]string{}, spec.ContainerEdits.Env...), "LD_LIBRARY_PATH="+dirmountDest)
	xdirPath, err := cdispec.Write(&dspec, cdiDir, cdispec.FormatJSON)
	if err != nil {
		return nil, err
	}
	timeout := 10
	hookEnv := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	tspec := dspec
	tspec.Kind = trueKind
	tspec.ContainerEdits.Hooks = []*cdi.Hook{{HookName: "createContainer", Path: "/bin/true", Args: []string{"true"}, Env: hookEnv, Timeout: &timeout}}
	if _, err := cdispec.Write(&tspec, cdiDir, cdispec.FormatJSON); err != nil {
		return nil, err
	}
	hspec := dspec
	hspec.Kind = dirhookKind
	hspec.ContainerEdits.Env = spec.ContainerEdits.Env
	ho := hookproto.Options{Ldconfig: "/sbin/ldconfig", Folders: []string{dirmountDest}, Sonames: dedupSonames(sonames), DriverVersion: env.Host.Options.DriverVersion}
	hspec.ContainerEdits.Hooks = []*cdi.Hook{{HookName: "createContainer", Path: env.Bins.Hook, Args: ho.Args("gpu-nri"), Env: hookEnv, Timeout: &timeout}}
	if _, err := cdispec.Write(&hspec, cdiDir, cdispec.FormatJSON); err != nil {
		return nil, err
	}
	wspec := dspec
	wspec.Kind = hwcapsKind
	wspec.ContainerEdits.Env = spec.ContainerEdits.Env
	wspec.ContainerEdits.Mounts = kept
	for _, d := range libDirs() {
		wspec.ContainerEdits.Mounts = append(wspec.ContainerEdits.Mounts, &cdi.Mount{HostPath: lib64, ContainerPath: d + "/glibc-hwcaps/x86-64-v2",
			Type: "bind", Options: []string{"ro", "nosuid", "nodev", "rbind", "rprivate"}})
	}
	if _, err := cdispec.Write(&wspec, cdiDir, cdispec.FormatJSON); err != nil {
		return nil, err
	}
	if err := writeHalves(&dspec, cdiDir); err != nil {
		return nil, err
	}
	if dm.xhl, err = countSpec(xhlPath, "nvml"); err != nil {
		return nil, err
	}
	dm.xdirSpec = xdirPath
	if dm.xdir, err = countSpec(xdirPath, "nvml"); err != nil {
		return nil, err
	}
	return dm, nil
}

// writeHalves writes the xnodes (device nodes only) and xmounts (mounts
// and environment only) specs from the xdir spec d.
func writeHalves(d *cdi.Spec, cdiDir string) error {
	only := func(kind string, nodes bool) *cdi.Spec {
		s := *d
		s.Kind = kind
		keep := func(e cdi.ContainerEdits) cdi.ContainerEdits {
			if nodes {
				return cdi.ContainerEdits{DeviceNodes: e.DeviceNodes}
			}
			return cdi.ContainerEdits{Env: e.Env, Mounts: e.Mounts}
		}
		s.ContainerEdits = keep(d.ContainerEdits)
		s.Devices = nil
		for _, dev := range d.Devices {
			dev.ContainerEdits = keep(dev.ContainerEdits)
			if len(dev.ContainerEdits.DeviceNodes)+len(dev.ContainerEdits.Mounts)+len(dev.ContainerEdits.Env) == 0 {
				dev.ContainerEdits.Env = []string{"XDEV_" + dev.Name + "=1"} // CDI refuses a device with no edits
			}
			s.Devices = append(s.Devices, dev)
		}
		return &s
	}
	for _, s := range []*cdi.Spec{only(nodesKind, true), only(mountsKind, false)} {
		if _, err := cdispec.Write(s, cdiDir, cdispec.FormatJSON); err != nil {
			return err
		}
	}
	return nil
}

// libDirs are the 64-bit library directories of gpu-nri's hookless layout
// auto on x86-64, where the experiment runs (xhwcaps is x86-64 only).
func libDirs() []string { return []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib64"} }

func isLibDir(d string) bool { return slices.Contains(libDirs(), d) }

func dedupSonames(in []hookproto.Soname) []hookproto.Soname {
	var out []hookproto.Soname
	seen := map[string]bool{}
	for _, so := range in {
		if !seen[so.Path] {
			seen[so.Path] = true
			out = append(out, so)
		}
	}
	return out
}

// bindFile bind-mounts src read-only, nosuid, nodev onto a new empty file dst.
func bindFile(src, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", dst, err)
	}
	return nil
}

// unmount detaches the directory and everything mounted in it.
func (dm *dirmount) unmount() error {
	if dm == nil {
		return nil
	}
	if err := unix.Unmount(dm.root, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", dm.root, err)
	}
	return nil
}

// BENCH_EXPERIMENT=procs: gpu-nri hookless (per-file mounts and with
// injection.libraryDir) once more, its process run with GOMAXPROCS=1, to
// measure whether the Go scheduler's thread hand-offs are part of NRI's
// CreateContainer round trip on a small VM.
const procs1 = "-p1"

var procs1Blocks = []string{"hookless" + procs1, "hooklessdir" + procs1}

func procsVariants() []variant {
	gpus := gpuPodAnnotations()
	return []variant{
		{key: "lplain" + procs1, label: "experiment: runc, plain container, gpu-nri (hookless, GOMAXPROCS=1) registered", block: "hookless" + procs1},
		{key: "hookless" + procs1, label: "experiment: gpu-nri hookless, GOMAXPROCS=1, GPUs 0,2", block: "hookless" + procs1, podAnn: gpus, gpu: true, loads: true},
		{key: "hooklessdir" + procs1, label: "experiment: gpu-nri hookless, injection.libraryDir, GOMAXPROCS=1, GPUs 0,2", block: "hooklessdir" + procs1, podAnn: gpus, gpu: true, loads: true},
	}
}
