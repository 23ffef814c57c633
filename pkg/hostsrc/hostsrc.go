package hostsrc

import (
	"errors"
	"fmt"
	"time"

	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/edits"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/nvmlfacts"
)

// MinRediscoverInterval is how often RefreshIfStale may rediscover the host
// (a request naming an unknown device triggers it; a burst of such requests
// must not turn into a burst of discoveries).
const MinRediscoverInterval = 2 * time.Second

// Option configures how a Host reads the host.
type Option func(*options) error

type options struct {
	stater      inventory.NodeStater
	facts       func(*inventory.Inventory) error
	noFacts     bool
	autoRefresh bool
	libdirs     LibraryDirs
}

// WithNodeStater reads device nodes with s instead of stat(2) (fixture
// trees that cannot mknod).
func WithNodeStater(s inventory.NodeStater) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("hostsrc: WithNodeStater: nil stater")
		}
		o.stater = s
		return nil
	}
}

// WithGPUFacts fills the CUDA version, brands and architectures with f
// instead of NVML or nvidia-smi.
func WithGPUFacts(f func(*inventory.Inventory) error) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("hostsrc: WithGPUFacts: nil function")
		}
		o.facts = f
		return nil
	}
}

// WithoutFacts asks neither NVML nor nvidia-smi (requirements on brand,
// architecture or CUDA version are then unverifiable, and MIG devices have
// no UUID: only their "<gpu>:<mig>" index names them).
func WithoutFacts() Option {
	return func(o *options) error { o.noFacts = true; return nil }
}

// LibraryDirs answers Host.LibraryDir: pkg/libdir's Manager in the daemon
// (no I/O), a lookup of the directories on disk in one-shot tools.
type LibraryDirs interface {
	LibraryDir(inv *inventory.Inventory, caps []inventory.Capability) *edits.BuiltDir
}

// WithLibraryDirs serves the library directories of d (none without it).
func WithLibraryDirs(d LibraryDirs) Option {
	return func(o *options) error {
		if d == nil {
			return errors.New("hostsrc: WithLibraryDirs: nil")
		}
		o.libdirs = d
		return nil
	}
}

// WithCDIAutoRefresh keeps the CDI cache current as spec files change (the
// daemon); one-shot tools read the specs once.
func WithCDIAutoRefresh() Option {
	return func(o *options) error { o.autoRefresh = true; return nil }
}

func build(opts []Option) (options, error) {
	var o options
	for _, f := range opts {
		if err := f(&o); err != nil {
			return o, err
		}
	}
	if o.stater == nil {
		o.stater = inventory.StatNodeStater()
	}
	return o, nil
}

// InventoryOptions are the discovery options of a Host for cfg: device
// nodes, the MPS pipe directory and the driver's own facts.
func InventoryOptions(cfg *config.Config, opts ...Option) ([]inventory.Option, error) {
	o, err := build(opts)
	if err != nil {
		return nil, err
	}
	return o.inventory(cfg), nil
}

func (o *options) inventory(cfg *config.Config) []inventory.Option {
	out := []inventory.Option{inventory.WithMPSPipeDirectory(cfg.Injection.MPSPipeDirectory), inventory.WithNodeStater(o.stater)}
	switch {
	case o.facts != nil:
		out = append(out, inventory.WithGPUFacts(o.facts))
	case !o.noFacts:
		driverRoot := cfg.Host.View(cfg.Host.DriverRoot)
		out = append(out, inventory.WithGPUFacts(func(inv *inventory.Inventory) error {
			return nvmlfacts.Fill(inv, driverRoot)
		}))
	}
	return out
}

// Host is one configuration's view of the real host.
type Host struct {
	view    func(string) string
	stater  inventory.NodeStater
	watcher *inventory.Watcher
	cdi     *cdiapi.Cache
	cdiErr  error
	libdirs LibraryDirs
}

var _ engine.Host = (*Host)(nil)

// Open discovers the host cfg names and loads its CDI specs. A host without
// a driver is not an error (Inventory is nil, Err says why); other
// discovery errors are.
func Open(cfg *config.Config, opts ...Option) (*Host, error) {
	o, err := build(opts)
	if err != nil {
		return nil, err
	}
	w, err := inventory.NewWatcher(cfg.Host, o.inventory(cfg)...)
	if err != nil {
		return nil, fmt.Errorf("hostsrc: inventory: %w", err)
	}
	h := &Host{view: cfg.Host.View, stater: o.stater, watcher: w, libdirs: o.libdirs}
	if len(cfg.Injection.CDISpecDirs) > 0 {
		dirs := make([]string, len(cfg.Injection.CDISpecDirs))
		for i, d := range cfg.Injection.CDISpecDirs {
			dirs[i] = cfg.Host.View(d)
		}
		h.cdi, h.cdiErr = cdiapi.NewCache(cdiapi.WithSpecDirs(dirs...), cdiapi.WithAutoRefresh(o.autoRefresh))
	}
	return h, nil
}

// Inventory returns the current inventory (nil: no usable driver, see Err).
func (h *Host) Inventory() *inventory.Inventory { return h.watcher.Current() }

// Err says why Inventory is nil.
func (h *Host) Err() error { return h.watcher.Err() }

// Watcher is the inventory watcher, for callers that poll (Watcher().Run).
func (h *Host) Watcher() *inventory.Watcher { return h.watcher }

// CDIErr reports the CDI specs that could not be loaded (nil when all were).
func (h *Host) CDIErr() error { return h.cdiErr }

// RefreshIfStale rediscovers the host unless it was discovered less than
// MinRediscoverInterval ago; changed reports a new inventory.
func (h *Host) RefreshIfStale() (bool, error) {
	return h.watcher.RefreshIfStale(MinRediscoverInterval)
}

// CDIDevice returns the third-party CDI device of that qualified name, or
// nil (also when no spec directories are configured).
func (h *Host) CDIDevice(name string) *cdiapi.Device {
	if h.cdi == nil {
		return nil
	}
	return h.cdi.GetDevice(name)
}

// LibraryDir returns the library directory of caps for inv, nil without
// WithLibraryDirs.
func (h *Host) LibraryDir(inv *inventory.Inventory, caps []inventory.Capability) *edits.BuiltDir {
	if h.libdirs == nil {
		return nil
	}
	return h.libdirs.LibraryDir(inv, caps)
}

// StatNode describes the host device node at hostPath, read where the
// plugin sees the host.
func (h *Host) StatNode(hostPath string) (inventory.NodeInfo, error) {
	return h.stater.StatNode(h.view(hostPath))
}
