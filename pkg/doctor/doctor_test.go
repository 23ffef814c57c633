package doctor_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/doctor"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/nvmlfacts"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// node is a simulated node: a simhost tree, a listening NRI socket, a hook
// binary, runtime configs and a /readyz endpoint.
type node struct {
	h          *simhost.Host
	cfg        *config.Config
	dir        string
	containerd string // path of containerd's config (may not exist)
	crio       string // path of crio.conf (may not exist)
	facts      bool   // ask the driver for its facts, as the daemon's doctor does
	criSock    string // the runtime's CRI socket (none listens unless serveCRI)
}

// criVersion answers CRI Version as a runtime would; every other call is
// unimplemented.
type criVersion struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	name, version string
}

func (c criVersion) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: c.name, RuntimeVersion: c.version, RuntimeApiVersion: "v1"}, nil
}

// serveCRI makes the node's CRI socket answer Version with name and version.
func (n *node) serveCRI(t *testing.T, name, version string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cri")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	n.criSock = filepath.Join(dir, "cri.sock")
	l, err := net.Listen("unix", n.criSock)
	require.NoError(t, err)
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, criVersion{name: name, version: version})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
}

// setKernelVersion makes the loaded kernel module another version than the
// libraries (a userland upgraded without a reboot).
func setKernelVersion(t *testing.T, n *node, v string) {
	t.Helper()
	p := filepath.Join(n.h.Config.ProcRoot, "driver/nvidia/version")
	require.NoError(t, os.Chmod(p, 0o644))
	require.NoError(t, os.WriteFile(p, []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  "+v+"  Thu Feb 22 01:44:30 UTC 2024\n"), 0o444))
}

func newNode(t *testing.T, so simhost.Options) *node {
	t.Helper()
	dir := t.TempDir()
	so.Dir = filepath.Join(dir, "host")
	h, err := simhost.Build(so)
	require.NoError(t, err)

	sockDir, err := os.MkdirTemp("", "nri")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "nri.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()

	hookPath := filepath.Join(dir, "bin", "gpu-nri-hook")
	require.NoError(t, os.MkdirAll(filepath.Dir(hookPath), 0o755))
	require.NoError(t, os.WriteFile(hookPath, []byte("#!/bin/sh\n"), 0o755))

	cfg := config.Default()
	cfg.Host = h.Config
	cfg.Plugin.Socket = sock
	cfg.Injection.HookPath = hookPath
	cfg.Injection.LdconfigPath = hookPath // any executable file
	return &node{h: h, cfg: cfg, dir: dir, containerd: filepath.Join(dir, "containerd.toml"), crio: filepath.Join(dir, "crio.conf"),
		criSock: filepath.Join(dir, "no-cri.sock")}
}

func (n *node) write(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(text, "SOCK", n.cfg.Plugin.Socket)), 0o644))
}

func (n *node) run(t *testing.T) *doctor.Report {
	t.Helper()
	opts := []inventory.Option{inventory.WithNodeStater(n.h.Stater())}
	if n.facts {
		root := n.cfg.Host.View(n.cfg.Host.DriverRoot)
		opts = append(opts, inventory.WithGPUFacts(func(inv *inventory.Inventory) error { return nvmlfacts.Fill(inv, root) }))
	}
	return doctor.Run(context.Background(), doctor.Options{Config: n.cfg, ContainerdConfig: n.containerd, CRIOConfig: n.crio, Inventory: opts, CRISocket: n.criSock})
}

func find(r *doctor.Report, check string, sev doctor.Severity, substr string) bool {
	for _, f := range r.Findings {
		if f.Check == check && f.Severity == sev && strings.Contains(f.Message, substr) {
			return true
		}
	}
	return false
}

const healthyV3 = `version = 3
[plugins."io.containerd.nri.v1.nri"]
  disable = false
  socket_path = "SOCK"
  plugin_request_timeout = "2s"
  [plugins."io.containerd.nri.v1.nri".default_validator]
    enable = true
    required_plugins = ["gpu-nri"]
[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
`

