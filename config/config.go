package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"sigs.k8s.io/yaml"
)

// Config is the whole gpu-nri configuration file.
type Config struct {
	// Host says where the plugin reads the host and which host paths it emits.
	Host Host `json:"host"`
	// Plugin is the NRI connection.
	Plugin Plugin `json:"plugin"`
	// Injection says what is put into a GPU container and how.
	Injection Injection `json:"injection"`
	// Requirements controls NVIDIA_REQUIRE_* evaluation.
	Requirements Requirements `json:"requirements"`
	// Policy says who may ask for which GPU through which request source.
	Policy Policy `json:"policy"`
	// Log configures the daemon's logging.
	Log Log `json:"log"`
	// Metrics configures the HTTP endpoint for /metrics, /healthz, /readyz.
	Metrics Metrics `json:"metrics"`
	// DRA is the Kubernetes Dynamic Resource Allocation kubelet plugin
	// (off by default; see docs/dra.md).
	DRA DRA `json:"dra"`
}

// DRA configures gpu-nri as a DRA driver (pkg/dra): it publishes the node's
// GPUs and MIG devices as ResourceSlices and prepares the claims the
// scheduler allocated from them.
type DRA struct {
	// Enabled serves the kubelet plugin from `gpu-nri run` (default false).
	Enabled bool `json:"enabled"`
	// DriverName is the DRA driver name (default "gpu.gpu-nri.io").
	DriverName string `json:"driverName"`
	// NodeName is the Kubernetes node this plugin serves (default: the
	// NODE_NAME environment variable, which the DaemonSet sets).
	NodeName string `json:"nodeName"`
	// KubeletRegistryDir is the kubelet's plugin registration directory
	// (default /var/lib/kubelet/plugins_registry).
	KubeletRegistryDir string `json:"kubeletRegistryDir"`
	// PluginDir holds the plugin's gRPC socket and its checkpoint of the
	// prepared claims (default /var/lib/kubelet/plugins/gpu.gpu-nri.io).
	PluginDir string `json:"pluginDir"`
	// CDISpecDir is where a prepared claim's names-only CDI spec is written,
	// one of the runtime's CDI spec directories (default /var/run/cdi).
	CDISpecDir string `json:"cdiSpecDir"`
}

// Host is the host view. Paths named "host path" are paths on the host as the
// container runtime resolves them; the plugin reads each of them at
// filepath.Join(Root, hostPath).
type Host struct {
	// Root is where the plugin sees the host's "/" (default "/"; "/host" when
	// the plugin runs in a container with the host root mounted there).
	Root string `json:"root"`
	// DriverRoot is the host path of the root the driver is installed under
	// (default "/"; "/run/nvidia/driver" under NVIDIA's GPU Operator).
	DriverRoot string `json:"driverRoot"`
	// DevRoot is the host path of the directory holding the nvidia device
	// nodes (default "/dev").
	DevRoot string `json:"devRoot"`
	// ProcRoot is the host path of procfs, read for /proc/driver/nvidia and
	// /proc/devices (default "/proc").
	ProcRoot string `json:"procRoot"`
	// RefreshInterval is how often the inventory's fingerprint (a few stat
	// calls) is checked for driver changes (default 10s). 0 disables polling.
	RefreshInterval Duration `json:"refreshInterval"`
	// Watch makes the inventory follow the host within about a second: the
	// driver's library, binary and firmware directories and the device
	// directory are watched with inotify, and the procfs part of the
	// fingerprint is polled every 250ms (default true). RefreshInterval stays
	// the fallback poll; when inotify is unavailable the plugin reports it and
	// polls. Needs a positive RefreshInterval.
	Watch bool `json:"watch"`
}

// Plugin is the NRI side.
type Plugin struct {
	// Name is the NRI plugin name (default "gpu-nri").
	Name string `json:"name"`
	// Index is the two-digit NRI plugin index (default "10").
	Index string `json:"index"`
	// Socket is the NRI socket (default "/var/run/nri/nri.sock").
	Socket string `json:"socket"`
	// ReconnectMin and ReconnectMax bound the reconnect backoff after the
	// runtime closes the connection (defaults 500ms and 10s).
	ReconnectMin Duration `json:"reconnectMin"`
	ReconnectMax Duration `json:"reconnectMax"`
	// SyncTimeout is how long gpu-nri waits, after the runtime accepted its
	// registration, for the runtime's Synchronize (the last registration
	// step, after which the runtime sends it containers) before it logs an
	// error and /readyz says so (default 30s).
	SyncTimeout Duration `json:"syncTimeout"`
}

