package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRIO is a private CRI-O (v1.34.0, built by test/tools.sh): its config,
// sockets, containers-storage, state, exits/attach/namespace directories,
// version and clean-shutdown files, hooks and CDI dirs, signature policy,
// registries and storage config, CNI dirs and NRI socket and plugin
// directories all live under Dir; nothing is read from /etc/crio or
// /etc/containers. cgroupfs (PID 1 is not systemd); conmon in the pod's
// cgroup; one OCI runtime handler per Handlers entry with its own
// runtime_root. NRI is on (CRI-O's default). Pods run with the host network
// and a PID namespace per container (PodPID): with a pod PID namespace
// CRI-O starts an infra process with oom_score_adj -998, which fails
// without CAP_SYS_RESOURCE, and CRI-O has no restrict_oom_score_adj.
type CRIO struct {
	Dir      string
	Tools    Tools
	Handlers []Runtime
	// PauseImage is pause_image (must be loaded).
	PauseImage string
	// LogLevel is log_level (default info).
	LogLevel string
	// DropIns are config files copied into the (otherwise empty)
	// --config-dir on every start, in order (CRI-O reads them lexically).
	DropIns []string

	proc daemon
}

// Name is "crio".
func (c *CRIO) Name() string { return "crio" }

// Socket is CRI-O's CRI socket.
func (c *CRIO) Socket() string { return filepath.Join(c.Dir, "crio.sock") }

// NRISocket is nri_listen.
func (c *CRIO) NRISocket() string { return filepath.Join(c.Dir, "nri", "nri.sock") }

// NRIPluginDir is nri_plugin_dir.
func (c *CRIO) NRIPluginDir() string { return filepath.Join(c.Dir, "nri", "plugins") }

// NRIConfDir is nri_plugin_config_dir.
func (c *CRIO) NRIConfDir() string { return filepath.Join(c.Dir, "nri", "conf.d") }

// CDIDir is CRI-O's (only) cdi_spec_dirs entry.
func (c *CRIO) CDIDir() string { return filepath.Join(c.Dir, "cdi") }

// CNIConfDir is network_dir (CNI network configs).
func (c *CRIO) CNIConfDir() string { return filepath.Join(c.Dir, "cni", "net.d") }

// CNIBinDir is the (only) plugin_dirs entry (CNI plugin binaries).
func (c *CRIO) CNIBinDir() string { return filepath.Join(c.Dir, "cni", "bin") }

// RuntimeRoot is a handler's runtime_root.
func (c *CRIO) RuntimeRoot(handler string) string { return filepath.Join(c.Dir, "rt", handler) }

// LogPath is CRI-O's log (its stderr, appended to across restarts).
func (c *CRIO) LogPath() string { return filepath.Join(c.Dir, "logs", "crio.log") }

// ConfigPath is the generated crio.conf.
func (c *CRIO) ConfigPath() string { return filepath.Join(c.Dir, "crio.conf") }

// ConfigDir is the --config-dir (DropIns are copied there).
func (c *CRIO) ConfigDir() string { return filepath.Join(c.Dir, "crio.conf.d") }

func (c *CRIO) storageRoot() string { return filepath.Join(c.Dir, "storage", "root") }
func (c *CRIO) storageRun() string  { return filepath.Join(c.Dir, "storage", "run") }
func (c *CRIO) storageConf() string { return filepath.Join(c.Dir, "storage.conf") }
func (c *CRIO) registries() string  { return filepath.Join(c.Dir, "registries.conf") }
func (c *CRIO) policy() string      { return filepath.Join(c.Dir, "policy.json") }
func (c *CRIO) pidFile() string     { return filepath.Join(c.Dir, "crio.pid") }

// crioCapabilities are containerd's default capabilities (CRI-O's default
// list lacks MKNOD, which the device-cgroup check needs inside containers):
// the same container sees the same rights on both runtimes.
var crioCapabilities = []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"}