func TestHealthyNode(t *testing.T) {
	n := newNode(t, simhost.Options{GPUs: 2})
	srv := readyServer(t)
	n.cfg.Metrics.Address = strings.TrimPrefix(srv.URL, "http://")
	n.write(t, n.containerd, healthyV3)
	n.serveCRI(t, "containerd", "v2.2.0")

	r := n.run(t)
	require.True(t, r.Healthy, r.Text())
	require.True(t, find(r, "driver", doctor.OK, "NVIDIA driver "+n.h.DriverVersion+", 2 GPU(s)"), r.Text())
	require.True(t, find(r, "devices", doctor.OK, "2 GPU(s), 2 device node(s)"), r.Text())
	require.True(t, find(r, "runtime", doctor.OK, "version 3"), r.Text())
	require.True(t, find(r, "nri", doctor.OK, "matches plugin.socket"), r.Text())
	require.True(t, find(r, "nri", doctor.Info, "request timeout 2s"), r.Text())
	require.True(t, find(r, "validator", doctor.OK, "containerd v2.2.0 has NRI's default validator: fail-closed"), r.Text())
	require.True(t, find(r, "connection", doctor.OK, "accepts connections"), r.Text())
	require.True(t, find(r, "registration", doctor.OK, "registered"), r.Text())
	require.True(t, find(r, "hook", doctor.OK, "injection.hookPath"), r.Text())
	require.Contains(t, r.Text(), "\nhealthy\n")
}