// Loader is injection.loader: how a container's dynamic loader finds the
// driver libraries.
type Loader string

// The loader modes.
const (
	LoaderHook     Loader = "hook"     // a createContainer hook: links + ld.so.cache
	LoaderHookless Loader = "hookless" // no OCI hook: libraries mounted under their SONAME
)

// Loaders lists every loader mode. It returns a new slice on each call.
func Loaders() []Loader { return []Loader{LoaderHook, LoaderHookless} }

// CgroupRuleMode is injection.deviceCgroupRules: when explicit device-cgroup
// allow rules are added beside each device node.
type CgroupRuleMode string

// The device-cgroup rule modes.
const (
	CgroupRulesAuto   CgroupRuleMode = "auto"   // when the runtime applies them
	CgroupRulesAlways CgroupRuleMode = "always" // always
	CgroupRulesNever  CgroupRuleMode = "never"  // never
)

// CgroupRuleModes lists every device-cgroup rule mode. It returns a new
// slice on each call.
func CgroupRuleModes() []CgroupRuleMode {
	return []CgroupRuleMode{CgroupRulesAuto, CgroupRulesAlways, CgroupRulesNever}
}

// Capability is an NVIDIA driver capability (an NVIDIA_DRIVER_CAPABILITIES
// item). AllCapabilities is the one list of them; pkg/inventory names the
// same values (inventory.Compute, ...).
type Capability string

// The driver capabilities.
const (
	CapabilityCompat32 Capability = "compat32"
	CapabilityCompute  Capability = "compute"
	CapabilityDisplay  Capability = "display"
	CapabilityGraphics Capability = "graphics"
	CapabilityNGX      Capability = "ngx"
	CapabilityUtility  Capability = "utility"
	CapabilityVideo    Capability = "video"
)

// NumCapabilities is the number of driver capabilities (the length of
// AllCapabilities' array, checked by the compiler).
const NumCapabilities = 7

// AllCapabilities lists every driver capability gpu-nri knows, sorted by
// name. It is the one list: configuration validation, request parsing and
// the order in which a container's driver files are mounted all take it.
// It returns an array value, so callers cannot change the list.
func AllCapabilities() [NumCapabilities]Capability {
	return [...]Capability{CapabilityCompat32, CapabilityCompute, CapabilityDisplay, CapabilityGraphics,
		CapabilityNGX, CapabilityUtility, CapabilityVideo}
}

// Valid reports whether c is one of AllCapabilities.
func (c Capability) Valid() bool {
	for _, k := range AllCapabilities() {
		if k == c {
			return true
		}
	}
	return false
}

// strs returns typed values as plain strings (the configuration's shape).
func strs[T ~string](list ...T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}

// joined writes a list of typed values as "a, b, c" for error messages.
func joined[T ~string](list []T) string { return strings.Join(strs(list...), ", ") }