// Config is crio.conf: every path private (see the type's doc).
func (c *CRIO) Config() string {
	d := c.Dir
	level := c.LogLevel
	if level == "" {
		level = "info"
	}
	q := func(s []string) string {
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = fmt.Sprintf("%q", v)
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	def := "runc"
	if len(c.Handlers) > 0 {
		def = c.Handlers[0].Name
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[crio]
root = %q
runroot = %q
storage_driver = "overlay"
log_dir = %q
version_file = %q
version_file_persist = %q
clean_shutdown_file = %q
[crio.api]
listen = %q
stream_address = "127.0.0.1"
stream_port = "0"
[crio.runtime]
default_runtime = %q
cgroup_manager = "cgroupfs"
selinux = false
log_level = %q
hooks_dir = [%q]
cdi_spec_dirs = [%q]
container_exits_dir = %q
container_attach_socket_dir = %q
namespaces_dir = %q
pinns_path = %q
irqbalance_config_file = %q
irqbalance_config_restore_file = "disable"
default_capabilities = %s
`, c.storageRoot(), c.storageRun(), filepath.Join(d, "podlogs"), filepath.Join(d, "run", "version"), filepath.Join(d, "lib", "version"),
		filepath.Join(d, "lib", "clean.shutdown"), c.Socket(), def, level, filepath.Join(d, "hooks.d"), c.CDIDir(),
		filepath.Join(d, "run", "exits"), filepath.Join(d, "run", "attach"), filepath.Join(d, "run", "ns"), c.Tools.Pinns,
		filepath.Join(d, "lib", "irqbalance"), q(crioCapabilities))
	for _, h := range c.Handlers {
		fmt.Fprintf(&b, `[crio.runtime.runtimes.%s]
runtime_path = %q
runtime_root = %q
runtime_type = "oci"
monitor_path = %q
monitor_cgroup = "pod"
`, h.Name, h.Binary, c.RuntimeRoot(h.Name), c.Tools.Conmon)
	}
	fmt.Fprintf(&b, `[crio.image]
pause_image = %q
signature_policy = %q
[crio.network]
network_dir = %q
plugin_dirs = [%q]
[crio.nri]
enable_nri = true
nri_listen = %q
nri_plugin_dir = %q
nri_plugin_config_dir = %q
nri_disable_connections = false
nri_plugin_registration_timeout = "5s"
nri_plugin_request_timeout = "5s"
`, c.PauseImage, c.policy(), c.CNIConfDir(), c.CNIBinDir(),
		c.NRISocket(), c.NRIPluginDir(), c.NRIConfDir())
	return b.String()
}

// env is CRI-O's and Podman's environment: private storage and registries
// configuration.
func (c *CRIO) env() []string {
	return append(os.Environ(), "CONTAINERS_STORAGE_CONF="+c.storageConf(), "CONTAINERS_REGISTRIES_CONF="+c.registries(),
		"PATH="+c.Tools.Bin+":"+os.Getenv("PATH"))
}

func (c *CRIO) writeFiles() error {
	for _, sub := range []string{"storage/root", "storage/run", "podlogs", "run/exits", "run/attach", "run/ns", "lib", "hooks.d", "cdi",
		"nri/plugins", "nri/conf.d", "cni/net.d", "cni/bin", "logs", "rt", "crio.conf.d", "podman-tmp"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("harness: %w", err)
		}
	}
	old, _ := filepath.Glob(filepath.Join(c.ConfigDir(), "*"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	for _, f := range c.DropIns {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("harness: CRI-O drop-in: %w", err)
		}
		if err := os.WriteFile(filepath.Join(c.ConfigDir(), filepath.Base(f)), data, 0o644); err != nil {
			return fmt.Errorf("harness: %w", err)
		}
	}
	files := map[string]string{
		c.ConfigPath():  c.Config(),
		c.storageConf(): fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n", c.storageRoot(), c.storageRun()),
		c.registries():  "unqualified-search-registries = []\n",
		c.policy():      `{"default": [{"type": "insecureAcceptAnything"}]}` + "\n",
	}
	for p, text := range files {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return fmt.Errorf("harness: %w", err)
		}
	}
	return nil
}

// Start writes the config and starts CRI-O (`crio --config FILE
// --config-dir DIR`), returning once CRI answers and the NRI socket exists.
func (c *CRIO) Start(ctx context.Context, o StartOptions) error {
	if c.Running() {
		return errors.New("harness: CRI-O already running")
	}
	if c.Tools.Crio == "" {
		return errors.New("harness: CRI-O not built (test/tools.sh builds it into .cache/tools)")
	}
	if err := c.writeFiles(); err != nil {
		return err
	}
	_ = os.Remove(c.NRISocket())
	c.proc.name = "CRI-O"
	if err := c.proc.start([]string{c.Tools.Crio, "--config", c.ConfigPath(), "--config-dir", c.ConfigDir()}, c.env(), c.LogPath(), c.pidFile(), o.CgroupV1); err != nil {
		return err
	}
	return c.proc.waitReady(ctx, c.Socket(), c.NRISocket(), c.LogPath())
}

// Running reports whether the started CRI-O is still alive.
func (c *CRIO) Running() bool { return c.proc.running() }

// Pid is the crio (or unshare wrapper, which execs it) process id.
func (c *CRIO) Pid() int { return c.proc.pid() }

// Stop removes every pod (through CRI) and stops CRI-O (SIGTERM, SIGKILL
// after 10 s).
func (c *CRIO) Stop(ctx context.Context) error {
	return c.proc.stop(ctx, c.Socket(), 10*time.Second)
}

// Kill SIGKILLs CRI-O without removing pods (a crash).
func (c *CRIO) Kill() error {
	c.proc.kill()
	return nil
}

// Restart stops and starts CRI-O with o.
func (c *CRIO) Restart(ctx context.Context, o StartOptions) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	return c.Start(ctx, o)
}

// KillStale SIGKILLs a crio an earlier run left running in Dir (its pid
// file names a live process running Tools.Crio).
func (c *CRIO) KillStale() { killStale(c.pidFile(), c.Tools.Crio) }

// LogTail is the last n lines of CRI-O's log.
func (c *CRIO) LogTail(n int) string { return logTail(c.LogPath(), n) }

// PodPID is a PID namespace per container (see the type's doc).
func (c *CRIO) PodPID() runtime.NamespaceMode { return runtime.NamespaceMode_CONTAINER }

// LoadImages puts the archive's images into CRI-O's containers-storage:
// CRI-O pulls only registry references, so Podman (same storage root,
// runroot and driver) pulls each image from the unpacked OCI layout
// (`podman pull oci:LAYOUT:REF`, REF unique per image) and tags it with its
// name. CRI-O need not run.
func (c *CRIO) LoadImages(archive string) error {
	if err := c.writeFiles(); err != nil {
		return err
	}
	layout := filepath.Join(c.Dir, "oci-layout")
	_ = os.RemoveAll(layout)
	defer func() { _ = os.RemoveAll(layout) }()
	if err := os.MkdirAll(layout, 0o755); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := run("tar", "-C", layout, "-xf", archive); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return fmt.Errorf("harness: OCI layout: %w", err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		return fmt.Errorf("harness: OCI layout index: %w", err)
	}
	var names []string
	for i, m := range index.Manifests {
		name := m.Annotations["io.containerd.image.name"]
		if name == "" {
			return fmt.Errorf("harness: OCI layout: manifest %s has no image name", m.Digest)
		}
		index.Manifests[i].Annotations[ocispec.AnnotationRefName] = fmt.Sprintf("img%d", i)
		names = append(names, name)
	}
	if data, err = json.Marshal(index); err != nil {
		return fmt.Errorf("harness: OCI layout index: %w", err)
	}
	if err := os.WriteFile(filepath.Join(layout, "index.json"), data, 0o644); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	for i, name := range names {
		out, err := c.podman("pull", "-q", "--signature-policy", c.policy(), fmt.Sprintf("oci:%s:img%d", layout, i))
		if err != nil {
			return err
		}
		lines := strings.Fields(out)
		if len(lines) == 0 {
			return fmt.Errorf("harness: podman pull %s: no image id", name)
		}
		if _, err := c.podman("tag", lines[len(lines)-1], name); err != nil {
			return err
		}
	}
	return nil
}

// podman runs Podman on CRI-O's containers-storage.
func (c *CRIO) podman(args ...string) (string, error) {
	argv := append([]string{"--root", c.storageRoot(), "--runroot", c.storageRun(), "--storage-driver", "overlay",
		"--tmpdir", filepath.Join(c.Dir, "podman-tmp"), "--events-backend", "none", "--cgroup-manager", "cgroupfs"}, args...)
	cmd := exec.Command(c.Tools.Podman, argv...)
	cmd.Env = c.env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("harness: podman %s: %w: %s", strings.Join(args, " "), err, tail(stderr.String(), 10))
	}
	return string(out), nil
}
