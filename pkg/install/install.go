package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/deploy"
	"github.com/gpu-nri/gpu-nri/internal/fsutil"
)

// Mode says what is installed beside the binary and the configuration.
type Mode string

// Modes.
const (
	// External installs the systemd unit that runs `gpu-nri run`.
	External Mode = "external"
	// PreRegistered installs the runtime's plugin layout: the runtime starts gpu-nri itself.
	PreRegistered Mode = "pre-registered"
	// Hook installs only the binary and the hook binary (for the Kubernetes
	// init container); nothing is recorded.
	Hook Mode = "hook"
)

// Host paths.
const (
	DefaultBinDir = "/usr/local/bin"
	ConfigPath    = "/etc/gpu-nri/config.yaml"
	UnitPath      = "/etc/systemd/system/gpu-nri.service"
	// DropInPath is the unit's drop-in when the configuration sets
	// injection.libraryDir (deploy.SystemdLibraryDirDropIn).
	DropInPath      = "/etc/systemd/system/gpu-nri.service.d/library-dir.conf"
	PluginDir       = "/opt/nri/plugins"
	PluginConfigDir = "/etc/nri/conf.d"
	ManifestPath    = "/var/lib/gpu-nri/install.json"
	// HookName is the file name of the hook-only binary in the bin dir.
	HookName = "gpu-nri-hook"
	// defaultBinPath is the binary's path in deploy.SystemdUnit.
	defaultBinPath = "/usr/local/bin/gpu-nri"
	// hostConfigHookLine is the hookPath line of deploy.HostConfig.
	hostConfigHookLine = "hookPath: /usr/local/bin/gpu-nri-hook\n"
)

// options say what to install where.
type options struct {
	// root is where the host's "/" is (default "/").
	root string
	// mode is External, PreRegistered or Hook (default External).
	mode Mode
	// binary is the gpu-nri binary to install (Install's argument).
	binary string
	// hookBinary is the gpu-nri-hook binary to install beside it ("": none).
	hookBinary string
	// config is the configuration to install. When nil, an existing
	// configuration file is kept, and deploy.HostConfig is installed where
	// none exists.
	config []byte
	// index is the pre-registered plugin's two-digit index (default "10").
	index string
	// binDir is the host directory of the binary (default /usr/local/bin).
	// The unit and the default configuration's hookPath follow it.
	binDir string
	// dryRun computes the changes without making them.
	dryRun bool
}

// Option configures Install and Uninstall. An option given a value it
// cannot take returns an error naming the value.
type Option func(*options) error

// WithRoot says where the host's "/" is (default "/"): install into an image
// or a test tree. A relative directory is made absolute; Install and
// Uninstall check that it exists.
func WithRoot(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("install: root must not be empty")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("install: root %q: %w", dir, err)
		}
		o.root = abs
		return nil
	}
}

// WithMode says what is installed beside the binary and the configuration
// (default External).
func WithMode(m Mode) Option {
	return func(o *options) error {
		switch m {
		case External, PreRegistered, Hook:
		default:
			return fmt.Errorf("install: mode must be %s, %s or %s, got %q", External, PreRegistered, Hook, m)
		}
		o.mode = m
		return nil
	}
}

// WithConfig installs data as the configuration (it must be a valid gpu-nri
// configuration; Install checks). Without it, an existing configuration file
// is kept, and deploy.HostConfig is installed where none exists.
func WithConfig(data []byte) Option {
	return func(o *options) error {
		if data == nil {
			return errors.New("install: WithConfig: no configuration")
		}
		o.config = data
		return nil
	}
}

// WithIndex sets the pre-registered plugin's two-digit index (default "10").
func WithIndex(index string) Option {
	return func(o *options) error {
		if len(index) != 2 || index[0] < '0' || index[0] > '9' || index[1] < '0' || index[1] > '9' {
			return fmt.Errorf("install: index must be two digits, got %q", index)
		}
		o.index = index
		return nil
	}
}

// WithBinDir sets the host directory of the binary (default
// /usr/local/bin). The unit and the default configuration's hookPath follow
// it.
func WithBinDir(dir string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("install: bin dir must be an absolute host path, got %q", dir)
		}
		o.binDir = dir
		return nil
	}
}