// Injection says what a GPU container gets.
type Injection struct {
	// DefaultCapabilities apply when NVIDIA_DRIVER_CAPABILITIES is unset or
	// empty (default ["utility", "compute"]). Each is one of
	// AllCapabilities.
	DefaultCapabilities []string `json:"defaultCapabilities"`
	// SupportedCapabilities is the set a container may ask for (default all).
	SupportedCapabilities []string `json:"supportedCapabilities"`
	// Loader is "hook" or "hookless" (default "hook").
	Loader Loader `json:"loader"`
	// HooklessLayout says where hookless mode mounts libraries under their
	// SONAME: "auto" (Debian and RHEL loader directories, default),
	// "debian", "rhel", or "fallback" (only /usr/local/nvidia/lib64, found
	// through LD_LIBRARY_PATH, which gpu-nri then prepends).
	HooklessLayout hookproto.Layout `json:"hooklessLayout"`
	// LibraryDir, when set (default "", off), is a HOST directory the daemon
	// owns: for each inventory and capability set it builds there, off the
	// create path, one read-only directory holding the driver's 64-bit
	// libraries (each bind-mounted once on the host) and their SONAME and
	// alias links, and a container then gets that directory as ONE mount at
	// /usr/local/nvidia/lib64 instead of a mount per library file. Hook mode
	// adds the directory's libraries to the image's ld.so.cache; hookless
	// mode prepends the directory to LD_LIBRARY_PATH. The libraries are then
	// not at the host's paths in the container (docs/requests.md). The
	// daemon must share the runtime's mount namespace, or propagate its
	// mounts to it (a Bidirectional hostPath in a DaemonSet). Must be
	// absolute; `gpu-nri install --uninstall` removes what is left there.
	LibraryDir string `json:"libraryDir"`
	// HookPath is the HOST path of the gpu-nri binary that runtimes execute as
	// a createContainer hook (default "/usr/local/bin/gpu-nri-hook", the hook-only
	// binary; the full gpu-nri binary takes the same argv but starts slower).
	HookPath string `json:"hookPath"`
	// LdconfigPath is the HOST path of the ldconfig the hook runs (default
	// "/sbin/ldconfig"; a path under DriverRoot is resolved there).
	LdconfigPath string `json:"ldconfigPath"`
	// HookTimeout is the runtime-enforced hook timeout in seconds (default 10).
	HookTimeout int `json:"hookTimeout"`
	// CUDACompat enables CUDA forward compatibility from the image's
	// /usr/local/cuda/compat when newer than the host driver (default false).
	CUDACompat bool `json:"cudaCompat"`
	// DisableDeviceNodeModification hides /proc/driver/nvidia/params behind a
	// copy with ModifyDeviceFiles: 0 (default true).
	DisableDeviceNodeModification bool `json:"disableDeviceNodeModification"`
	// CDIKind is the CDI kind gpu-nri answers for itself (default "nvidia.com/gpu").
	CDIKind string `json:"cdiKind"`
	// CDISpecDirs are read for third-party CDI devices (default
	// ["/etc/cdi", "/var/run/cdi"]).
	CDISpecDirs []string `json:"cdiSpecDirs"`
	// CDIOwnSpecDir, when set, is the runtime's CDI spec directory (e.g.
	// /var/run/cdi) where the daemon keeps a spec for CDIKind whose devices
	// inject nothing (cdispec.Markers), so a runtime that resolves CDI names
	// before NRI accepts gpu-nri's names and gpu-nri alone injects (default
	// "": off).
	CDIOwnSpecDir string `json:"cdiOwnSpecDir"`
	// AnnotationDomain is the suffix of gpu-nri's pod annotation keys
	// (default "gpu-nri.io": keys gpus.gpu-nri.io/container.<name>, ...).
	AnnotationDomain string `json:"annotationDomain"`
	// DeviceCgroupRules adds explicit device-cgroup allow rules beside each
	// device node: "auto" (when the runtime applies them), "always", "never".
	DeviceCgroupRules CgroupRuleMode `json:"deviceCgroupRules"`
	// AdditionalGIDs adds a node's group to the container when the node is not
	// world read-writable (default true).
	AdditionalGIDs bool `json:"additionalGIDs"`
	// MPSPipeDirectory is the host MPS pipe directory mounted when it exists
	// (default "/tmp/nvidia-mps").
	MPSPipeDirectory string `json:"mpsPipeDirectory"`
}

// Requirements controls NVIDIA_REQUIRE_* handling.
type Requirements struct {
	// Disable skips every requirement check (like NVIDIA's disable-require).
	Disable bool `json:"disable"`
	// Unverifiable says what happens when a requirement names a property the
	// host cannot report (no NVML): "refuse" (default) or "allow".
	Unverifiable string `json:"unverifiable"`
	// ComputeNotReady says what happens to a container that needs compute
	// on a node where CUDA cannot run (nvidia-uvm not loaded, or libraries
	// of another driver version than the loaded kernel module): "refuse"
	// (default: a clear error naming the cause and the fix) or "allow" (it
	// starts, with a warning).
	ComputeNotReady string `json:"computeNotReady"`
}

// Request sources.
const (
	SourceEnv           = "env"            // NVIDIA_VISIBLE_DEVICES and friends
	SourceAnnotation    = "annotation"     // gpu-nri's pod annotations
	SourceVolumeMounts  = "volume-mounts"  // device-plugin volume-mounts strategy
	SourceCDIAnnotation = "cdi-annotation" // cdi.k8s.io/ annotations
	SourceCDIDevices    = "cdi-devices"    // CRI/NRI Container.CDIDevices
)

// Sources lists every request source in precedence order (most trusted by
// default first). It returns a new slice on each call.
func Sources() []string {
	return []string{SourceCDIDevices, SourceCDIAnnotation, SourceVolumeMounts, SourceAnnotation, SourceEnv}
}

