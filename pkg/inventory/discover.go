package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
)

// ErrNoDriver is returned (wrapped) by Discover when the host has no NVIDIA
// kernel driver loaded: <procRoot>/driver/nvidia/version does not exist.
var ErrNoDriver = errors.New("inventory: no NVIDIA driver loaded")

// Option configures Discover and NewWatcher.
type Option func(*options) error

type options struct {
	stater NodeStater
	facts  []func(*Inventory) error
	mpsDir string
}

// WithMPSPipeDirectory names the host path of the CUDA MPS pipe directory
// (injection.mpsPipeDirectory); Discover records it when it exists.
func WithMPSPipeDirectory(hostPath string) Option {
	return func(o *options) error {
		if hostPath != "" && !filepath.IsAbs(hostPath) {
			return fmt.Errorf("inventory: WithMPSPipeDirectory: %q is not absolute", hostPath)
		}
		o.mpsDir = hostPath
		return nil
	}
}

// WithNodeStater replaces the default stater (stat(2) of the node, which
// must be a character device) used to read device nodes.
func WithNodeStater(s NodeStater) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("inventory: WithNodeStater: nil stater")
		}
		o.stater = s
		return nil
	}
}

// WithGPUFacts adds a function that fills facts the host's files cannot give
// (NVML: Brand, Arch, CUDAVersion, MIG UUIDs) into the inventory Discover has
// just built, before its lookup indexes are made and before it is published.
// It may change fields and reorder MIG devices, but must keep GPUs in index
// order. An error it returns becomes a Warning (the inventory stays usable
// without those facts). Functions run in the order given.
func WithGPUFacts(f func(*Inventory) error) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("inventory: WithGPUFacts: nil function")
		}
		o.facts = append(o.facts, f)
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := options{stater: statStater{}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	return o, nil
}

// normalizeHost fills empty host paths with their defaults.
func normalizeHost(h config.Host) config.Host {
	def := func(p, d string) string {
		if p == "" {
			return d
		}
		return filepath.Clean(p)
	}
	h.Root = def(h.Root, "/")
	h.DriverRoot = def(h.DriverRoot, "/")
	h.DevRoot = def(h.DevRoot, "/dev")
	h.ProcRoot = def(h.ProcRoot, "/proc")
	return h
}

// discovery is the state of one Discover call.
type discovery struct {
	h   config.Host
	o   options
	inv *Inventory
	// majors are the character-device majors of <proc>/devices by name.
	majors map[string]int64
	// devNames lists <dev> (unsorted), nil when unreadable.
	devNames []string
	// procDevicesRead is false when <proc>/devices could not be read.
	procDevicesRead bool
}

// Discover reads the host through h and returns everything its NVIDIA driver
// offers. Missing optional pieces become Warnings. It fails with an error
// wrapping ErrNoDriver when no driver is loaded, and with an error naming the
// file when a file that must be understood (driver version, a GPU's
// information) cannot be read or parsed.
func Discover(h config.Host, opts ...Option) (*Inventory, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	h = normalizeHost(h)
	// The fingerprint is taken first: a change during discovery shows up as
	// a different fingerprint at the next check.
	fp, err := ComputeFingerprint(h)
	if err != nil {
		return nil, err
	}
	d := &discovery{h: h, o: o, inv: &Inventory{
		Fingerprint:  fp,
		IMEXChannels: map[int]DeviceNode{},
		Extra:        map[string][]DeviceNode{},
		ExtraFiles:   map[string][]File{},
		Libraries:    map[Capability][]File{},
		Binaries:     map[Capability][]File{},
		Sockets:      map[Capability][]File{},
		ConfigFiles:  map[Capability][]File{},
	}}
	if err := d.driverVersion(); err != nil {
		return nil, err
	}
	d.procDevices()
	if err := d.gpus(); err != nil {
		return nil, err
	}
	d.listDev()
	d.controlNodes()
	d.gpuNodes()
	d.dri()
	d.mig()
	d.imex()
	d.extra()
	d.extraFiles()
	others := d.libraries()
	d.computeProblems(others)
	d.binaries()
	d.firmware()
	d.sockets()
	d.configFiles()
	d.xorgModules()
	d.gbmBackend()
	for _, f := range o.facts {
		if err := f(d.inv); err != nil {
			d.inv.FactsErrors = append(d.inv.FactsErrors, err.Error())
			d.warnf("gpu facts: %v", err)
		}
	}
	return New(d.inv)
}

