package request

import (
	"fmt"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// Mount is a mount the runtime already placed in the container (CRI mounts,
// e.g. the device plugin's volume-mounts strategy).
type Mount struct {
	Source, Destination string
}

// Input is everything gpu-nri reads from a container create request, in a
// form independent of NRI so that `explain` can build it from CRI JSON.
type Input struct {
	// Namespace, Pod and Container name the container (for errors and policy).
	Namespace, Pod, Container string
	// Env is the container's environment as KEY=VALUE strings (later wins).
	Env []string
	// PodAnnotations are all of the pod's annotations.
	PodAnnotations map[string]string
	// Annotations are the container's own annotations.
	Annotations map[string]string
	// Mounts already in the container.
	Mounts []Mount
	// CDIDevices are CRI/NRI Container.CDIDevices names.
	CDIDevices []string
}

// Who returns "namespace/pod/container" for messages.
func (in *Input) Who() string { return fmt.Sprintf("%s/%s/%s", in.Namespace, in.Pod, in.Container) }

// DeviceKind says how a device list item names a device.
type DeviceKind int

// Device list item kinds.
const (
	KindIndex    DeviceKind = iota + 1 // "0"
	KindUUID                           // "GPU-<uuid>"
	KindPCI                            // "0000:3b:00.0"
	KindMIGUUID                        // "MIG-<uuid>" (or legacy MIG-GPU-<uuid>/<gi>/<ci>)
	KindMIGIndex                       // "<gpu>:<mig>"
	KindCDI                            // "vendor.com/class=name"
)

// Device is one syntactically valid, not yet resolved, device list item.
type Device struct {
	Kind DeviceKind
	// Raw is the item as written.
	Raw string
	// GPU and MIG are the indexes for KindIndex and KindMIGIndex.
	GPU, MIG int
	// ID is the normalized id for KindUUID, KindPCI, KindMIGUUID (canonical
	// upper-case prefix, lower-case hex) and the qualified name for KindCDI.
	ID string
}

// SourceRequest is what one request source asks for.
type SourceRequest struct {
	// Source is one of config.Source*.
	Source string
	// Where names the exact input, e.g. `env NVIDIA_VISIBLE_DEVICES` or
	// `annotation gpus.gpu-nri.io/container.main`.
	Where string
	// All is true for "all".
	All bool
	// None is true for "none": driver files and control nodes, no GPU.
	None bool
	// Devices are the items asked for (empty with All or None).
	Devices []Device
	// IMEXChannels are the IMEX channels the device plugin's volume mounts
	// (/var/run/nvidia-container-devices/imex/<ch>) ask for, sorted; only the
	// volume-mounts source sets it. NVIDIA_IMEX_CHANNELS is Request.IMEXChannels.
	IMEXChannels []int
}

// Request is the parsed request of one container. A container that asks for
// nothing gets a nil *Request from Parse.
type Request struct {
	// Sources that asked, in config.Sources order.
	Sources []SourceRequest
	// Capabilities, expanded ("all", video => compute, display => graphics),
	// deduplicated and sorted.
	Capabilities []inventory.Capability
	// CapabilitiesFrom names where Capabilities came from: `env
	// NVIDIA_DRIVER_CAPABILITIES`, `annotation capabilities.<domain>/...`,
	// the legacy CUDA image rule (every supported capability) or
	// `injection.defaultCapabilities`.
	CapabilitiesFrom string
	// Requirements are the NVIDIA_REQUIRE_* expressions, sorted by variable
	// name, plus the implicit "cuda>=X.Y" of legacy CUDA images.
	Requirements []Requirement
	// DisableRequire is NVIDIA_DISABLE_REQUIRE set to a value Go's
	// strconv.ParseBool reads as true (1, t, T, true, TRUE, True), as NVIDIA
	// reads it.
	DisableRequire bool
	// Legacy is true when the legacy CUDA image rule selected "all".
	Legacy bool
	// MIGConfig and MIGMonitor are NVIDIA_MIG_CONFIG_DEVICES / _MONITOR_DEVICES=all.
	MIGConfig, MIGMonitor bool
	// IMEXChannels are the channel ids NVIDIA_IMEX_CHANNELS asks for, sorted;
	// IMEXAll for "all".
	IMEXChannels []int
	IMEXAll      bool
	// Feature flags NVIDIA_GDS, NVIDIA_MOFED, NVIDIA_NVSWITCH, NVIDIA_GDRCOPY=enabled.
	GDS, MOFED, NVSwitch, GDRCopy bool
	// Warnings name untidy input that was accepted with its one obvious
	// meaning, as NVIDIA reads it (an empty item, a repeated id, "ALL"),
	// e.g. `NVIDIA_VISIBLE_DEVICES="0,": item 2 is empty: ignored`. The
	// engine copies them into its result (explain, the audit line).
	Warnings []string
}

// Extras names the feature flags that are on, by their inventory.Extra keys
// (gdrcopy, gds, mofed, nvswitch), sorted.
func (r *Request) Extras() []string {
	var out []string
	for _, e := range [...]struct {
		on   bool
		name string
	}{{r.GDRCopy, "gdrcopy"}, {r.GDS, "gds"}, {r.MOFED, "mofed"}, {r.NVSwitch, "nvswitch"}} {
		if e.on {
			out = append(out, e.name)
		}
	}
	return out
}

// Requirement is one NVIDIA_REQUIRE_* value.
type Requirement struct {
	// Name is the variable (NVIDIA_REQUIRE_CUDA) or "legacy CUDA_VERSION".
	Name string
	// Expr is the expression, e.g. "cuda>=12.4 brand=tesla,driver>=470".
	Expr string
}

// Error is a bad request: it names the container, the input and why.
type Error struct {
	Who    string // namespace/pod/container
	Input  string // e.g. NVIDIA_VISIBLE_DEVICES="0,x"
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("gpu-nri: container %s: %s: %s", e.Who, e.Input, e.Reason)
}