// Policy is the authorization policy.
type Policy struct {
	// Profile selects the rules every source starts from: "standalone"
	// (the default, StandalonePolicy), "kubernetes-strict"
	// (KubernetesStrictPolicy) or "custom" (no rule: only the sources listed
	// are honoured).
	Profile string `json:"profile"`
	// Sources maps a request source to its rule. A source listed in the file
	// replaces the profile's rule for that source, whole; the other sources
	// keep the profile's rules. A source without a rule is refused.
	Sources map[string]SourceRule `json:"sources"`
	// ManagementNamespaces are the namespaces (path.Match globs) whose
	// containers may ask for MIG configuration or monitoring
	// (NVIDIA_MIG_CONFIG_DEVICES / NVIDIA_MIG_MONITOR_DEVICES). NVIDIA allows
	// these to privileged containers only; NRI shows no privileged flag, so
	// gpu-nri refuses them everywhere unless listed here (default empty).
	ManagementNamespaces []string `json:"managementNamespaces,omitempty"`
}

// SourceRule says whether and where a request source is honoured.
type SourceRule struct {
	// Trusted sources win over untrusted ones when several ask at once.
	Trusted bool `json:"trusted"`
	// AllowNamespaces, when set, limits the source to matching namespaces
	// (path.Match globs). Empty means every namespace.
	AllowNamespaces []string `json:"allowNamespaces,omitempty"`
	// DenyNamespaces are refused even when allowed above.
	DenyNamespaces []string `json:"denyNamespaces,omitempty"`
	// AllowAll permits "all" from this source.
	AllowAll bool `json:"allowAll"`
}

// Log configures logging.
type Log struct {
	Level  string `json:"level"`  // debug, info, warn, error (default info)
	Format string `json:"format"` // text or json (default text)
}

// Metrics configures the HTTP endpoint.
type Metrics struct {
	// Address to listen on (default "" = off), e.g. ":9464".
	Address string `json:"address"`
}

// Duration is a time.Duration written as "10s" in YAML.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads "10s" style durations.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Std returns the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Default returns the built-in defaults: the standalone profile.
func Default() *Config {
	all := AllCapabilities()
	return &Config{
		Host: Host{Root: "/", DriverRoot: "/", DevRoot: "/dev", ProcRoot: "/proc", RefreshInterval: Duration(10 * time.Second), Watch: true},
		Plugin: Plugin{Name: "gpu-nri", Index: "10", Socket: "/var/run/nri/nri.sock",
			ReconnectMin: Duration(500 * time.Millisecond), ReconnectMax: Duration(10 * time.Second), SyncTimeout: Duration(30 * time.Second)},
		Injection: Injection{
			DefaultCapabilities:           strs(CapabilityUtility, CapabilityCompute),
			SupportedCapabilities:         strs(all[:]...),
			Loader:                        LoaderHook,
			HooklessLayout:                "auto",
			HookPath:                      "/usr/local/bin/gpu-nri-hook",
			LdconfigPath:                  "/sbin/ldconfig",
			HookTimeout:                   10,
			DisableDeviceNodeModification: true,
			CDIKind:                       "nvidia.com/gpu",
			CDISpecDirs:                   []string{"/etc/cdi", "/var/run/cdi"},
			AnnotationDomain:              "gpu-nri.io",
			DeviceCgroupRules:             CgroupRulesAuto,
			AdditionalGIDs:                true,
			MPSPipeDirectory:              "/tmp/nvidia-mps",
		},
		Requirements: Requirements{Unverifiable: "refuse", ComputeNotReady: "refuse"},
		Policy:       StandalonePolicy(),
		Log:          Log{Level: "info", Format: "text"},
		DRA: DRA{DriverName: "gpu.gpu-nri.io", KubeletRegistryDir: "/var/lib/kubelet/plugins_registry",
			PluginDir: "/var/lib/kubelet/plugins/gpu.gpu-nri.io", CDISpecDir: "/var/run/cdi"},
	}
}

// Policy profiles (policy.profile).
const (
	ProfileStandalone       = "standalone"
	ProfileKubernetesStrict = "kubernetes-strict"
	ProfileCustom           = "custom"
)

// Profiles lists the policy profile names. It returns a new slice on each
// call.
func Profiles() []string {
	return []string{ProfileStandalone, ProfileKubernetesStrict, ProfileCustom}
}

// ProfilePolicy returns the rules the profile name selects:
// StandalonePolicy, KubernetesStrictPolicy, or for "custom" a policy with no
// rule at all.
func ProfilePolicy(name string) (Policy, error) {
	switch name {
	case ProfileStandalone:
		return StandalonePolicy(), nil
	case ProfileKubernetesStrict:
		return KubernetesStrictPolicy(), nil
	case ProfileCustom:
		return Policy{Profile: ProfileCustom, Sources: map[string]SourceRule{}}, nil
	}
	return Policy{}, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(Profiles(), ", "))
}