// WithHookBinary installs the hook-only gpu-nri-hook binary at path as
// <binDir>/gpu-nri-hook, and the default configuration's hookPath names it.
// Without it, hookPath names the gpu-nri binary itself (it starts several
// times slower; see docs/hook.md) and Result.Notes says so.
func WithHookBinary(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("install: WithHookBinary: no path")
		}
		o.hookBinary = path
		return nil
	}
}

// WithDryRun computes the changes without making them when dry is true.
func WithDryRun(dry bool) Option {
	return func(o *options) error {
		o.dryRun = dry
		return nil
	}
}

// newOptions applies opts over the defaults and checks the root.
func newOptions(opts []Option) (*options, error) {
	o := &options{root: "/", mode: External, index: "10", binDir: DefaultBinDir}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if st, err := os.Stat(o.root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("install: root %s is not an existing directory", o.root)
	}
	return o, nil
}

// Action is what happened (or would happen) to one path.
type Action string

// Actions.
const (
	Create Action = "create"
	Update Action = "update"
	Remove Action = "remove"
	Keep   Action = "keep" // left in place on purpose; Reason says why
)

// Change is one path touched (or deliberately not touched).
type Change struct {
	Action Action
	// Path is the full path (under Root).
	Path string
	// Reason explains a Keep.
	Reason string
}

func (c Change) String() string {
	if c.Reason != "" {
		return fmt.Sprintf("%s %s (%s)", c.Action, c.Path, c.Reason)
	}
	return fmt.Sprintf("%s %s", c.Action, c.Path)
}

// Result lists the changes in the order they were (or would be) made.
type Result struct {
	Changes []Change
	// Unit, Binary and Config report whether the unit file, the binary or a
	// configuration file (config.yaml or the conf.d file) was created or
	// updated: the command restarts services accordingly.
	Unit, Binary, Config bool
	// HookPath is the host path of the binary the default configuration
	// names as the hook: <binDir>/gpu-nri-hook, or <binDir>/gpu-nri when no
	// hook binary was given.
	HookPath string
	// Notes are things the caller should tell the user.
	Notes []string
}

// Changed says whether anything was (or would be) created, updated or removed.
func (r *Result) Changed() bool {
	for _, c := range r.Changes {
		if c.Action != Keep {
			return true
		}
	}
	return false
}

// manifest is the record of one installation.
type manifest struct {
	Mode  Mode            `json:"mode"`
	Files []manifestEntry `json:"files"`
	// Dirs are host directories the installation created.
	Dirs []string `json:"dirs,omitempty"`
}

type manifestEntry struct {
	Path   string `json:"path"` // host path
	SHA256 string `json:"sha256"`
}

type file struct {
	path    string // host path
	content []byte
	mode    fs.FileMode
	kind    string // "binary", "config", "unit"
}

func (o *options) full(hostPath string) string { return filepath.Join(o.root, hostPath) }