func TestFindings(t *testing.T) {
	tests := []struct {
		name       string
		so         simhost.Options
		containerd string
		crio       map[string]string // file name under dir -> content
		mutate     func(*testing.T, *node)
		check      string
		sev        doctor.Severity
		substr     string
		fix        string
	}{
		{name: "no driver", so: simhost.Options{GPUs: 1}, containerd: healthyV3,
			mutate: func(t *testing.T, n *node) { n.cfg.Host.ProcRoot = filepath.Join(n.dir, "noproc") },
			check:  "driver", sev: doctor.Fail, substr: "no NVIDIA driver loaded", fix: "install the NVIDIA driver"},
		{name: "GPU without node", so: simhost.Options{GPUs: 2, Omit: []string{"gpu:1-node"}}, containerd: healthyV3,
			check: "devices", sev: doctor.Fail, substr: "GPU 1", fix: "nvidia-modprobe -c 1"},
		{name: "no uvm", so: simhost.Options{GPUs: 1, Omit: []string{"uvm"}}, containerd: healthyV3,
			check: "driver", sev: doctor.Warn, substr: "CUDA cannot run in containers: the nvidia-uvm kernel module is not loaded", fix: "modprobe nvidia-uvm"},
		{name: "userland upgraded without a reboot", so: simhost.Options{GPUs: 1, DriverVersion: "560.35.03"}, containerd: healthyV3,
			mutate: func(t *testing.T, n *node) { setKernelVersion(t, n, "550.54.14") },
			check:  "driver", sev: doctor.Warn, substr: "version 560.35.03 but the loaded kernel module is 550.54.14", fix: "reboot the node"},
		{name: "no libnvidia-ml", so: simhost.Options{GPUs: 1, Omit: []string{"lib:libnvidia-ml"}}, containerd: healthyV3,
			check: "driver", sev: doctor.Warn, substr: "no libnvidia-ml.so.550.54.14", fix: "libnvidia-ml1"},
		{name: "no GSP firmware", so: simhost.Options{GPUs: 1, Omit: []string{"firmware"}}, containerd: healthyV3,
			check: "driver", sev: doctor.Warn, substr: "no GSP firmware for driver 550.54.14", fix: "firmware-nvidia-gsp"},
		// Neither nvidia-smi (static build) nor NVML (cgo build) can answer.
		{name: "nvidia-smi cannot run", so: simhost.Options{GPUs: 1, Omit: []string{"lib:libnvidia-ml"}}, containerd: healthyV3,
			mutate: func(t *testing.T, n *node) {
				smi := filepath.Join(n.h.Config.DriverRoot, "usr/bin/nvidia-smi")
				require.NoError(t, os.Remove(smi))
				require.NoError(t, os.Symlink("/nonexistent/alternatives/nvidia-smi", smi))
				n.facts = true
			},
			check: "driver", sev: doctor.Warn, substr: "the driver's facts (CUDA version, brands, compute capabilities) are unavailable", fix: "nvidia-smi"},
		{name: "NRI disabled", containerd: strings.Replace(healthyV3, "disable = false", "disable = true", 1),
			check: "nri", sev: doctor.Fail, substr: "NRI is disabled", fix: "disable = false"},
		{name: "containerd 1.7 config without NRI section", containerd: "version = 2\n",
			check: "nri", sev: doctor.Warn, substr: "not explicitly enabled", fix: "containerd 1.7 disables NRI by default"},
		{name: "config version 1", containerd: "root = \"/var/lib/containerd\"\n",
			check: "runtime", sev: doctor.Fail, substr: "version 1", fix: "containerd config migrate"},
		{name: "bad TOML", containerd: "version = = 3\n",
			check: "runtime", sev: doctor.Fail, substr: "containerd config", fix: "TOML syntax"},
		{name: "wrongly typed value", containerd: strings.Replace(healthyV3, "disable = false", `disable = "no"`, 1),
			check: "runtime", sev: doctor.Fail, substr: "containerd.toml: plugins.io.containerd.nri.v1.nri.disable: toml: cannot decode TOML string", fix: "value's type"},
		{name: "wrongly typed value in a drop-in names the merged files", containerd: "version = 3\nimports = [\"conf.d/*.toml\"]\n",
			mutate: func(t *testing.T, n *node) {
				n.write(t, filepath.Join(n.dir, "conf.d/10-x.toml"), "version = 3\n[plugins.\"io.containerd.nri.v1.nri\".default_validator]\nrequired_plugins = \"gpu-nri\"\n")
			},
			check: "runtime", sev: doctor.Fail, substr: "conf.d/10-x.toml: plugins.io.containerd.nri.v1.nri.default_validator.required_plugins: toml: cannot decode", fix: "value's type"},
		{name: "socket mismatch", containerd: strings.Replace(healthyV3, `socket_path = "SOCK"`, `socket_path = "/run/other/nri.sock"`, 1),
			check: "nri", sev: doctor.Fail, substr: "listens on /run/other/nri.sock", fix: "make them match"},
		{name: "short timeout", containerd: strings.Replace(healthyV3, `"2s"`, `"500ms"`, 1),
			check: "nri", sev: doctor.Warn, substr: "500ms is short", fix: "at least 2s"},
		{name: "external connections disabled", containerd: strings.Replace(healthyV3, "disable = false", "disable = false\n  disable_connections = true", 1),
			check: "nri", sev: doctor.Fail, substr: "refuses external", fix: "pre-registered"},
		{name: "NVIDIA default runtime (v2)", containerd: `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "nvidia"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
      BinaryName = "/usr/bin/nvidia-container-runtime"
[plugins."io.containerd.nri.v1.nri"]
  disable = false
  socket_path = "SOCK"
`, check: "runtime", sev: doctor.Fail, substr: "injected twice", fix: `default_runtime_name = "runc"`},
		{name: "NVIDIA runtime class (v4)", containerd: healthyV3 + `  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia.options]
      BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime"
`, check: "runtime", sev: doctor.Warn, substr: "runtimeClassName nvidia", fix: "remove the runtime"},
		{name: "fail-open", containerd: strings.Replace(healthyV3, `required_plugins = ["gpu-nri"]`, `required_plugins = []`, 1),
			check: "validator", sev: doctor.Info, substr: "fail-open", fix: `required_plugins = ["gpu-nri"]`},
		{name: "hooks rejected", containerd: strings.Replace(healthyV3, "enable = true", "enable = true\n    reject_oci_hook_adjustment = true", 1),
			check: "validator", sev: doctor.Fail, substr: "rejects OCI hook adjustments", fix: "injection.loader: hookless"},
		{name: "hooks rejected, hookless", containerd: strings.Replace(healthyV3, "enable = true", "enable = true\n    reject_oci_hook_adjustment = true", 1),
			mutate: func(t *testing.T, n *node) { n.cfg.Injection.Loader = config.LoaderHookless },
			check:  "validator", sev: doctor.OK, substr: "injection.loader is hookless"},
		// host.root set: the hook binary reached through an absolute link
		// must be looked up inside the root, not in doctor's own "/".
		{name: "hook binary behind an absolute link, host.root set", containerd: healthyV3,
			mutate: func(t *testing.T, n *node) {
				root := filepath.Join(n.dir, "hostroot")
				n.write(t, filepath.Join(root, "opt/gpu-nri/bin/gpu-nri"), "#!/bin/sh\n")
				require.NoError(t, os.Chmod(filepath.Join(root, "opt/gpu-nri/bin/gpu-nri"), 0o755))
				require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755))
				require.NoError(t, os.Symlink("/etc/alternatives/gpu-nri", filepath.Join(root, "usr/local/bin/gpu-nri")))
				require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/alternatives"), 0o755))
				require.NoError(t, os.Symlink("/opt/gpu-nri/bin/gpu-nri", filepath.Join(root, "etc/alternatives/gpu-nri")))
				n.cfg.Host.Root = root
				n.cfg.Injection.HookPath, n.cfg.Injection.LdconfigPath = "/usr/local/bin/gpu-nri", "/usr/local/bin/gpu-nri"
			},
			check: "hook", sev: doctor.OK, substr: "injection.hookPath /usr/local/bin/gpu-nri is present and executable"},
		{name: "dangling library link named", containerd: healthyV3,
			mutate: func(t *testing.T, n *node) {
				require.NoError(t, os.Remove(filepath.Join(n.h.Config.DriverRoot, "usr/lib/x86_64-linux-gnu/libnvidia-cfg.so."+n.h.DriverVersion)))
			},
			check: "files", sev: doctor.Info, substr: "skipped driver file /usr/lib/x86_64-linux-gnu/libnvidia-cfg.so.1 ignored: it does not exist"},
		{name: "library of another driver named", containerd: healthyV3, so: simhost.Options{GPUs: 1, DriverVersion: "560.35.03"},
			mutate: func(t *testing.T, n *node) { setKernelVersion(t, n, "550.54.14") },
			check:  "files", sev: doctor.Info, substr: "libcuda.so.1 ignored: it is /usr/lib/x86_64-linux-gnu/libcuda.so.560.35.03, not version 550.54.14 of the driver"},
		{name: "hook binary missing", containerd: healthyV3,
			mutate: func(t *testing.T, n *node) { n.cfg.Injection.HookPath = "/nonexistent/gpu-nri" },
			check:  "hook", sev: doctor.Fail, substr: "/nonexistent/gpu-nri", fix: "gpu-nri install"},
		{name: "hook path names the full gpu-nri binary", containerd: healthyV3,
			mutate: func(t *testing.T, n *node) {
				full := filepath.Join(n.dir, "bin", "gpu-nri")
				require.NoError(t, os.WriteFile(full, []byte("#!/bin/sh\n"), 0o755))
				n.cfg.Injection.HookPath = full
			},
			check: "hook", sev: doctor.Info, substr: "is the full gpu-nri binary: the hook-only gpu-nri-hook takes the same argv"},
		{name: "hook not executable", containerd: healthyV3,
			mutate: func(t *testing.T, n *node) { require.NoError(t, os.Chmod(n.cfg.Injection.HookPath, 0o644)) },
			check:  "hook", sev: doctor.Fail, substr: "not executable", fix: "chmod 755"},
		{name: "socket absent", containerd: healthyV3,
			mutate: func(t *testing.T, n *node) {
				n.cfg.Plugin.Socket = filepath.Join(n.dir, "none.sock")
				n.write(t, n.containerd, healthyV3)
			},
			check: "connection", sev: doctor.Fail, substr: "none.sock", fix: "start the runtime"},
		{name: "not registered", containerd: healthyV3,
			mutate: func(t *testing.T, n *node) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "not registered with the container runtime", http.StatusServiceUnavailable)
				}))
				t.Cleanup(srv.Close)
				n.cfg.Metrics.Address = strings.TrimPrefix(srv.URL, "http://")
			},
			check: "registration", sev: doctor.Fail, substr: "not registered with the container runtime", fix: "logs"},
		{name: "CRI-O with NRI disabled in a drop-in", crio: map[string]string{
			"crio.conf":               "[crio.nri]\nenable_nri = true\nnri_listen = \"SOCK\"\n",
			"crio.conf.d/10-nri.conf": "[crio.nri]\nenable_nri = false\n"},
			check: "nri", sev: doctor.Fail, substr: "NRI is disabled in CRI-O", fix: "enable_nri = true"},
		{name: "CRI-O fix names the drop-in that disabled NRI", crio: map[string]string{
			"crio.conf":                 "[crio.nri]\nenable_nri = true\nnri_listen = \"SOCK\"\n",
			"crio.conf.d/10-nri.conf":   "[crio.nri]\nenable_nri = false\n",
			"crio.conf.d/20-other.conf": "[crio.runtime]\ndefault_runtime = \"crun\"\n"},
			check: "nri", sev: doctor.Fail, substr: "enable_nri = false in ", fix: "crio.conf.d/10-nri.conf and restart"},
		{name: "CRI-O wrongly typed value", crio: map[string]string{
			"crio.conf": "[crio.nri]\nenable_nri = \"no\"\nnri_listen = \"SOCK\"\n"},
			check: "runtime", sev: doctor.Fail, substr: "crio.conf: crio.nri.enable_nri: toml: cannot decode TOML string", fix: "value's type"},
		{name: "CRI-O NVIDIA default runtime", crio: map[string]string{
			"crio.conf": "[crio.nri]\nnri_listen = \"SOCK\"\n[crio.runtime]\ndefault_runtime = \"nvidia\"\n[crio.runtime.runtimes.nvidia]\nruntime_path = \"/usr/bin/nvidia-container-runtime\"\n"},
			check: "runtime", sev: doctor.Fail, substr: "injected twice", fix: "default_runtime back"},
		{name: "CRI-O fail-closed", crio: map[string]string{
			"crio.conf": "[crio.nri]\nnri_listen = \"SOCK\"\n[crio.nri.default_validator]\nnri_enable_default_validator = true\nnri_validator_required_plugins = [\"gpu-nri\"]\n"},
			check: "validator", sev: doctor.OK, substr: "cri-o requires plugin \"gpu-nri\""},
		{name: "no runtime config", check: "runtime", sev: doctor.Info, substr: "assuming containerd 2.x defaults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			so := tt.so
			if so.GPUs == 0 {
				so.GPUs = 1
			}
			n := newNode(t, so)
			if tt.containerd != "" {
				n.write(t, n.containerd, tt.containerd)
			}
			for name, text := range tt.crio {
				n.write(t, filepath.Join(n.dir, name), text)
			}
			if tt.mutate != nil {
				tt.mutate(t, n)
			}
			r := n.run(t)
			require.True(t, find(r, tt.check, tt.sev, tt.substr), "want %s %s %q in:\n%s", tt.sev, tt.check, tt.substr, r.Text())
			if tt.fix != "" {
				for _, f := range r.Findings {
					if f.Check == tt.check && f.Severity == tt.sev && strings.Contains(f.Message, tt.substr) {
						require.Contains(t, f.Fix, tt.fix)
					}
				}
			}
			if tt.sev == doctor.Warn || tt.sev == doctor.Fail {
				require.False(t, r.Healthy)
				require.Contains(t, r.Text(), "need attention")
			}
			if tt.check == "driver" && tt.sev != doctor.OK {
				require.False(t, find(r, "driver", doctor.OK, "NVIDIA driver"), "a driver problem, yet [ok] driver:\n%s", r.Text())
			}
		})
	}
}