// StandalonePolicy behaves like NVIDIA's defaults: every source is honoured
// everywhere, "all" included.
func StandalonePolicy() Policy {
	p := Policy{Profile: ProfileStandalone, Sources: map[string]SourceRule{}}
	for _, s := range Sources() {
		p.Sources[s] = SourceRule{Trusted: true, AllowAll: true}
	}
	return p
}

// KubernetesStrictPolicy trusts only what the kubelet and device plugin
// control; env and pod annotations are honoured only in kube-system.
func KubernetesStrictPolicy() Policy {
	return Policy{Profile: ProfileKubernetesStrict, Sources: map[string]SourceRule{
		SourceCDIDevices:    {Trusted: true, AllowAll: false},
		SourceCDIAnnotation: {Trusted: true, AllowAll: false},
		SourceVolumeMounts:  {Trusted: true, AllowAll: false},
		SourceAnnotation:    {Trusted: false, AllowNamespaces: []string{"kube-system"}},
		SourceEnv:           {Trusted: false, AllowNamespaces: []string{"kube-system"}},
	}}
}

// Parse reads a YAML (or JSON) document over the defaults. Unknown keys are
// errors. An empty document gives Default(). policy.profile (default
// standalone) selects the rules every source starts from; each source listed
// under policy.sources then replaces that source's rule.
func Parse(data []byte) (*Config, error) {
	c := Default()
	if len(bytes.TrimSpace(data)) > 0 {
		c.Policy.Profile, c.Policy.Sources = "", nil
		if err := yaml.UnmarshalStrict(data, c); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if c.Policy.Profile == "" {
			c.Policy.Profile = ProfileStandalone
		}
		base, err := ProfilePolicy(c.Policy.Profile)
		if err != nil {
			return nil, fmt.Errorf("config: policy.profile: %w", err)
		}
		for s, r := range c.Policy.Sources {
			base.Sources[s] = r
		}
		c.Policy.Sources = base.Sources // the rest of policy: (e.g. managementNamespaces) stays
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Load reads and parses a config file. An empty path gives Default().
func Load(path string) (*Config, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks values; each error names the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...)))
	}
	for key, p := range map[string]string{"host.root": c.Host.Root, "host.driverRoot": c.Host.DriverRoot,
		"host.devRoot": c.Host.DevRoot, "host.procRoot": c.Host.ProcRoot, "injection.hookPath": c.Injection.HookPath,
		"injection.ldconfigPath": c.Injection.LdconfigPath} {
		if !filepath.IsAbs(p) {
			bad(key, "must be an absolute path, got %q", p)
		}
	}
	for key, p := range map[string]string{"dra.kubeletRegistryDir": c.DRA.KubeletRegistryDir,
		"dra.pluginDir": c.DRA.PluginDir, "dra.cdiSpecDir": c.DRA.CDISpecDir} {
		if c.DRA.Enabled && !filepath.IsAbs(p) {
			bad(key, "must be an absolute path when dra.enabled, got %q", p)
		}
	}
	if c.DRA.Enabled && !validDriverName(c.DRA.DriverName) {
		bad("dra.driverName", "must be a lower-case DNS subdomain with at least one dot (e.g. gpu.gpu-nri.io), got %q", c.DRA.DriverName)
	}
	if d := c.Injection.CDIOwnSpecDir; d != "" && !filepath.IsAbs(d) {
		bad("injection.cdiOwnSpecDir", "must be empty or an absolute path, got %q", d)
	}
	if len(c.Plugin.Index) != 2 || c.Plugin.Index[0] < '0' || c.Plugin.Index[0] > '9' || c.Plugin.Index[1] < '0' || c.Plugin.Index[1] > '9' {
		bad("plugin.index", "must be two digits, got %q", c.Plugin.Index)
	}
	if c.Plugin.Name == "" {
		bad("plugin.name", "must not be empty")
	}
	if c.Host.RefreshInterval < 0 {
		bad("host.refreshInterval", "must be 0s (no polling) or positive, got %s", c.Host.RefreshInterval.Std())
	}
	if c.Plugin.ReconnectMin <= 0 {
		bad("plugin.reconnectMin", "must be positive (0 would reconnect in a busy loop), got %s", c.Plugin.ReconnectMin.Std())
	}
	if c.Plugin.ReconnectMax < c.Plugin.ReconnectMin {
		bad("plugin.reconnectMax", "must be at least plugin.reconnectMin (%s), got %s", c.Plugin.ReconnectMin.Std(), c.Plugin.ReconnectMax.Std())
	}
	if c.Plugin.SyncTimeout <= 0 {
		bad("plugin.syncTimeout", "must be positive, got %s", c.Plugin.SyncTimeout.Std())
	}
	if !slices.Contains(Loaders(), c.Injection.Loader) {
		bad("injection.loader", "must be one of %s, got %q", joined(Loaders()), c.Injection.Loader)
	}
	if d := c.Injection.LibraryDir; d != "" && (!path.IsAbs(d) || path.Clean(d) != d || d == "/") {
		bad("injection.libraryDir", "must be a clean absolute path other than /, got %q", d)
	}
	if _, err := hookproto.ParseLayout(string(c.Injection.HooklessLayout)); err != nil {
		bad("injection.hooklessLayout", "%v", err)
	}
	if !slices.Contains(CgroupRuleModes(), c.Injection.DeviceCgroupRules) {
		bad("injection.deviceCgroupRules", "must be one of %s, got %q", joined(CgroupRuleModes()), c.Injection.DeviceCgroupRules)
	}
	switch c.Requirements.Unverifiable {
	case "refuse", "allow":
	default:
		bad("requirements.unverifiable", "must be refuse or allow, got %q", c.Requirements.Unverifiable)
	}
	switch c.Requirements.ComputeNotReady {
	case "refuse", "allow":
	default:
		bad("requirements.computeNotReady", "must be refuse or allow, got %q", c.Requirements.ComputeNotReady)
	}
	all := AllCapabilities()
	for _, list := range []struct {
		key  string
		caps []string
	}{{"injection.defaultCapabilities", c.Injection.DefaultCapabilities}, {"injection.supportedCapabilities", c.Injection.SupportedCapabilities}} {
		for _, k := range list.caps {
			if !Capability(k).Valid() {
				bad(list.key, "unknown capability %q (known: %s)", k, joined(all[:]))
			}
		}
	}
	for _, err := range c.Policy.problems() {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	if c.Policy.Profile != "" && !slices.Contains(Profiles(), c.Policy.Profile) {
		bad("policy.profile", "unknown profile %q (known: %s)", c.Policy.Profile, strings.Join(Profiles(), ", "))
	}
	if c.Policy.Profile == ProfileCustom && len(c.Policy.Sources) == 0 {
		bad("policy.sources", "profile %q starts from no rule, so with no source listed every GPU request would be refused: list the sources to honour", ProfileCustom)
	}
	if c.Injection.HookTimeout <= 0 {
		bad("injection.hookTimeout", "must be > 0, got %d", c.Injection.HookTimeout)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

// Validate checks the policy: every source is one of Sources() and every
// namespace pattern (allowNamespaces, denyNamespaces, managementNamespaces)
// is a valid path.Match glob. Each error names its key, e.g.
// policy.sources.env.allowNamespaces[0]. Config.Validate and policy.Compile
// both use it, so a policy file and a compiled policy agree on what is valid.
func (p Policy) Validate() error { return errors.Join(p.problems()...) }

func (p Policy) problems() []error {
	var errs []error
	globs := func(key string, list []string) {
		for i, g := range list {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: bad glob %q: %w", key, i, g, err))
			}
		}
	}
	srcs := slices.Sorted(maps.Keys(p.Sources))
	for _, s := range srcs {
		if !slices.Contains(Sources(), s) {
			errs = append(errs, fmt.Errorf("policy.sources: unknown source %q (known: %s)", s, strings.Join(Sources(), ", ")))
			continue
		}
		r := p.Sources[s]
		globs("policy.sources."+s+".allowNamespaces", r.AllowNamespaces)
		globs("policy.sources."+s+".denyNamespaces", r.DenyNamespaces)
	}
	globs("policy.managementNamespaces", p.ManagementNamespaces)
	return errs
}

// validDriverName reports whether n is a lower-case DNS subdomain of at
// most 63 characters with at least two labels (a DRA driver name; it is
// also the vendor part of the claims' CDI kind).
func validDriverName(n string) bool {
	if len(n) == 0 || len(n) > 63 || !strings.Contains(n, ".") {
		return false
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// View returns where the plugin reads the host path p.
func (h Host) View(p string) string { return filepath.Join(h.Root, p) }