// Install puts the gpu-nri binary at binary (e.g. "/proc/self/exe") in
// place, with what opts ask for. See the package documentation.
func Install(binary string, opts ...Option) (*Result, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if binary == "" {
		return nil, errors.New("install: no binary given")
	}
	o.binary = binary
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return nil, fmt.Errorf("install: reading the binary: %w", err)
	}
	binPath := filepath.Join(o.binDir, "gpu-nri")
	want := []file{{path: binPath, content: bin, mode: 0o755, kind: "binary"}}
	res := &Result{HookPath: binPath}
	if o.hookBinary != "" {
		hook, err := os.ReadFile(o.hookBinary)
		if err != nil {
			return nil, fmt.Errorf("install: reading the hook binary: %w", err)
		}
		res.HookPath = filepath.Join(o.binDir, HookName)
		want = append(want, file{path: res.HookPath, content: hook, mode: 0o755, kind: "binary"})
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("no %s binary given: the default injection.hookPath is %s, the full gpu-nri binary, which starts several times slower as the createContainer hook (see docs/hook.md)", HookName, binPath))
	}
	if o.mode == Hook {
		if err := o.apply(res, want, nil); err != nil {
			return res, err
		}
		return res, nil
	}

	old, err := o.readManifest()
	if err != nil {
		return nil, err
	}
	cfg := o.config
	keepConfig := false
	if cfg == nil {
		if existing, err := os.ReadFile(o.full(ConfigPath)); err == nil {
			cfg, keepConfig = existing, true
			// An untouched default (as installed, naming gpu-nri or
			// gpu-nri-hook) follows whether there is a hook binary now.
			untouched := old != nil && old.hasSum(ConfigPath, sum(existing))
			if untouched && (bytes.Equal(existing, hostConfig(binPath)) || bytes.Equal(existing, hostConfig(filepath.Join(o.binDir, HookName)))) {
				cfg = hostConfig(res.HookPath)
			}
		} else {
			cfg = hostConfig(res.HookPath)
		}
	}
	parsed, err := config.Parse(cfg)
	if err != nil {
		return nil, fmt.Errorf("install: the configuration to install is not valid: %w", err)
	}
	if keepConfig && (old == nil || !old.has(ConfigPath)) {
		res.Changes = append(res.Changes, Change{Action: Keep, Path: o.full(ConfigPath), Reason: "existing configuration, not installed by gpu-nri; pass --config to replace it"})
	} else {
		want = append(want, file{path: ConfigPath, content: cfg, mode: 0o644, kind: "config"})
	}
	switch o.mode {
	case External:
		unit := bytes.ReplaceAll(deploy.SystemdUnit, []byte(defaultBinPath), []byte(binPath))
		want = append(want, file{path: UnitPath, content: unit, mode: 0o644, kind: "unit"})
		if parsed.Injection.LibraryDir != "" { // the unit's own mount namespace would keep the directories from the runtime
			want = append(want, file{path: DropInPath, content: deploy.SystemdLibraryDirDropIn, mode: 0o644, kind: "unit"})
		}
	case PreRegistered:
		name := o.index + "-gpu-nri"
		want = append(want,
			file{path: filepath.Join(PluginDir, name), content: bin, mode: 0o755, kind: "binary"},
			file{path: filepath.Join(PluginConfigDir, name+".conf"), content: cfg, mode: 0o644, kind: "config"})
	}
	return res, o.apply(res, want, old)
}

// apply writes want, removes what the old manifest lists and want does not,
// and records the new manifest (old == nil and mode Hook: no record).
func (o *options) apply(res *Result, want []file, old *manifest) error {
	var created []string
	next := &manifest{Mode: o.mode}
	if old != nil {
		next.Dirs = append(next.Dirs, old.Dirs...)
	}
	for _, f := range want {
		act, err := o.compare(f)
		if err != nil {
			return err
		}
		next.Files = append(next.Files, manifestEntry{Path: f.path, SHA256: sum(f.content)})
		if act == "" {
			continue
		}
		res.Changes = append(res.Changes, Change{Action: act, Path: o.full(f.path)})
		switch f.kind {
		case "unit":
			res.Unit = true
		case "binary":
			res.Binary = true
		case "config":
			res.Config = true
		}
		if o.dryRun {
			continue
		}
		dirs, err := o.mkdirs(filepath.Dir(f.path))
		if err != nil {
			return err
		}
		created = append(created, dirs...)
		if err := writeAtomic(o.full(f.path), f.content, f.mode); err != nil {
			return err
		}
	}
	if o.mode == Hook {
		return nil
	}
	// Files of an earlier installation that are no longer wanted (another mode or index).
	if old != nil {
		wanted := map[string]bool{}
		for _, f := range want {
			wanted[f.path] = true
		}
		for _, e := range old.Files {
			if !wanted[e.Path] {
				if err := o.removeFile(res, e); err != nil {
					return err
				}
			}
		}
	}
	// Record the installation.
	for _, d := range created {
		if !contains(next.Dirs, d) {
			next.Dirs = append(next.Dirs, d)
		}
	}
	if !o.dryRun {
		dirs, err := o.mkdirs(filepath.Dir(ManifestPath))
		if err != nil {
			return err
		}
		for _, d := range dirs {
			if !contains(next.Dirs, d) {
				next.Dirs = append(next.Dirs, d)
			}
		}
	} else {
		for _, d := range o.missingDirs(filepath.Dir(ManifestPath)) {
			if !contains(next.Dirs, d) {
				next.Dirs = append(next.Dirs, d)
			}
		}
	}
	sort.Strings(next.Dirs)
	data, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	data = append(data, '\n')
	mf := file{path: ManifestPath, content: data, mode: 0o644}
	act, err := o.compare(mf)
	if err != nil {
		return err
	}
	if act == "" {
		return nil
	}
	res.Changes = append(res.Changes, Change{Action: act, Path: o.full(ManifestPath)})
	if o.dryRun {
		return nil
	}
	return writeAtomic(o.full(ManifestPath), data, 0o644)
}

