package engine

import (
	"errors"

	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/pkg/edits"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// Host is everything the engine knows of the host, injected by the caller:
// pkg/hostsrc reads the real host (NVML facts, CDI spec directories,
// stat(2)); Fixed serves one inventory as it is. The engine never reads the
// host itself.
type Host interface {
	// Inventory returns the current inventory, nil when the host has no
	// usable driver.
	Inventory() *inventory.Inventory
	// RefreshIfStale rediscovers the host unless that was done very
	// recently; changed reports whether Inventory now returns something
	// else. Decide calls it once when a request names a device the
	// inventory lacks, or finds no driver, and then decides again.
	RefreshIfStale() (changed bool, err error)
	// CDIDevice returns the third-party CDI device with this qualified
	// name, nil when no spec defines it.
	CDIDevice(name string) *cdiapi.Device
	// StatNode describes the host device node at hostPath (a host path, as
	// CDI specs write it), for CDI device nodes that omit major/minor. It
	// returns an error wrapping fs.ErrNotExist when there is none.
	StatNode(hostPath string) (inventory.NodeInfo, error)
	// LibraryDir returns the library directory built for
	// edits.PlanDir(inv, caps) (config injection.libraryDir), or nil when
	// there is none: the libraries are then mounted file by file. The
	// daemon's answer does no I/O and computes no plan (pkg/libdir).
	LibraryDir(inv *inventory.Inventory, caps []inventory.Capability) *edits.BuiltDir
}

// Fixed is a Host that serves inv (nil: no driver) as it is: no
// rediscovery, no third-party CDI devices, no node reads, no library
// directories. `gpu-nri cdi
// generate` decides for one inventory with it; tests build theirs with
// inventory.New.
func Fixed(inv *inventory.Inventory) Host { return fixed{inv} }

type fixed struct{ inv *inventory.Inventory }

func (f fixed) Inventory() *inventory.Inventory                                       { return f.inv }
func (fixed) RefreshIfStale() (bool, error)                                           { return false, nil }
func (fixed) CDIDevice(string) *cdiapi.Device                                         { return nil }
func (fixed) LibraryDir(*inventory.Inventory, []inventory.Capability) *edits.BuiltDir { return nil }
func (fixed) StatNode(string) (inventory.NodeInfo, error) {
	return inventory.NodeInfo{}, errors.New("no device node reader (a fixed inventory)")
}