// required_plugins fails closed only on runtimes whose NRI has the default
// validator; doctor reads the version over CRI and says so.
func TestValidatorByRuntimeVersion(t *testing.T) {
	crioRequired := map[string]string{"crio.conf": "[crio.nri]\nnri_listen = \"SOCK\"\n[crio.nri.default_validator]\nnri_enable_default_validator = true\nnri_validator_required_plugins = [\"gpu-nri\"]\n"}
	tests := []struct {
		name        string
		containerd  string
		crio        map[string]string
		rt, version string // CRI Version answer; "" = no CRI socket
		sev         doctor.Severity
		substr, fix string
		healthy     bool
	}{
		{name: "CRI-O 1.34.0 (NRI v0.9.1) ignores required_plugins", crio: crioRequired, rt: "cri-o", version: "1.34.0",
			sev: doctor.Warn, substr: "cri-o 1.34.0 has no NRI default validator", fix: "upgrade to CRI-O 1.35 or later"},
		{name: "CRI-O 1.35.0 fails closed", crio: crioRequired, rt: "cri-o", version: "1.35.0",
			sev: doctor.OK, substr: "cri-o 1.35.0 has NRI's default validator: fail-closed", healthy: true},
		{name: "containerd 2.1 ignores required_plugins", containerd: healthyV3, rt: "containerd", version: "v2.1.5",
			sev: doctor.Warn, substr: "containerd v2.1.5 has no NRI default validator", fix: "upgrade to containerd 2.2 or later"},
		{name: "containerd 2.4 fails closed", containerd: healthyV3, rt: "containerd", version: "v2.4.2",
			sev: doctor.OK, substr: "fail-closed", healthy: true},
		{name: "version unknown: no fail-closed claim", crio: crioRequired,
			sev: doctor.Info, substr: "fail-closed only with CRI-O 1.35 or later", fix: "--cri-socket"},
		{name: "version unreadable", containerd: healthyV3, rt: "containerd", version: "devel",
			sev: doctor.Info, substr: "which doctor cannot read", fix: "upgrade to containerd 2.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, simhost.Options{GPUs: 1})
			if tt.containerd != "" {
				n.write(t, n.containerd, tt.containerd)
			}
			for name, text := range tt.crio {
				n.write(t, filepath.Join(n.dir, name), text)
			}
			if tt.rt != "" {
				n.serveCRI(t, tt.rt, tt.version)
			}
			r := n.run(t)
			var got *doctor.Finding
			for i, f := range r.Findings {
				if f.Check == "validator" && f.Severity == tt.sev && strings.Contains(f.Message, tt.substr) {
					got = &r.Findings[i]
				}
			}
			require.NotNil(t, got, "want %s validator %q in:\n%s", tt.sev, tt.substr, r.Text())
			require.Contains(t, got.Fix, tt.fix)
			if !tt.healthy {
				require.False(t, find(r, "validator", doctor.OK, "fail-closed"), "claims fail-closed:\n%s", r.Text())
			}
			if tt.sev == doctor.Warn {
				require.False(t, r.Healthy, r.Text())
			}
		})
	}
}