// compare says what writing f would do: "" when the file is already right.
func (o *options) compare(f file) (Action, error) {
	p := o.full(f.path)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Create, nil
	}
	if err != nil {
		return "", fmt.Errorf("install: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Update, nil
	}
	cur, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("install: %w", err)
	}
	if bytes.Equal(cur, f.content) && st.Mode().Perm() == f.mode {
		return "", nil
	}
	return Update, nil
}

// mkdirs creates the host directory dir and its missing parents, returning
// the host paths it created, outermost first.
func (o *options) mkdirs(dir string) ([]string, error) {
	missing := o.missingDirs(dir)
	for _, d := range missing {
		if err := os.Mkdir(o.full(d), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("install: %w", err)
		}
	}
	return missing, nil
}

func (o *options) missingDirs(dir string) []string {
	var missing []string
	for d := filepath.Clean(dir); d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Lstat(o.full(d)); err == nil {
			break
		}
		missing = append([]string{d}, missing...)
	}
	return missing
}

// writeAtomic writes data to a temporary file beside path and renames it
// over path (fsutil.WriteFileAtomic).
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	if err := fsutil.WriteFileAtomic(path, data, mode); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// Uninstall removes what Install recorded. See the package documentation.
func Uninstall(opts ...Option) (*Result, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	old, err := o.readManifest()
	if err != nil {
		return nil, err
	}
	if old == nil {
		return res, nil
	}
	res.Unit = old.has(UnitPath)
	for _, e := range old.Files {
		if err := o.removeFile(res, e); err != nil {
			return res, err
		}
	}
	if !o.dryRun {
		if err := os.Remove(o.full(ManifestPath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("uninstall: %w", err)
		}
	}
	res.Changes = append(res.Changes, Change{Action: Remove, Path: o.full(ManifestPath)})
	// Created directories, deepest first, when empty.
	dirs := append([]string(nil), old.Dirs...)
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		p := o.full(d)
		if o.dryRun {
			if o.wouldBeEmpty(p, old) {
				res.Changes = append(res.Changes, Change{Action: Remove, Path: p})
			}
			continue
		}
		if err := os.Remove(p); err == nil {
			res.Changes = append(res.Changes, Change{Action: Remove, Path: p})
		}
	}
	return res, nil
}

// wouldBeEmpty says whether dir holds only files and directories the
// installation recorded (for --dry-run).
func (o *options) wouldBeEmpty(dir string, m *manifest) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		ours := p == o.full(ManifestPath)
		for _, f := range m.Files {
			ours = ours || o.full(f.Path) == p
		}
		for _, d := range m.Dirs {
			ours = ours || (o.full(d) == p && o.wouldBeEmpty(p, m))
		}
		if !ours {
			return false
		}
	}
	return true
}

func (o *options) removeFile(res *Result, e manifestEntry) error {
	p := o.full(e.Path)
	cur, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	if sum(cur) != e.SHA256 {
		res.Changes = append(res.Changes, Change{Action: Keep, Path: p, Reason: "changed since gpu-nri installed it"})
		return nil
	}
	res.Changes = append(res.Changes, Change{Action: Remove, Path: p})
	if e.Path == UnitPath {
		res.Unit = true
	}
	if o.dryRun {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("uninstall: %w", err)
	}
	return nil
}

func (o *options) readManifest() (*manifest, error) {
	data, err := os.ReadFile(o.full(ManifestPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	m := &manifest{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("install: %s: %w", o.full(ManifestPath), err)
	}
	for _, e := range m.Files {
		if !filepath.IsAbs(e.Path) || strings.Contains(e.Path, "..") {
			return nil, fmt.Errorf("install: %s: bad path %q", o.full(ManifestPath), e.Path)
		}
	}
	return m, nil
}

// hasSum says whether the manifest records hostPath with the SHA-256 sum.
func (m *manifest) hasSum(hostPath, sum string) bool {
	for _, e := range m.Files {
		if e.Path == hostPath && e.SHA256 == sum {
			return true
		}
	}
	return false
}

// hostConfig is deploy.HostConfig with injection.hookPath set to hookPath.
func hostConfig(hookPath string) []byte {
	return bytes.Replace(deploy.HostConfig, []byte(hostConfigHookLine), []byte("hookPath: "+hookPath+"\n"), 1)
}

func (m *manifest) has(hostPath string) bool {
	for _, e := range m.Files {
		if e.Path == hostPath {
			return true
		}
	}
	return false
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
