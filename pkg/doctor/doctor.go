package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/libdir"
)

// Severity of a finding.
type Severity string

// Severities, from fine to broken. Warn and Fail make a node unhealthy.
const (
	OK   Severity = "ok"
	Info Severity = "info"
	Warn Severity = "warn"
	Fail Severity = "fail"
)

// Finding is one check's result.
type Finding struct {
	// Check names the area: driver, devices, runtime, nri, validator, hook, ...
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	// Message says what was seen.
	Message string `json:"message"`
	// Fix says what to do ("" when nothing is needed).
	Fix string `json:"fix,omitempty"`
}

// Report is every finding, in check order.
type Report struct {
	Findings []Finding `json:"findings"`
	Healthy  bool      `json:"healthy"`
}

// Default runtime config paths (host paths).
const (
	DefaultContainerdConfig = "/etc/containerd/config.toml"
	DefaultCRIOConfig       = "/etc/crio/crio.conf"
)

// Options say what to check.
type Options struct {
	// Config is gpu-nri's configuration (host view, socket, hook path,
	// loader, metrics address).
	Config *config.Config
	// ContainerdConfig and CRIOConfig are HOST paths of the runtime
	// configurations (defaults above; CRI-O's drop-in directory is
	// CRIOConfig + ".d"). Read under Config.Host.Root.
	ContainerdConfig, CRIOConfig string
	// Inventory options for discovery (node stater, GPU facts).
	Inventory []inventory.Option
	// Timeout bounds each connection attempt (default 2s).
	Timeout time.Duration
	// CRISocket is the HOST path of the runtime's CRI socket, asked for the
	// runtime's version (default DefaultContainerdCRISocket or
	// DefaultCRIOCRISocket by the runtime found). Read under Config.Host.Root.
	CRISocket string
}

type doctor struct {
	ctx context.Context
	o   Options
	cfg *config.Config
	r   Report
}

func (d *doctor) add(check string, sev Severity, fix, format string, a ...any) {
	d.r.Findings = append(d.r.Findings, Finding{Check: check, Severity: sev, Message: fmt.Sprintf(format, a...), Fix: fix})
}