// view returns where the plugin reads the host path p.
func (d *discovery) view(p string) string { return d.h.View(p) }

// procPath is the host path of a file under the proc root.
func (d *discovery) procPath(elem ...string) string {
	return filepath.Join(append([]string{d.h.ProcRoot}, elem...)...)
}

// devPath is the host path of a file under the dev root.
func (d *discovery) devPath(elem ...string) string {
	return filepath.Join(append([]string{d.h.DevRoot}, elem...)...)
}

// skip records a driver file discovery left out and why; with warn, it is
// also a Warning ("library <path> ignored: <reason>").
func (d *discovery) skip(p, reason string, warn bool) {
	f := SkippedFile{Path: p, Reason: reason}
	d.inv.Skipped = append(d.inv.Skipped, f)
	if warn {
		d.warnf("library %s", f)
	}
}

func (d *discovery) warnf(format string, a ...any) {
	d.inv.Warnings = append(d.inv.Warnings, fmt.Sprintf(format, a...))
}

// driverVersion reads <proc>/driver/nvidia/version.
func (d *discovery) driverVersion() error {
	p := d.procPath("driver", "nvidia", "version")
	data, err := os.ReadFile(d.view(p))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist", ErrNoDriver, p)
	}
	if err != nil {
		return fmt.Errorf("inventory: read driver version: %w", err)
	}
	v, err := parseDriverVersion(string(data))
	if err != nil {
		return fmt.Errorf("inventory: %s: %w", p, err)
	}
	d.inv.DriverVersion = v
	return nil
}

// parseDriverVersion finds the version in the "NVRM version:" line, e.g.
// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb ..." or
// "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build ...".
func parseDriverVersion(s string) (string, error) {
	for line := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "NVRM version:")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			if isVersion(f) {
				return f, nil
			}
		}
		return "", fmt.Errorf("no version number in %q", strings.TrimSpace(line))
	}
	return "", errors.New(`no "NVRM version:" line`)
}

// isVersion reports whether s looks like "550.54.14" or "550.54": digits and
// at least one dot, no empty field.
func isVersion(s string) bool {
	fields := strings.Split(s, ".")
	if len(fields) < 2 {
		return false
	}
	for _, f := range fields {
		if f == "" {
			return false
		}
		for _, c := range f {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// procDevices reads the character-device majors of <proc>/devices.
func (d *discovery) procDevices() {
	p := d.procPath("devices")
	data, err := os.ReadFile(d.view(p))
	if err != nil {
		d.warnf("cannot read %s (device majors unverified): %v", p, err)
		d.majors = map[string]int64{}
		return
	}
	d.majors = parseProcDevices(string(data))
	d.procDevicesRead = true
}

// parseProcDevices returns the "Character devices:" section of /proc/devices
// as name -> major.
func parseProcDevices(s string) map[string]int64 {
	m := map[string]int64{}
	inChar := false
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasSuffix(line, ":"):
			inChar = line == "Character devices:"
			continue
		case !inChar:
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if n, ok := parseUint(f[0]); ok {
			m[f[1]] = int64(n)
		}
	}
	return m
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// listDev reads the names in <dev> once.
func (d *discovery) listDev() {
	names, err := readDirNames(d.view(d.h.DevRoot))
	if err != nil {
		d.warnf("cannot list %s: %v", d.h.DevRoot, err)
		return
	}
	d.devNames = names
}

// readDirNames lists a directory without sorting or stat-ing its entries.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return names, nil
}
