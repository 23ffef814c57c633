package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime is a containerd runtime handler of the runc shim.
type Runtime struct {
	Name   string // handler name: "runc" (the default) or "crun"
	Binary string
}

// Containerd is a private containerd: its config, sockets, root, state,
// shim and runtime directories all live under Dir. It runs CRI and NRI;
// the pause image is pinned, host-network pods need no CNI.
type Containerd struct {
	Dir      string
	Tools    Tools
	Runtimes []Runtime
	// PauseImage is the pinned sandbox image (must be imported).
	PauseImage string
	// PodAnnotations are the annotation globs copied into container specs.
	PodAnnotations []string
	// LogLevel is containerd's log level (default info).
	LogLevel string
	// Imports are the config files the main config imports (drop-ins).
	Imports []string

	proc daemon
}

// Socket is containerd's gRPC (and CRI) socket.
func (c *Containerd) Socket() string { return filepath.Join(c.Dir, "ctd", "containerd.sock") }

// NRISocket is the NRI socket external plugins connect to.
func (c *Containerd) NRISocket() string { return filepath.Join(c.Dir, "nri", "nri.sock") }

// NRIPluginDir is plugin_path (pre-registered plugins).
func (c *Containerd) NRIPluginDir() string { return filepath.Join(c.Dir, "nri", "plugins") }

// NRIConfDir is plugin_config_path.
func (c *Containerd) NRIConfDir() string { return filepath.Join(c.Dir, "nri", "conf.d") }

// CDIDir is containerd's (only) CDI spec directory.
func (c *Containerd) CDIDir() string { return filepath.Join(c.Dir, "cdi") }

// StateDir is containerd's state directory.
func (c *Containerd) StateDir() string { return filepath.Join(c.Dir, "ctd", "state") }

// RuntimeRoot is the state root of a runtime handler (runc's/crun's --root).
func (c *Containerd) RuntimeRoot(name string) string { return filepath.Join(c.Dir, name) }

// TempDir is containerd's temp directory (its config's temp, which it
// exports as TMPDIR).
func (c *Containerd) TempDir() string { return filepath.Join(c.Dir, "ctd", "tmp") }

// LogPath is containerd's log file (appended to across restarts).
func (c *Containerd) LogPath() string { return filepath.Join(c.Dir, "logs", "containerd.log") }

// ConfigPath is the generated config.toml.
func (c *Containerd) ConfigPath() string { return filepath.Join(c.Dir, "ctd", "config.toml") }

// Config is containerd's config.toml: the settings this machine needs
// (see /work/shared/reference/testbed.md): private root, state, sockets,
// shim socket_dir, opt path, restrict_oom_score_adj, a pinned pause image,
// NRI on with a short registration timeout, the private CDI dir.
func (c *Containerd) Config() string {
	d := c.Dir
	level := c.LogLevel
	if level == "" {
		level = "info"
	}
	imports := make([]string, len(c.Imports))
	for i, f := range c.Imports {
		imports[i] = fmt.Sprintf("%q", f)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `version = 3
root = %q
state = %q
temp = %q
imports = [%s]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
  level = %q
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %q
  [plugins."io.containerd.image-verifier.v1.bindir"]
    bin_dir = %q
  [plugins."io.containerd.shim.v1.manager"]
    socket_dir = %q
  [plugins."io.containerd.nri.v1.nri"]
    disable = false
    socket_path = %q
    plugin_path = %q
    plugin_config_path = %q
    plugin_registration_timeout = "5s"
    plugin_request_timeout = "5s"
    disable_connections = false
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = %q
  [plugins."io.containerd.cri.v1.runtime"]
    cdi_spec_dirs = [%q]
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
`, filepath.Join(d, "ctd/root"), c.StateDir(), c.TempDir(), strings.Join(imports, ", "),
		c.Socket(), c.Socket()+".ttrpc", filepath.Join(d, "ctd/debug.sock"), level,
		filepath.Join(d, "ctd/opt"), filepath.Join(d, "ctd/opt/image-verifier/bin"), filepath.Join(d, "s"),
		c.NRISocket(), c.NRIPluginDir(), c.NRIConfDir(), c.PauseImage, c.CDIDir())
	for _, r := range c.Runtimes {
		key := `plugins."io.containerd.cri.v1.runtime".containerd.runtimes.` + r.Name
		globs := make([]string, len(c.PodAnnotations))
		for i, g := range c.PodAnnotations {
			globs[i] = fmt.Sprintf("%q", g)
		}
		fmt.Fprintf(&b, `      [%s]
        runtime_type = "io.containerd.runc.v2"
        pod_annotations = [%s]
        [%s.options]
          BinaryName = %q
          Root = %q
          SystemdCgroup = false
`, key, strings.Join(globs, ", "), key, r.Binary, c.RuntimeRoot(r.Name))
	}
	fmt.Fprintf(&b, `    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [%q]
      conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`, filepath.Join(d, "cni/bin"), filepath.Join(d, "cni/net.d"))
	return b.String()
}