// shipped reads a runtime drop-in from deploy/runtime/containerd.
func shipped(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "runtime", "containerd", name))
	require.NoError(t, err)
	return string(b)
}

// The main config imports drop-ins the way containerd does (test/k8s runs
// the same files through a real containerd and gpu-nri doctor).
func TestContainerdImports(t *testing.T) {
	const mainV3 = `version = 3
imports = ["conf.d/*.toml"]
[plugins."io.containerd.nri.v1.nri"]
  socket_path = "SOCK"
`
	nvidiaV2 := `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "nvidia"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
    BinaryName = "/usr/bin/nvidia-container-runtime"
`
	tests := []struct {
		name  string
		main  string
		files map[string]string // under dir
		check string
		sev   doctor.Severity
		want  string // in the message
		fix   string // in the fix; "DIR" is the node's directory
		ok    bool   // healthy
	}{
		{name: "shipped v3 drop-ins", main: mainV3,
			files: map[string]string{"conf.d/10-gpu-nri.toml": shipped(t, "v3/10-gpu-nri.toml"), "conf.d/20-gpu-nri-required.toml": shipped(t, "v3/20-gpu-nri-required.toml")},
			check: "validator", sev: doctor.OK, want: `requires plugin "gpu-nri"`, ok: true},
		{name: "files named in load order", main: mainV3,
			files: map[string]string{"conf.d/10-gpu-nri.toml": shipped(t, "v3/10-gpu-nri.toml"), "conf.d/20-gpu-nri-required.toml": shipped(t, "v3/20-gpu-nri-required.toml")},
			check: "runtime", sev: doctor.OK, want: "containerd.toml (imports DIR/conf.d/10-gpu-nri.toml, DIR/conf.d/20-gpu-nri-required.toml), version 3", ok: true},
		{name: "shipped v2 drop-ins under a v3 main file", main: mainV3,
			files: map[string]string{"conf.d/10-gpu-nri.toml": shipped(t, "v2/10-gpu-nri.toml"), "conf.d/20-gpu-nri-required.toml": shipped(t, "v2/20-gpu-nri-required.toml")},
			check: "validator", sev: doctor.OK, want: `requires plugin "gpu-nri"`, ok: true},
		{name: "a later drop-in wins and is named in the fix", main: mainV3,
			files: map[string]string{"conf.d/10-gpu-nri.toml": shipped(t, "v3/10-gpu-nri.toml"), "conf.d/99-off.toml": "version = 3\n[plugins.\"io.containerd.nri.v1.nri\"]\n  disable = true\n"},
			check: "nri", sev: doctor.Fail, want: "NRI is disabled in DIR/conf.d/99-off.toml", fix: "in DIR/conf.d/99-off.toml"},
		{name: "the main file's value when no drop-in sets it", main: mainV3 + "  disable = true\n",
			files: map[string]string{"conf.d/20-gpu-nri-required.toml": shipped(t, "v3/20-gpu-nri-required.toml")},
			check: "nri", sev: doctor.Fail, want: "NRI is disabled in DIR/containerd.toml", fix: "in DIR/containerd.toml"},
		{name: "arrays in plugin tables are replaced, not merged", main: mainV3 + "  [plugins.\"io.containerd.nri.v1.nri\".default_validator]\n    enable = true\n    required_plugins = [\"gpu-nri\"]\n",
			files: map[string]string{"conf.d/30-other.toml": "version = 3\n[plugins.\"io.containerd.nri.v1.nri\".default_validator]\n  required_plugins = [\"other\"]\n"},
			check: "validator", sev: doctor.Info, want: "fail-open", fix: "of DIR/conf.d/30-other.toml", ok: true},
		{name: "v2 drop-in's NVIDIA default runtime, migrated", main: mainV3,
			files: map[string]string{"conf.d/50-nvidia.toml": nvidiaV2},
			check: "runtime", sev: doctor.Fail, want: "injected twice", fix: "of DIR/conf.d/50-nvidia.toml"},
		{name: "disabled_plugins in a drop-in (top-level arrays are unions)", main: "disabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\"]\n" + mainV3,
			files: map[string]string{"conf.d/10-x.toml": "version = 3\ndisabled_plugins = [\"io.containerd.nri.v1.nri\"]\n"},
			check: "nri", sev: doctor.Fail, want: "disabled_plugins lists io.containerd.nri.v1.nri", fix: "in DIR/conf.d/10-x.toml"},
		{name: "a missing explicit import stops containerd", main: strings.Replace(mainV3, `"conf.d/*.toml"`, `"conf.d/*.toml", "/nonexistent/gpu.toml"`, 1),
			check: "runtime", sev: doctor.Fail, want: "/nonexistent/gpu.toml, imported by DIR/containerd.toml", fix: "TOML syntax or import"},
		{name: "bad TOML in a drop-in", main: mainV3, files: map[string]string{"conf.d/10-x.toml": "version = = 3\n"},
			check: "runtime", sev: doctor.Fail, want: "DIR/conf.d/10-x.toml", fix: "TOML syntax"},
		{name: "import cycle, each file once", main: mainV3,
			files: map[string]string{"conf.d/10-a.toml": "version = 3\nimports = [\"../containerd.toml\", \"10-a.toml\"]\n" + strings.SplitN(shipped(t, "v3/20-gpu-nri-required.toml"), "version = 3\n", 2)[1]},
			check: "runtime", sev: doctor.OK, want: "(imports DIR/conf.d/10-a.toml), version 3", ok: true},
		{name: "unversioned drop-in", main: mainV3, files: map[string]string{"conf.d/10-x.toml": "[plugins.cri]\n"},
			check: "runtime", sev: doctor.Warn, want: "DIR/conf.d/10-x.toml has no version 2 or newer", fix: "version = 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t, simhost.Options{GPUs: 1})
			n.write(t, n.containerd, tt.main)
			for name, text := range tt.files {
				n.write(t, filepath.Join(n.dir, name), text)
			}
			r := n.run(t)
			want := strings.ReplaceAll(tt.want, "DIR", n.dir)
			require.True(t, find(r, tt.check, tt.sev, want), "want %s %s %q in:\n%s", tt.sev, tt.check, want, r.Text())
			if tt.fix != "" {
				fix := strings.ReplaceAll(tt.fix, "DIR", n.dir)
				found := false
				for _, f := range r.Findings {
					if f.Check == tt.check && f.Severity == tt.sev && strings.Contains(f.Message, want) {
						require.Contains(t, f.Fix, fix)
						found = true
					}
				}
				require.True(t, found)
			}
			require.Equal(t, tt.ok, r.Healthy, r.Text())
		})
	}
}

