package inventory

import (
	"os"

	"github.com/gpu-nri/gpu-nri/config"
)

// Capability is an NVIDIA driver capability (NVIDIA_DRIVER_CAPABILITIES).
// It is config.Capability; config.AllCapabilities is the list of them.
type Capability = config.Capability

// The driver capabilities, under short names (the values are config's).
const (
	Compute  = config.CapabilityCompute
	Compat32 = config.CapabilityCompat32
	Graphics = config.CapabilityGraphics
	Utility  = config.CapabilityUtility
	Video    = config.CapabilityVideo
	Display  = config.CapabilityDisplay
	NGX      = config.CapabilityNGX
)

// DeviceNode is a character device as the runtime must create it.
type DeviceNode struct {
	// Path is the path inside the container, e.g. /dev/nvidia0.
	Path string
	// HostPath is the host path the runtime resolves.
	HostPath string
	// Type is "c" (every NVIDIA node is a character device).
	Type string
	// Major and Minor are the device numbers read from the host node.
	Major, Minor int64
	// FileMode holds the permission bits of the host node.
	FileMode os.FileMode
	// UID and GID own the host node.
	UID, GID uint32
}

// File is a driver file to bind-mount read-only.
type File struct {
	// HostPath is the host path of the file (symlinks resolved).
	HostPath string
	// Path is where it goes in the container (the path relative to the
	// driver root, e.g. /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14).
	Path string
	// SONAME is the ELF DT_SONAME of a shared library ("" for other files).
	SONAME string
	// Capability is the capability the file belongs to.
	Capability Capability
	// Lib32 marks a 32-bit library (the compat32 capability).
	Lib32 bool
	// BaseCapability is, for a 32-bit library (Capability compat32), the
	// capability its 64-bit counterpart belongs to (e.g. graphics for the
	// 32-bit libGLX_nvidia), so that compat32 can be combined with the other
	// requested capabilities. It equals Capability for every other file.
	BaseCapability Capability
}

// MIGDevice is a MIG compute instance on a GPU.
type MIGDevice struct {
	// GPU is the parent GPU's index.
	GPU int
	// Index is the MIG device's position on its GPU ("<gpu>:<index>").
	Index int
	// GI and CI are the GPU-instance and compute-instance ids.
	GI, CI int
	// UUID is "MIG-<uuid>" when the host reports one ("" otherwise).
	UUID string
	// Profile is the MIG profile name ("1g.10gb") when nvidia-smi reports
	// it ("" otherwise).
	Profile string
	// MemoryMiB is the MIG device's total memory in MiB when nvidia-smi
	// reports it (0 unknown).
	MemoryMiB int64
	// Caps are the GPU-instance and compute-instance access nodes
	// (/dev/nvidia-caps/nvidia-capN).
	Caps []DeviceNode
}

// GPU is one physical GPU.
type GPU struct {
	// Index is the GPU's enumeration index (ordered by PCI bus id, as nvidia-smi).
	Index int
	// Minor is the minor number of /dev/nvidiaN.
	Minor int
	// UUID is "GPU-<uuid>".
	UUID string
	// PCIBusID is the lower-case domain:bus:device.function, e.g. 0000:3b:00.0.
	PCIBusID string
	// Model is the model name ("NVIDIA H200").
	Model string
	// Brand and Arch (compute capability "9.0") are filled from NVML when
	// available; empty otherwise.
	Brand, Arch string
	// MemoryMiB is the GPU's total framebuffer memory in MiB, filled from
	// NVML or nvidia-smi when available (0 unknown).
	MemoryMiB int64
	// Node is /dev/nvidiaN.
	Node DeviceNode
	// DRI are the GPU's /dev/dri/card* and renderD* nodes.
	DRI []DeviceNode
	// MIG lists the GPU's MIG devices (empty when MIG is off).
	MIG []MIGDevice
}