// StartOptions are per-start settings.
type StartOptions struct {
	// CgroupV1 runs containerd in a private mount namespace without
	// /sys/fs/cgroup/unified: on a hybrid-cgroup host its shims and runtimes
	// then see plain cgroup v1 (crun refuses hybrid hierarchies with cgroup2
	// controllers). The host's own mounts are not changed.
	CgroupV1 bool
}

// Start writes the config and starts containerd, returning once CRI
// answers and the NRI socket exists.
func (c *Containerd) Start(ctx context.Context, o StartOptions) error {
	if c.Running() {
		return errors.New("harness: containerd already running")
	}
	for _, sub := range []string{"ctd/root", "ctd/state", "ctd/tmp", "ctd/opt", "nri/plugins", "nri/conf.d", "cdi", "s", "logs"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("harness: %w", err)
		}
	}
	if err := os.WriteFile(c.ConfigPath(), []byte(c.Config()), 0o644); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	_ = os.Remove(c.NRISocket())
	c.proc.name = "containerd"
	env := append(os.Environ(), "CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1", "PATH="+c.Tools.Bin+":"+os.Getenv("PATH"))
	if err := c.proc.start([]string{c.Tools.Containerd, "--config", c.ConfigPath()}, env, c.LogPath(), c.pidFile(), o.CgroupV1); err != nil {
		return err
	}
	return c.proc.waitReady(ctx, c.Socket(), c.NRISocket(), c.LogPath())
}

// Running reports whether the started containerd is still alive.
func (c *Containerd) Running() bool { return c.proc.running() }

// Pid is the containerd (or unshare wrapper, which execs it) process id.
func (c *Containerd) Pid() int { return c.proc.pid() }

// Stop removes every pod (through CRI) and stops containerd (SIGTERM,
// SIGKILL after 5 s).
func (c *Containerd) Stop(ctx context.Context) error {
	return c.proc.stop(ctx, c.Socket(), 5*time.Second)
}

// Kill SIGKILLs containerd without removing pods (a crash).
func (c *Containerd) Kill() error {
	c.proc.kill()
	return nil
}

// Restart stops and starts containerd with o.
func (c *Containerd) Restart(ctx context.Context, o StartOptions) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	return c.Start(ctx, o)
}

func (c *Containerd) pidFile() string { return filepath.Join(c.Dir, "ctd", "containerd.pid") }

// KillStale SIGKILLs a containerd an earlier run left running in Dir (its
// pid file names a live process running Tools.Containerd).
func (c *Containerd) KillStale() { killStale(c.pidFile(), c.Tools.Containerd) }

// LogTail is the last n lines of containerd's log.
func (c *Containerd) LogTail(n int) string { return logTail(c.LogPath(), n) }

// PodRemoveTimeout bounds the removal of one pod in RemoveAllPods:
// containerd's StopPodSandbox waits for the sandbox's exit with no bound of
// its own but the caller's (containerd/containerd#11984 shows one running
// into the kubelet's 2-minute deadline).
const PodRemoveTimeout = 30 * time.Second

// RemoveAllPods stops and removes every pod sandbox CRI lists, each within
// PodRemoveTimeout.
func RemoveAllPods(ctx context.Context, cri *CRI) error {
	resp, err := cri.Runtime.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("harness: list pods: %w", err)
	}
	var errs []error
	for _, p := range resp.Items {
		pctx, cancel := context.WithTimeout(ctx, PodRemoveTimeout)
		errs = append(errs, (&Pod{ID: p.Id, cri: cri}).Remove(pctx))
		cancel()
	}
	return errors.Join(errs...)
}
