//go:build k8s

package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpu-nri/gpu-nri/test/harness"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// The node: test/harness's test bed (simulated GPU host in Debian's packaged
// driver layout, private containerd with its CRI client, the gpu-nri build,
// the suite's images) plus what the
// Kubernetes suite adds: containerd configs importing the repository's
// drop-ins, a second gpu-nri build for the rolling update, the gpu-nri
// image, and the processes of the cluster (cluster_test.go).

const pluginImage = "localhost/gpu-nri/gpu-nri"

type node struct {
	e *harness.Env
	// rt is the runtime the cluster's kubelet talks to: the harness's
	// containerd, or the private CRI-O of the crio subtests (crio_test.go).
	rt        harness.CRIRuntime
	repo, dir string
	bin, bin2 string // gpu-nri of this tree; the same with version k8s-test-2
	host      *simhost.Host
	env       []string // PATH with the tools first
}

// proc is a process the suite started: stopped (TERM, then KILL) by stop.
// Its pid is kept in <dir>/run/<name>.pid until then, so that a run killed
// before its cleanup (go test -timeout) is stopped by the next (killStale).
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	pidFile string
}

// killStale kills the processes a previous run recorded under dir/run and
// left running: only a recorded pid whose command is still the recorded one.
func killStale(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "run", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		_ = os.Remove(f)
		if err != nil {
			continue
		}
		pidText, exe, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 1 {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || string(bytes.SplitN(cmdline, []byte{0}, 2)[0]) != exe {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// lookPath finds a program in env's PATH (exec.Command looks in the test
// process's own PATH, which does not have the tools).
func lookPath(env []string, prog string) string {
	if strings.Contains(prog, "/") {
		return prog
	}
	for _, d := range filepath.SplitList(pathOf(env)) {
		p := filepath.Join(d, prog)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return prog
}

func startProc(dir, logFile, name string, env []string, args ...string) (*proc, error) {
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(lookPath(env, args[0]), args[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), pidFile: filepath.Join(dir, "run", name+".pid")}
	go func() { _ = cmd.Wait(); lf.Close(); close(p.done) }()
	if err := os.MkdirAll(filepath.Dir(p.pidFile), 0o755); err == nil {
		_ = os.WriteFile(p.pidFile, fmt.Appendf(nil, "%d %s", cmd.Process.Pid, cmd.Args[0]), 0o644)
	}
	return p, nil
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM (SIGKILL with kill) and waits; SIGKILL after 10 s.
func (p *proc) stop(kill bool) {
	if p == nil {
		return
	}
	defer os.Remove(p.pidFile)
	if !p.alive() {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// eventually calls f until it returns nil or timeout passes; it returns f's last error.
func eventually(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runCmd runs a command with env in dir (the current one when empty) and
// returns its stdout and stderr; the error carries both.
func runCmd(env []string, dir string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, lookPath(env, args[0]), args[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(stdout.String()+stderr.String()))
	}
	return stdout.String(), stderr.String(), nil
}

// toolDir runs a tool bootstrap script and returns the directory it printed last.
func toolDir(repo, script string, env ...string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(repo, script))
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// newNode sets the test bed up (containerd running without drop-ins, images
// imported) and builds the second gpu-nri; the teardown is registered.
func newNode(t *testing.T, dir string) *node {
	t.Helper()
	killStale(filepath.Join(dir, "k8s"))
	e, err := harness.Setup(context.Background(), harness.Options{Dir: dir, Layout: simhost.LayoutDebian, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("E2E_KEEP") == "1" {
			t.Logf("E2E_KEEP=1: containerd left running under %s", dir)
			return
		}
		if err := e.Teardown(context.Background()); err != nil {
			t.Errorf("teardown: %v", err)
		}
		_ = os.RemoveAll(filepath.Join(dir, "hookbin"))
	})
	n := &node{e: e, rt: e.Containerd, repo: e.Repo, dir: dir, bin: e.Bins.GPUNRI, bin2: filepath.Join(dir, "bin", "gpu-nri-v2"), host: e.Host}
	n.env = append(os.Environ(), "PATH="+e.Tools.Bin+":"+os.Getenv("PATH"), "CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=k8s-test-2", "-o", n.bin2, "./plugin/cmd/gpu-nri")
	cmd.Dir = n.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the second gpu-nri: %v\n%s", err, out)
	}
	if err := linkCNIPlugins(filepath.Join(dir, "cni", "bin")); err != nil {
		t.Fatal(err)
	}
	return n
}

// linkCNIPlugins links Debian's CNI plugins the cluster's network uses into dir.
func linkCNIPlugins(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		link := filepath.Join(dir, p)
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join("/usr/lib/cni", p), link); err != nil {
			return err
		}
	}
	return nil
}

// run runs a tool with the node's environment; stdout and stderr together.
func (n *node) run(args ...string) (string, error) {
	stdout, stderr, err := runCmd(n.env, "", args...)
	return stdout + stderr, err
}

// dropinFiles are the repository's containerd drop-ins for one config version.
func (n *node) dropinFiles(version string) []string {
	d := filepath.Join(n.repo, "deploy", "runtime", "containerd", version)
	return []string{filepath.Join(d, "10-gpu-nri.toml"), filepath.Join(d, "20-gpu-nri-required.toml")}
}

// useDropins makes containerd's config import the drop-ins of version (from
// its next start) and writes it, for `containerd config dump`.
func (n *node) useDropins(version string) error {
	c := n.e.Containerd
	c.Imports = n.dropinFiles(version)
	return os.WriteFile(c.ConfigPath(), []byte(c.Config()), 0o644)
}

func (n *node) ctdConfig() string { return n.e.Containerd.ConfigPath() }
func (n *node) nriSocket() string { return n.e.Containerd.NRISocket() }

// cdiDir is the CDI spec directory of the cluster's runtime.
func (n *node) cdiDir() string { return n.rt.CDIDir() }

// nriDir is the directory of the cluster runtime's NRI socket (the
// DaemonSet mounts it at /var/run/nri).
func (n *node) nriDir() string { return filepath.Dir(n.rt.NRISocket()) }

// cniConfDir is where the cluster runtime reads its CNI network config.
func (n *node) cniConfDir() string {
	if c, ok := n.rt.(*harness.CRIO); ok {
		return c.CNIConfDir()
	}
	return filepath.Join(n.dir, "cni", "net.d")
}

// podPatch are the lines the suite's DaemonSet patch (makeOverlay) adds
// for the cluster's runtime: pod spec fields, volumes and the gpu-nri
// container's mounts of the host root.
type podPatch struct{ pod, volumes, mounts string }

// runtimePatch is the DaemonSet patch for the cluster's runtime. On
// containerd: the host root at /host without propagation (this machine's /
// is private, so HostToContainer is refused). On CRI-O 1.34 two more
// accommodations of this machine, which containerd makes by its own
// settings:
//   - CRI-O turns a hostPath mount that contains its storage root (/ does)
//     into HostToContainer whatever the pod asks, and refuses it on a private
//     / ("path "/" is mounted on "/" but it is not a shared or slave
//     mount"): the pod gets, at their paths under /host, only what gpu-nri
//     reads through host.root here: the simulated host, the hook dir and
//     CRI-O's CDI dir.
//   - no CAP_SYS_RESOURCE, so no process may lower an oom_score_adj: the
//     kubelet asks -997 for a system-node-critical pod, which containerd
//     clamps (restrict_oom_score_adj, the harness's config) and CRI-O, which
//     has no such setting, passes to runc, which fails the container
//     ("failed to update /proc/self/oom_score_adj: Permission denied"): the
//     DaemonSet runs without its priority class (Burstable).
//
// A systemd node (/ shared) with CAP_SYS_RESOURCE needs neither.
func (n *node) runtimePatch(hookDir string) podPatch {
	if n.rt.Name() != "crio" {
		return podPatch{mounts: "            - {name: host-root, mountPath: /host, readOnly: true, mountPropagation: None}\n"}
	}
	var p podPatch
	p.pod = "          priorityClassName: null\n"
	p.mounts = "            - {mountPath: /host, $patch: delete}\n"
	for i, d := range []string{filepath.Join(n.dir, "host"), hookDir, n.cdiDir()} {
		name := fmt.Sprintf("host-part-%d", i)
		p.volumes += fmt.Sprintf("          - {name: %s, hostPath: {path: %s, type: DirectoryOrCreate}}\n", name, d)
		p.mounts += fmt.Sprintf("            - {name: %s, mountPath: /host%s, readOnly: true, mountPropagation: None}\n", name, d)
	}
	return p
}

// containerID is the kubelet's container id without the runtime's scheme
// (containerd://, cri-o://), which must be the cluster runtime's.
func (n *node) containerID(id string) (string, error) {
	scheme := "containerd://"
	if n.rt.Name() == "crio" {
		scheme = "cri-o://"
	}
	rest, ok := strings.CutPrefix(id, scheme)
	if !ok {
		return "", fmt.Errorf("container id %q is not %s's (%s)", id, n.rt.Name(), scheme)
	}
	return rest, nil
}

func (n *node) startContainerd() error {
	return n.e.Containerd.Start(context.Background(), harness.StartOptions{})
}

// stopContainerd stops containerd, removing its pods, or SIGKILLs it (kill: a crash).
func (n *node) stopContainerd(kill bool) error {
	if kill {
		return n.e.Containerd.Kill()
	}
	return n.e.Containerd.Stop(context.Background())
}

// removePods removes every CRI pod of the cluster's runtime (the kubelet's included).
func (n *node) removePods() error {
	if !n.rt.Running() {
		return nil
	}
	cri, err := harness.DialCRI(n.rt.Socket())
	if err != nil {
		return err
	}
	defer cri.Close()
	return harness.RemoveAllPods(context.Background(), cri)
}

// registrations counts the cluster runtime's "registered as" log lines
// naming gpu-nri (NRI's own line, in containerd's and CRI-O's logs).
func (n *node) registrations() int {
	b, _ := os.ReadFile(n.rt.LogPath())
	c := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "registered as") && strings.Contains(l, "gpu-nri") {
			c++
		}
	}
	return c
}

// waitRegistered waits until the runtime logged more gpu-nri registrations than before.
func (n *node) waitRegistered(before int, timeout time.Duration) error {
	return eventually(timeout, func() error {
		if c := n.registrations(); c <= before {
			return fmt.Errorf("%s logged %d gpu-nri registrations, want more than %d", n.rt.Name(), c, before)
		}
		return nil
	})
}

// hostSection is the simulated host's config section as a map (root "/").
func (n *node) hostSection() (map[string]any, error) {
	b, err := json.Marshal(n.host.Config)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// runInPod runs script in busybox in a new host-network CRI pod with the
// given pod annotations and returns its output; the pod is removed. A
// refused create is a *harness.CreateError.
func (n *node) runInPod(name, script string, annotations map[string]string) (string, error) {
	ctx := context.Background()
	pod, err := n.e.RunPod(ctx, name, "", annotations)
	if err != nil {
		return "", err
	}
	defer func() { _ = pod.Remove(ctx) }()
	res, err := pod.Run(ctx, harness.Container{Name: name, Image: harness.ImageRef("busybox"),
		Command: []string{"/bin/sh", "-c", script}}, 30*time.Second)
	return res.Output, err
}

// importPluginImage imports deploy/image/Dockerfile's content with binary
// (and this tree's gpu-nri-hook) as pluginImage:tag into the cluster's runtime.
func (n *node) importPluginImage(tag, binary string) error {
	build := filepath.Join(n.dir, "build")
	img, err := harness.GPUNRIImage(filepath.Join(build, "gpunri-rootfs-"+tag), pluginImage+":"+tag, binary, n.e.Bins.Hook)
	if err != nil {
		return err
	}
	defer os.RemoveAll(img.RootFS)
	archive := filepath.Join(build, "gpu-nri-"+tag+".tar")
	if err := harness.WriteOCIArchive(archive, n.e.Arch, img); err != nil {
		return err
	}
	return n.rt.LoadImages(archive)
}

// unmountUnder lazily unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points))) // children before parents
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