// Run checks the node.
func Run(ctx context.Context, o Options) *Report {
	if o.Config == nil {
		o.Config = config.Default()
	}
	if o.ContainerdConfig == "" {
		o.ContainerdConfig = DefaultContainerdConfig
	}
	if o.CRIOConfig == "" {
		o.CRIOConfig = DefaultCRIOConfig
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if ctx == nil {
		ctx = context.Background()
	}
	d := &doctor{ctx: ctx, o: o, cfg: o.Config}
	d.driver()
	rt := d.runtime()
	d.socket(ctx, rt)
	ready := d.registration(ctx)
	d.hook()
	d.libraryDir(ready)
	d.r.Healthy = true
	for _, f := range d.r.Findings {
		if f.Severity == Warn || f.Severity == Fail {
			d.r.Healthy = false
		}
	}
	return &d.r
}

func (d *doctor) driver() {
	h := d.cfg.Host
	inv, err := inventory.Discover(h, d.o.Inventory...)
	switch {
	case errors.Is(err, inventory.ErrNoDriver):
		d.add("driver", Fail, fmt.Sprintf("install the NVIDIA driver and load its kernel module (modprobe nvidia); if the node has one, check host.root (%s) and host.procRoot (%s)", h.Root, h.ProcRoot),
			"no NVIDIA driver loaded: %s does not exist", filepath.Join(h.View(h.ProcRoot), "driver/nvidia/version"))
		return
	case err != nil:
		d.add("driver", Fail, "check host.root, host.driverRoot, host.devRoot and host.procRoot in the configuration", "driver inventory failed: %v", err)
		return
	}
	cuda := ""
	if inv.CUDAVersion != "" {
		cuda = ", CUDA " + inv.CUDAVersion
	}
	summary := fmt.Sprintf("NVIDIA driver %s%s, %d GPU(s), driver root %s", inv.DriverVersion, cuda, len(inv.GPUs), h.DriverRoot)
	// The summary comes first; [ok] only when nothing below is wrong.
	at := len(d.r.Findings)
	first := Finding{Check: "driver", Severity: OK, Message: summary}
	if n := d.driverProblems(inv); n > 0 {
		first = Finding{Check: "driver", Severity: Warn, Message: fmt.Sprintf("%s, but %d problem(s) below", summary, n), Fix: "see the driver findings below"}
	}
	d.r.Findings = slices.Insert(d.r.Findings, at, first)

	// Device nodes against the GPUs found.
	if inv.Ctl == nil {
		d.add("devices", Fail, "create the control node: nvidia-modprobe -c 255 (or mknod -m 666 /dev/nvidiactl c 195 255)", "%s is missing", filepath.Join(h.DevRoot, "nvidiactl"))
	}
	missing := 0
	for _, g := range inv.GPUs {
		if g.Node.HostPath == "" {
			missing++
			d.add("devices", Fail, fmt.Sprintf("create it: nvidia-modprobe -c %d (or enable nvidia-persistenced)", g.Minor),
				"GPU %d (%s, %s) has no device node %s", g.Index, g.UUID, g.PCIBusID, filepath.Join(h.DevRoot, fmt.Sprintf("nvidia%d", g.Minor)))
		}
	}
	if len(inv.GPUs) == 0 {
		d.add("devices", Warn, "check that the GPUs are bound to the nvidia driver (lspci -k; dmesg | grep NVRM)", "the driver reports no GPU under %s", filepath.Join(h.ProcRoot, "driver/nvidia/gpus"))
	} else if missing == 0 {
		d.add("devices", OK, "", "%d GPU(s), %d device node(s) /dev/nvidiaN", len(inv.GPUs), len(inv.GPUs))
	}
	named := map[string]bool{}
	for _, f := range inv.Skipped {
		named["library "+f.String()] = true
		d.add("files", Info, "", "skipped driver file %s", f)
	}
	for _, w := range inv.Warnings {
		if !named[w] {
			d.add("devices", Info, "", "inventory: %s", w)
		}
	}
}

// driverProblems adds a finding for each problem of the driver's user space
// that discovery found and returns how many: CUDA cannot run (nvidia-uvm, a
// userland of another version than the kernel module), no libraries at
// all, no libnvidia-ml, the driver's facts unavailable (nvidia-smi or NVML
// did not run), no GSP firmware.
func (d *doctor) driverProblems(inv *inventory.Inventory) int {
	h := d.cfg.Host
	n := len(d.r.Findings)
	for _, p := range inv.ComputeProblems {
		d.add("driver", Warn, p.Fix, "CUDA cannot run in containers: %s (requirements.computeNotReady: %s)", p.Cause, d.cfg.Requirements.ComputeNotReady)
	}
	libs, nvml := 0, false
	for _, l := range inv.Libraries {
		libs += len(l)
		for _, f := range l {
			nvml = nvml || (!f.Lib32 && strings.HasPrefix(filepath.Base(f.Path), "libnvidia-ml.so."))
		}
	}
	mismatch := slices.ContainsFunc(inv.ComputeProblems, func(p inventory.ComputeProblem) bool { return strings.Contains(p.Cause, "without a reboot") })
	switch {
	case libs == 0 && !mismatch:
		d.add("driver", Fail, fmt.Sprintf("install the driver's user-space libraries of version %s under host.driverRoot (%s) and run ldconfig there", inv.DriverVersion, h.DriverRoot),
			"no driver libraries (libcuda.so.%s, ...) found under %s", inv.DriverVersion, h.DriverRoot)
	case !nvml && !mismatch:
		d.add("driver", Warn, fmt.Sprintf("install NVML of version %s under host.driverRoot (%s): NVIDIA's libnvidia-ml package (Debian: libnvidia-ml1), then ldconfig", inv.DriverVersion, h.DriverRoot),
			"no libnvidia-ml.so.%s under %s: nvidia-smi and NVML cannot run, in containers or for gpu-nri's own driver facts", inv.DriverVersion, h.DriverRoot)
	}
	if len(inv.FactsErrors) > 0 {
		// One finding: each facts function (nvidia-smi -q, the MIG table, ...)
		// reports the same failed nvidia-smi.
		errs := slices.Compact(slices.Sorted(slices.Values(inv.FactsErrors)))
		e := strings.Join(errs, "; ")
		d.add("driver", Warn, fmt.Sprintf("make the driver root's nvidia-smi run (%s -q), or set requirements.unverifiable: allow", filepath.Join(h.View(h.DriverRoot), "usr/bin/nvidia-smi")),
			"the driver's facts (CUDA version, brands, compute capabilities) are unavailable: %s; with requirements.unverifiable: %s, containers whose image sets NVIDIA_REQUIRE_CUDA (every nvidia/cuda image) are %s",
			e, d.cfg.Requirements.Unverifiable, map[bool]string{true: "started without the check", false: "refused"}[d.cfg.Requirements.Unverifiable == "allow"])
	}
	if len(inv.Firmware) == 0 {
		d.add("driver", Warn, fmt.Sprintf("install the GSP firmware of driver %s (NVIDIA's nvidia-firmware-<branch>-%s package, Debian's firmware-nvidia-gsp) under %s", inv.DriverVersion, inv.DriverVersion, h.DriverRoot),
			"no GSP firmware for driver %s under %s (lib/firmware/nvidia/%s/gsp_*.bin): containers do not get it, and GPUs that need GSP firmware do not initialize", inv.DriverVersion, h.DriverRoot, inv.DriverVersion)
	}
	return len(d.r.Findings) - n
}

// runtimeInfo is what the runtime's configuration says about NRI.
type runtimeInfo struct {
	name   string // "containerd", "cri-o" or ""
	socket string // NRI socket path the runtime listens on
	nri    bool   // NRI enabled
}

// view returns where doctor reads the host path hostPath: under host.root,
// with symlinks, absolute ones included (/var/run -> /run, a hook binary
// linked through /etc/alternatives), resolved inside it as the host itself
// would, never in the plugin's own root.
func (d *doctor) view(hostPath string) string {
	h := d.cfg.Host
	if h.Root == "" || h.Root == "/" {
		return h.View(hostPath)
	}
	if p, err := securejoin.SecureJoin(h.Root, hostPath); err == nil {
		return p
	}
	return h.View(hostPath)
}

func (d *doctor) runtime() runtimeInfo {
	cPath, crioPath := d.o.ContainerdConfig, d.o.CRIOConfig
	crio, crioErr := d.loadCRIO(crioPath)
	var rt runtimeInfo
	found := false
	if _, err := os.Stat(d.view(cPath)); err == nil {
		found = true
		if c, err := d.loadContainerd(cPath); err != nil {
			d.add("runtime", Fail, "fix the named file's TOML syntax or import, or the value's type (containerd refuses to start with it too)", "containerd config: %v", err)
		} else {
			rt = d.containerd(c)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		d.add("runtime", Fail, "make the file readable", "containerd config %s: %v", cPath, err)
	}
	if crioErr != nil {
		d.add("runtime", Fail, "fix the TOML syntax or the value's type", "CRI-O config: %v", crioErr)
	} else if len(crio.files) > 0 {
		found = true
		r := d.crio(crio)
		if rt.name == "" {
			rt = r
		}
	}
	if !found {
		d.add("runtime", Info, fmt.Sprintf("pass --containerd-config or --crio-config if the runtime's config is elsewhere; containerd 2.x without a config file has NRI enabled at %s", config.Default().Plugin.Socket),
			"no containerd config (%s) or CRI-O config (%s) found; assuming containerd 2.x defaults", cPath, crioPath)
		rt = runtimeInfo{name: "containerd", socket: config.Default().Plugin.Socket, nri: true}
	}
	return rt
}

func isNvidiaRuntime(s string) bool {
	return strings.Contains(filepath.Base(s), "nvidia-container-runtime")
}

const nriSection = "io.containerd.nri.v1.nri"

// criRuntimeV3 is the CRI runtime plugin of config versions 3 and 4.
const criRuntimeV3 = "io.containerd.cri.v1.runtime"

// criRuntimeV2 is the CRI plugin of config version 2.
const criRuntimeV2 = "io.containerd.grpc.v1.cri"

func (d *doctor) containerd(c *containerdFiles) runtimeInfo {
	rt := runtimeInfo{name: "containerd"}
	version, main := c.version, c.files[0]
	criRuntime, cri := criRuntimeV2, c.cfg.Plugins.CRIv2.Containerd
	switch version {
	case 2:
	case 3, 4:
		criRuntime, cri = criRuntimeV3, c.cfg.Plugins.CRIv3.Containerd
	default:
		d.add("runtime", Fail, "migrate it: containerd config migrate > config.toml (containerd 2.x), or set version = 2 (containerd 1.7)",
			"containerd config %s has version %d; NRI needs containerd 1.7+ (config version 2) or 2.x (3, 4)", main, version)
		return rt
	}
	d.add("runtime", OK, "", "containerd config %s, version %d", c.describe(), version)
	for _, n := range c.notes {
		d.add("runtime", Warn, "add version = 2 (or the main file's version) to the imported file", "%s", n)
	}

	nri := c.cfg.Plugins.NRI
	if nri == nil {
		nri = &containerdNRI{}
	}
	disableFile := c.fileOf("plugins", nriSection, "disable")
	switch {
	case slices.Contains(c.cfg.DisabledPlugins, nriSection):
		d.add("nri", Fail, fmt.Sprintf("remove %q from disabled_plugins in %s and restart containerd", nriSection, c.fileOf("disabled_plugins")),
			"NRI is disabled: disabled_plugins lists %s", nriSection)
	case nri.Disable != nil && *nri.Disable:
		d.add("nri", Fail, fmt.Sprintf(`set [plugins."%s"] disable = false in %s and restart containerd`, nriSection, disableFile), "NRI is disabled in %s", disableFile)
	case nri.Disable == nil && version == 2:
		d.add("nri", Warn, fmt.Sprintf(`containerd 1.7 disables NRI by default: add [plugins."%s"] disable = false to %s (containerd 2.x enables it by default)`, nriSection, main),
			"NRI is not explicitly enabled in %s (config version 2)", c.describe())
		rt.nri = true
	default:
		rt.nri = true
		d.add("nri", OK, "", "NRI enabled in containerd")
	}
	rt.socket = orDefault(nri.SocketPath, config.Default().Plugin.Socket)
	d.nriSettings("containerd", rt.socket, orDefault(nri.PluginPath, "/opt/nri/plugins"), orDefault(nri.PluginConfigPath, "/etc/nri/conf.d"),
		orDefault(nri.PluginRequestTimeout, "2s"), nri.DisableConnections,
		fmt.Sprintf(`[plugins."%s"] of %s`, nriSection, c.fileOf("plugins", nriSection, "socket_path")))

	// Default validator.
	v := nri.DefaultValidator
	d.validator("containerd", v.Enable, v.RequiredPlugins, v.RejectOCIHookAdjustment,
		fmt.Sprintf(`[plugins."%s".default_validator] of %s`, nriSection, c.fileOf("plugins", nriSection, "default_validator", "required_plugins")))

	// Leftover NVIDIA runtime.
	base := []string{"plugins", criRuntime, "containerd"}
	def := orDefault(cri.DefaultRuntimeName, "runc")
	section := fmt.Sprintf(`[plugins."%s".containerd]`, criRuntime)
	for _, n := range slices.Sorted(maps.Keys(cri.Runtimes)) {
		bin := cri.Runtimes[n].Options.BinaryName
		if !isNvidiaRuntime(bin) && n != "nvidia" {
			continue
		}
		if n == def {
			d.add("runtime", Fail, fmt.Sprintf(`set default_runtime_name = "runc" in %s of %s (gpu-nri replaces nvidia-container-runtime) and restart containerd`,
				section, c.fileOf(append(base, "default_runtime_name")...)),
				"the default runtime %q is NVIDIA's (BinaryName %q): GPU containers would be injected twice", n, bin)
		} else {
			d.add("runtime", Warn, fmt.Sprintf("remove the runtime %q from %s, and any RuntimeClass naming it, once workloads use gpu-nri",
				n, c.fileOf(append(base, "runtimes", n, "runtime_type")...)),
				"runtime %q (BinaryName %q) is NVIDIA's: pods with runtimeClassName %s would be injected twice", n, bin, n)
		}
	}
	return rt
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// crioFiles is CRI-O's configuration: crio.conf and its drop-ins, merged.
type crioFiles struct {
	*layered
	// cfg is the merged configuration, typed.
	cfg crioConfig
}

// loadCRIO merges crio.conf and crio.conf.d/*.conf (lexical order, later
// files win key by key, arrays included).
func (d *doctor) loadCRIO(path string) (*crioFiles, error) {
	var files []string
	if _, err := os.Stat(d.view(path)); err == nil {
		files = append(files, path)
	}
	dropins, _ := filepath.Glob(filepath.Join(d.view(path+".d"), "*.conf"))
	sort.Strings(dropins)
	for _, f := range dropins {
		h, err := d.hostPath(f)
		if err != nil {
			return nil, err
		}
		files = append(files, h)
	}
	c := &crioFiles{layered: newLayered()}
	for _, f := range files {
		m, err := d.readTOML(f, nil)
		if err != nil {
			return nil, err
		}
		c.add(f, m, false)
	}
	if len(c.files) > 0 {
		if err := c.decode(&c.cfg); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (d *doctor) crio(c *crioFiles) runtimeInfo {
	rt := runtimeInfo{name: "cri-o", nri: true, socket: config.Default().Plugin.Socket}
	nri, runtime := c.cfg.Crio.NRI, c.cfg.Crio.Runtime
	d.add("runtime", OK, "", "CRI-O config %s", strings.Join(c.files, ", "))
	switch {
	case nri.EnableNRI == nil:
		d.add("nri", Info, "CRI-O before 1.30 needs [crio.nri] enable_nri = true", "enable_nri is not set: enabled by default since CRI-O 1.30")
	case !*nri.EnableNRI:
		rt.nri = false
		d.add("nri", Fail, fmt.Sprintf("set [crio.nri] enable_nri = true in %s and restart CRI-O", c.fileOf("crio", "nri", "enable_nri")),
			"NRI is disabled in CRI-O (enable_nri = false in %s)", c.fileOf("crio", "nri", "enable_nri"))
	default:
		d.add("nri", OK, "", "NRI enabled in CRI-O")
	}
	rt.socket = orDefault(nri.Listen, rt.socket)
	d.nriSettings("cri-o", rt.socket, orDefault(nri.PluginDir, "/opt/nri/plugins"), orDefault(nri.PluginConfigDir, "/etc/nri/conf.d"),
		orDefault(nri.RequestTimeout, "2s"), nri.DisableConnections, "[crio.nri]")

	v := nri.DefaultValidator
	d.validator("cri-o", v.Enable, v.RequiredPlugins, v.RejectOCIHookAdjustment, "[crio.nri.default_validator]")

	def := orDefault(runtime.DefaultRuntime, "crun")
	for _, n := range slices.Sorted(maps.Keys(runtime.Runtimes)) {
		p := runtime.Runtimes[n].RuntimePath
		if !isNvidiaRuntime(p) && n != "nvidia" {
			continue
		}
		if n == def {
			d.add("runtime", Fail, "set [crio.runtime] default_runtime back to crun or runc and restart CRI-O (gpu-nri replaces nvidia-container-runtime)",
				"the default runtime %q is NVIDIA's (runtime_path %q): GPU containers would be injected twice", n, p)
		} else {
			d.add("runtime", Warn, fmt.Sprintf("remove [crio.runtime.runtimes.%s], and any RuntimeClass naming it, once workloads use gpu-nri", n),
				"runtime %q (runtime_path %q) is NVIDIA's: pods with runtimeClassName %s would be injected twice", n, p, n)
		}
	}
	return rt
}

func (d *doctor) nriSettings(runtime, socket, pluginDir, confDir, timeout string, disableConns bool, section string) {
	want := d.cfg.Plugin.Socket
	if socket != want {
		d.add("nri", Fail, fmt.Sprintf("make them match: plugin.socket: %s in gpu-nri's config, or the socket in %s", socket, section),
			"%s listens on %s but gpu-nri connects to %s (plugin.socket)", runtime, socket, want)
	} else {
		d.add("nri", OK, "", "socket %s (matches plugin.socket)", socket)
	}
	d.add("nri", Info, "", "plugin dir %s, plugin config dir %s, request timeout %s", pluginDir, confDir, timeout)
	if dur, err := time.ParseDuration(timeout); err == nil && dur < 2*time.Second {
		d.add("nri", Warn, fmt.Sprintf("raise the request timeout in %s to at least 2s", section),
			"the NRI request timeout %s is short: a slow answer unregisters gpu-nri and containers then start without GPUs", timeout)
	}
	if disableConns {
		d.add("nri", Fail, fmt.Sprintf("set disable_connections = false in %s, or install gpu-nri pre-registered (gpu-nri install --mode pre-registered)", section),
			"%s refuses external NRI plugin connections", runtime)
	}
}

func (d *doctor) validator(runtime string, enabled bool, required []string, rejectHooks bool, section string) {
	name := d.cfg.Plugin.Name
	if enabled && slices.Contains(required, name) {
		d.add("validator", OK, "", "%s requires plugin %q in its configuration", runtime, name)
		d.validatorVersion(runtime)
	} else {
		d.add("validator", Info, fmt.Sprintf(`for fail-closed: enable = true and required_plugins = ["%s"] in %s`, name, section),
			"%s does not require gpu-nri: if gpu-nri is down or times out, GPU containers start without GPUs (fail-open)", runtime)
	}
	if enabled && rejectHooks {
		if d.cfg.Injection.Loader == config.LoaderHook {
			d.add("validator", Fail, "set injection.loader: hookless in gpu-nri's config (no OCI hook; libraries mounted under their SONAMEs)",
				"%s rejects OCI hook adjustments (reject_oci_hook_adjustment) but injection.loader is hook: every GPU container would fail", runtime)
		} else {
			d.add("validator", OK, "", "%s rejects OCI hook adjustments; injection.loader is hookless", runtime)
		}
	}
}

// validatorVersion says whether the configured required_plugins really
// fails closed: only runtimes whose NRI has the default validator honour it.
func (d *doctor) validatorVersion(runtime string) {
	_, _, minimum := validatorMinimum(runtime)
	upgrade := fmt.Sprintf("upgrade to %s or later; until then nothing refuses a GPU container while gpu-nri is down: install gpu-nri pre-registered (gpu-nri install --mode pre-registered) so the runtime starts it itself, and alert on gpu-nri's readiness", minimum)
	rname, version, err := d.runtimeVersion(runtime)
	if err != nil {
		d.add("validator", Info, fmt.Sprintf("pass --cri-socket with the runtime's CRI socket so doctor can read its version; if it is older than %s: %s", minimum, upgrade),
			"fail-closed only with %s or later (NRI's default validator; older releases ignore required_plugins); the %s version is unknown: %v", minimum, runtime, err)
		return
	}
	has, ok := hasDefaultValidator(runtime, version)
	switch {
	case !ok:
		d.add("validator", Info, "if it is older than "+minimum+": "+upgrade, "fail-closed only with %s or later; the CRI socket reports %s version %q, which doctor cannot read", minimum, rname, version)
	case has:
		d.add("validator", OK, "", "%s %s has NRI's default validator: fail-closed (containers fail when gpu-nri is not running)", rname, version)
	default:
		d.add("validator", Warn, upgrade,
			"%s %s has no NRI default validator (it needs %s, NRI v0.10): required_plugins is ignored and GPU containers start without GPUs while gpu-nri is down (fail-open)", rname, version, minimum)
	}
}

func (d *doctor) socket(ctx context.Context, rt runtimeInfo) {
	sock := d.cfg.Plugin.Socket
	view := d.view(sock)
	fi, err := os.Stat(view)
	if err != nil {
		d.add("connection", Fail, fmt.Sprintf("start the runtime (%s) with NRI enabled; the socket appears when it is up", orDefault(rt.name, "containerd")),
			"NRI socket %s: %v", sock, err)
		return
	}
	if fi.Mode()&os.ModeSocket == 0 {
		d.add("connection", Fail, "remove it and restart the runtime", "%s is not a socket (%s)", sock, fi.Mode().Type())
		return
	}
	dialer := net.Dialer{Timeout: d.o.Timeout}
	c, err := dialer.DialContext(ctx, "unix", view)
	if err != nil {
		d.add("connection", Fail, "restart the runtime; check that nothing else owns the socket", "NRI socket %s does not accept connections: %v", sock, err)
		return
	}
	_ = c.Close()
	d.add("connection", OK, "", "NRI socket %s accepts connections", sock)
}

func (d *doctor) registration(ctx context.Context) (ready bool) {
	addr := d.cfg.Metrics.Address
	if addr == "" {
		d.add("registration", Info, "set metrics.address (e.g. :9464) to let doctor ask the daemon's /readyz", "gpu-nri's registration is not checked: metrics.address is not configured")
		return false
	}
	host := addr
	if strings.HasPrefix(host, ":") {
		host = "127.0.0.1" + host
	}
	url := "http://" + host + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		d.add("registration", Fail, "fix metrics.address", "metrics.address %q: %v", addr, err)
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.add("registration", Fail, "start the daemon (gpu-nri run) or check its logs", "gpu-nri's /readyz at %s did not answer: %v", url, err)
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		d.add("registration", Fail, "check the daemon's logs and the runtime's NRI configuration above", "gpu-nri is not ready (%s %d): %s", url, resp.StatusCode, text)
		return false
	}
	d.add("registration", OK, "", "gpu-nri is registered with the runtime and has an inventory (%s)", url)
	return true
}

func (d *doctor) hook() {
	inj := d.cfg.Injection
	if inj.Loader == config.LoaderHook {
		d.executable("hook", inj.HookPath, "injection.hookPath",
			fmt.Sprintf("install the hook binary there (gpu-nri install, or cp gpu-nri-hook %s), or set injection.hookPath to where it is on the host", inj.HookPath))
		if filepath.Base(inj.HookPath) == "gpu-nri" {
			d.add("hook", Info, "", "injection.hookPath %s is the full gpu-nri binary: the hook-only gpu-nri-hook takes the same argv and starts several times faster on every hooked container start (gpu-nri install puts it at %s)", inj.HookPath, filepath.Join(filepath.Dir(inj.HookPath), "gpu-nri-hook"))
		}
		d.executable("hook", inj.LdconfigPath, "injection.ldconfigPath", "install glibc's ldconfig there, or set injection.ldconfigPath")
	} else {
		d.add("hook", OK, "", "injection.loader is hookless: no hook binary needed")
	}
}

// libraryDir checks injection.libraryDir as the runtime sees the host: with
// the daemon ready, its directories must be there, or its mounts do not reach
// the runtime (and every container gets per-file mounts).
func (d *doctor) libraryDir(ready bool) {
	root := d.cfg.Injection.LibraryDir
	if root == "" {
		return
	}
	dir := d.view(root)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		d.add("library-dir", Fail, "", "injection.libraryDir %s: %v", root, err)
		return
	}
	for _, e := range ents {
		if !libdir.Ours(e.Name()) {
			d.add("library-dir", Fail, "give gpu-nri a directory of its own (e.g. /run/gpu-nri/lib)",
				"injection.libraryDir %s holds %q, which gpu-nri did not make: the daemon refuses to start", root, e.Name())
			return
		}
	}
	complete := len(libdir.Built(dir))
	switch {
	case complete > 0:
		d.add("library-dir", OK, "", "injection.libraryDir %s holds %d library directories the daemon built: containers get the libraries as one mount", root, complete)
	case ready:
		d.add("library-dir", Warn, "Kubernetes: mount the host directory at host.root+injection.libraryDir with mountPropagation: Bidirectional (deploy/kubernetes/overlays/library-dir); host install: the systemd drop-in gpu-nri install adds (gpu-nri.service.d/library-dir.conf), and a shared mount at that directory",
			"gpu-nri is running but injection.libraryDir %s holds no library directory here: its mounts do not reach this mount namespace, so every container gets per-file mounts", root)
	default:
		d.add("library-dir", Info, "", "injection.libraryDir %s: no library directory yet (the daemon builds them when it runs)", root)
	}
}

func (d *doctor) executable(check, hostPath, key, fix string) {
	fi, err := os.Stat(d.view(hostPath))
	switch {
	case err != nil:
		d.add(check, Fail, fix, "%s %s: %v", key, hostPath, err)
	case !fi.Mode().IsRegular():
		d.add(check, Fail, fix, "%s %s is not a regular file", key, hostPath)
	case fi.Mode().Perm()&0o111 == 0:
		d.add(check, Fail, "chmod 755 "+hostPath, "%s %s is not executable", key, hostPath)
	default:
		d.add(check, OK, "", "%s %s is present and executable", key, hostPath)
	}
}

// Text renders the report for people.
func (r *Report) Text() string {
	var b strings.Builder
	for _, f := range r.Findings {
		tag := map[Severity]string{OK: "[ok]  ", Info: "[info]", Warn: "[WARN]", Fail: "[FAIL]"}[f.Severity]
		fmt.Fprintf(&b, "%s %-12s %s\n", tag, f.Check, f.Message)
		if f.Fix != "" && f.Severity != OK {
			fmt.Fprintf(&b, "       %-12s fix: %s\n", "", f.Fix)
		}
	}
	if r.Healthy {
		b.WriteString("\nhealthy\n")
	} else {
		n := 0
		for _, f := range r.Findings {
			if f.Severity == Warn || f.Severity == Fail {
				n++
			}
		}
		fmt.Fprintf(&b, "\n%d finding(s) need attention\n", n)
	}
	return b.String()
}