// In a pod the host is seen under host.root; imports name host paths and
// findings name them too.
func TestContainerdImportsUnderHostRoot(t *testing.T) {
	n := newNode(t, simhost.Options{GPUs: 1})
	root := filepath.Join(n.dir, "hostroot")
	n.write(t, filepath.Join(root, "etc/containerd/config.toml"), "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n")
	n.write(t, filepath.Join(root, "etc/containerd/conf.d/20-gpu-nri-required.toml"), shipped(t, "v3/20-gpu-nri-required.toml"))
	n.write(t, filepath.Join(root, "etc/containerd/conf.d/30-off.toml"), "version = 3\n[plugins.\"io.containerd.nri.v1.nri\"]\n  disable = true\n")
	n.cfg.Host.Root = root
	r := doctor.Run(context.Background(), doctor.Options{Config: n.cfg, ContainerdConfig: "/etc/containerd/config.toml", CRIOConfig: "/etc/crio/crio.conf",
		Inventory: []inventory.Option{inventory.WithNodeStater(n.h.Stater())}})
	require.True(t, find(r, "runtime", doctor.OK,
		"containerd config /etc/containerd/config.toml (imports /etc/containerd/conf.d/20-gpu-nri-required.toml, /etc/containerd/conf.d/30-off.toml), version 3"), r.Text())
	require.True(t, find(r, "validator", doctor.OK, `requires plugin "gpu-nri"`), r.Text())
	require.True(t, find(r, "nri", doctor.Fail, "NRI is disabled in /etc/containerd/conf.d/30-off.toml"), r.Text())
}