// Inventory is everything the host's driver offers, as host paths.
// An Inventory is immutable once built; share it freely.
type Inventory struct {
	// DriverVersion is e.g. "550.54.14".
	DriverVersion string
	// CUDAVersion is the CUDA driver API version, e.g. "12.4" ("" unknown).
	CUDAVersion string
	// GPUs in index order.
	GPUs []GPU
	// Control nodes: nvidiactl (always), nvidia-uvm and nvidia-uvm-tools
	// (compute), nvidia-modeset (display). Nil when absent on the host.
	Ctl, UVM, UVMTools, Modeset *DeviceNode
	// MIGConfig and MIGMonitor are the /dev/nvidia-caps nodes that grant
	// MIG configuration and monitoring.
	MIGConfig, MIGMonitor *DeviceNode
	// IMEXChannels are /dev/nvidia-caps-imex-channels/channelN by N.
	IMEXChannels map[int]DeviceNode
	// Extra device groups: "gds" (/dev/nvidia-fs*), "mofed"
	// (/dev/infiniband/...), "nvswitch", "gdrcopy".
	Extra map[string][]DeviceNode
	// ExtraFiles are host files that go with an extra device group: "gds"
	// (/run/udev, /etc/cufile.json), each only when present on the host.
	ExtraFiles map[string][]File
	// MPSPipeDir is the host's CUDA MPS pipe directory (compute), nil when the
	// host has none (see WithMPSPipeDirectory).
	MPSPipeDir *File
	// Libraries by capability (compat32 holds the 32-bit ones).
	Libraries map[Capability][]File
	// Binaries by capability.
	Binaries map[Capability][]File
	// Firmware files (always injected).
	Firmware []File
	// Sockets by capability (persistenced, fabricmanager: utility).
	Sockets map[Capability][]File
	// ConfigFiles by capability (graphics/display: glvnd, vulkan, egl...;
	// compute: OpenCL icd), and the other plain files mounted where they
	// were found (display: the X.Org driver modules).
	ConfigFiles map[Capability][]File
	// Warnings are non-fatal findings from discovery (missing pieces).
	Warnings []string
	// ComputeProblems are the reasons CUDA cannot run in a container here
	// (nvidia-uvm not loaded; libraries of another driver version than the
	// loaded kernel module), each with its fix; empty when it can. Computed
	// once by Discover; CheckCompute reads it per container.
	ComputeProblems []ComputeProblem
	// Skipped are the driver libraries discovery saw and left out, with the
	// reason: dangling links, unreadable or non-ELF files, other driver
	// versions (the serious ones are also Warnings).
	Skipped []SkippedFile
	// FactsErrors are the errors of the WithGPUFacts functions (nvidia-smi
	// or NVML could not run), also in Warnings; empty when every fact source
	// answered.
	FactsErrors []string
	// Fingerprint identifies the host state this inventory was built from;
	// a different fingerprint means the inventory must be rebuilt.
	Fingerprint string

	// Lookup indexes, built once by New (see lookup.go), which Discover
	// calls; a hand-built Inventory goes through New too.
	byUUID    map[string]int    // lower-case UUID after "GPU-" -> position in GPUs
	byPCI     map[pciAddr]int   // PCI address -> position in GPUs
	migByUUID map[string]migRef // lower-case UUID after "MIG-" -> position
}

// SkippedFile is a driver file discovery left out.
type SkippedFile struct {
	// Path is the path inside the driver root where it was seen.
	Path string
	// Reason says why it was left out.
	Reason string
}

// String is "<path> ignored: <reason>".
func (f SkippedFile) String() string { return f.Path + " ignored: " + f.Reason }

// NodeInfo is what discovery needs to know about a device node.
type NodeInfo struct {
	// IsChar is true for a character device.
	IsChar bool
	// IsBlock is true for a block device (never set together with IsChar;
	// both false for anything else).
	IsBlock bool
	// Major and Minor are the device numbers.
	Major, Minor int64
	// Perm holds the permission bits.
	Perm os.FileMode
	// UID and GID own the node.
	UID, GID uint32
}

// NodeStater reads device nodes. The real one stats the file; test fixtures
// that cannot mknod (not root) supply their own.
type NodeStater interface {
	// StatNode describes the device node at viewPath (a path where the
	// plugin reads the host). It returns an error wrapping fs.ErrNotExist
	// when there is no node.
	StatNode(viewPath string) (NodeInfo, error)
}