func TestHookBinaryNoNoteForGPUNRIHook(t *testing.T) {
	n := newNode(t, simhost.Options{GPUs: 1})
	n.write(t, n.containerd, healthyV3)
	r := n.run(t)
	require.True(t, find(r, "hook", doctor.OK, "gpu-nri-hook is present and executable"), r.Text())
	require.False(t, find(r, "hook", doctor.Info, "full gpu-nri binary"), "no note when hookPath names gpu-nri-hook:\n%s", r.Text())
}

// injection.libraryDir: with the daemon ready, no directory where the
// runtime looks means its mounts do not reach the runtime (warn); a built one
// is fine; anything gpu-nri did not make fails; without a ready daemon, info.
func TestLibraryDirFindings(t *testing.T) {
	n := newNode(t, simhost.Options{GPUs: 2})
	srv := readyServer(t)
	n.write(t, n.containerd, healthyV3)
	n.serveCRI(t, "containerd", "v2.2.0")
	root := filepath.Join(t.TempDir(), "lib")
	n.cfg.Injection.LibraryDir = root

	r := n.run(t)
	require.True(t, find(r, "library-dir", doctor.Info, "no library directory yet"), r.Text())

	n.cfg.Metrics.Address = strings.TrimPrefix(srv.URL, "http://")
	require.NoError(t, os.MkdirAll(root, 0o755))
	r = n.run(t)
	require.True(t, find(r, "library-dir", doctor.Warn, "its mounts do not reach this mount namespace"), r.Text())
	require.False(t, r.Healthy)

	if os.Geteuid() == 0 { // a complete directory is a read-only tmpfs
		d := filepath.Join(root, "compute.utility-0123456789abcdef.1")
		require.NoError(t, os.Mkdir(d, 0o755))
		require.NoError(t, unix.Mount("t", d, "tmpfs", unix.MS_RDONLY, "size=16k"))
		t.Cleanup(func() { _ = unix.Unmount(d, unix.MNT_DETACH) })
		r = n.run(t)
		require.True(t, find(r, "library-dir", doctor.OK, "holds 1 library directories"), r.Text())
	}

	require.NoError(t, os.WriteFile(filepath.Join(root, "notes.txt"), nil, 0o644))
	r = n.run(t)
	require.True(t, find(r, "library-dir", doctor.Fail, `holds "notes.txt", which gpu-nri did not make`), r.Text())
}

// readyServer is a daemon whose /readyz says ok.
func readyServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			_, _ = fmt.Fprintln(w, "ok")
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}
