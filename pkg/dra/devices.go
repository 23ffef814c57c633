package dra

import (
	"fmt"
	"strconv"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/dynamic-resource-allocation/resourceslice"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// Device types (the "type" attribute).
const (
	TypeGPU = "gpu"
	TypeMIG = "mig"
)

// Device is one published device and how the engine names it.
type Device struct {
	// API is the device as it goes into the ResourceSlice.
	API resourceapi.Device
	// ID names the device to engine.Grant: its UUID, or "<gpu>:<mig>" for
	// a MIG device whose UUID the driver did not report.
	ID string
	// UUID is the GPU or MIG UUID ("" when unknown).
	UUID string
}

// GPUName and MIGName are the device names in the ResourceSlice.
func GPUName(index int) string { return "gpu-" + strconv.Itoa(index) }

// MIGName names a MIG device by its GPU index and GPU/compute instance ids
// (stable across MIG device re-enumeration).
func MIGName(gpu, gi, ci int) string { return fmt.Sprintf("mig-%d-gi%d-ci%d", gpu, gi, ci) }

// Devices lists what inv offers a claim: every GPU with a usable device
// node and MIG off, and every MIG device of a MIG-enabled GPU. Attributes
// (unqualified names are in the driver's domain):
//
//	type (gpu|mig), uuid, index, minor, productName, brand, architecture,
//	cudaComputeCapability (version), driverVersion (version),
//	cudaDriverVersion (version), resource.kubernetes.io/pciBusID;
//	MIG devices also parentUUID, parentIndex, gi, ci and, when nvidia-smi
//	names it, migProfile ("1g.10gb").
//
// A GPU whose framebuffer size the driver reported has the capacity
// memory (bytes, e.g. 81559Mi); so has a MIG device whose memory
// nvidia-smi reported (its total in the "MIG devices:" table, e.g. 9984Mi).
func Devices(inv *inventory.Inventory) []Device {
	if inv == nil {
		return nil
	}
	var out []Device
	for i := range inv.GPUs {
		g := &inv.GPUs[i]
		if g.Node.HostPath == "" {
			continue
		}
		common := gpuAttributes(inv, g)
		if len(g.MIG) == 0 {
			attrs := copyAttrs(common)
			attrs["type"] = str(TypeGPU)
			attrs["uuid"] = str(g.UUID)
			attrs["index"] = integer(g.Index)
			attrs["minor"] = integer(g.Minor)
			api := resourceapi.Device{Name: GPUName(g.Index), Attributes: attrs, Capacity: memory(g.MemoryMiB)}
			out = append(out, Device{API: api, ID: g.UUID, UUID: g.UUID})
			continue
		}
		for _, m := range g.MIG {
			attrs := copyAttrs(common)
			attrs["type"] = str(TypeMIG)
			attrs["index"] = integer(m.Index)
			attrs["minor"] = integer(g.Minor)
			attrs["parentUUID"] = str(g.UUID)
			attrs["parentIndex"] = integer(g.Index)
			attrs["gi"] = integer(m.GI)
			attrs["ci"] = integer(m.CI)
			if m.Profile != "" {
				attrs["migProfile"] = str(m.Profile)
			}
			id := fmt.Sprintf("%d:%d", m.GPU, m.Index)
			if m.UUID != "" {
				attrs["uuid"] = str(m.UUID)
				id = m.UUID
			}
			out = append(out, Device{API: resourceapi.Device{Name: MIGName(g.Index, m.GI, m.CI), Attributes: attrs,
				Capacity: memory(m.MemoryMiB)}, ID: id, UUID: m.UUID})
		}
	}
	return out
}

// memory is the capacity of a device with mib MiB of memory: "memory" in
// bytes as a binary-SI quantity (9984 MiB is 9984Mi), the unit and format
// NVIDIA's DRA driver publishes; none when mib is unknown (0).
func memory(mib int64) map[resourceapi.QualifiedName]resourceapi.DeviceCapacity {
	if mib <= 0 {
		return nil
	}
	return map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{
		"memory": {Value: *resource.NewQuantity(mib<<20, resource.BinarySI)}}
}

// Resources is the driver's pool for inv on node (one slice; an empty pool
// when inv is nil, so nothing stale stays published).
func Resources(inv *inventory.Inventory, node string) resourceslice.DriverResources {
	devs := Devices(inv)
	api := make([]resourceapi.Device, 0, len(devs))
	for _, d := range devs {
		api = append(api, d.API)
	}
	return resourceslice.DriverResources{Pools: map[string]resourceslice.Pool{
		node: {Slices: []resourceslice.Slice{{Devices: api}}},
	}}
}

// gpuAttributes are the attributes a GPU and its MIG devices share.
func gpuAttributes(inv *inventory.Inventory, g *inventory.GPU) map[resourceapi.QualifiedName]resourceapi.DeviceAttribute {
	a := map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{}
	if g.Model != "" {
		a["productName"] = str(g.Model)
	}
	if g.Brand != "" {
		a["brand"] = str(g.Brand)
	}
	if v, ok := semver(g.Arch); ok {
		a["cudaComputeCapability"] = version(v)
		if name := architecture(g.Arch); name != "" {
			a["architecture"] = str(name)
		}
	}
	if v, ok := semver(inv.DriverVersion); ok {
		a["driverVersion"] = version(v)
	}
	if v, ok := semver(inv.CUDAVersion); ok {
		a["cudaDriverVersion"] = version(v)
	}
	if g.PCIBusID != "" {
		a["resource.kubernetes.io/pciBusID"] = str(g.PCIBusID)
	}
	return a
}

// architecture names the GPU architecture of a CUDA compute capability
// (NVIDIA's CUDA programming guide, "Compute Capabilities").
func architecture(cc string) string {
	major, minor, _ := strings.Cut(cc, ".")
	switch major {
	case "6":
		return "Pascal"
	case "7":
		if minor == "5" {
			return "Turing"
		}
		return "Volta"
	case "8":
		if minor == "9" {
			return "Ada Lovelace"
		}
		return "Ampere"
	case "9":
		return "Hopper"
	case "10", "12":
		return "Blackwell"
	}
	return ""
}

// semver turns a dotted version ("550.54.14", "535.261.03", "12.4", "9.0")
// into semantic-version form (three numeric parts, no leading zeros).
func semver(v string) (string, bool) {
	parts := strings.Split(strings.TrimSpace(v), ".")
	if v == "" || len(parts) > 3 {
		return "", false
	}
	nums := make([]string, 3)
	for i := range nums {
		nums[i] = "0"
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return "", false
		}
		nums[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(nums, "."), true
}

func copyAttrs(m map[resourceapi.QualifiedName]resourceapi.DeviceAttribute) map[resourceapi.QualifiedName]resourceapi.DeviceAttribute {
	out := make(map[resourceapi.QualifiedName]resourceapi.DeviceAttribute, len(m)+8)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func str(s string) resourceapi.DeviceAttribute { return resourceapi.DeviceAttribute{StringValue: &s} }

func integer(i int) resourceapi.DeviceAttribute {
	v := int64(i)
	return resourceapi.DeviceAttribute{IntValue: &v}
}

func version(s string) resourceapi.DeviceAttribute {
	return resourceapi.DeviceAttribute{VersionValue: &s}
}

// missing explains why device name is not among inv's devices.
func missing(inv *inventory.Inventory, name string) string {
	if inv == nil {
		return "the node has no NVIDIA driver inventory now"
	}
	var gpu, gi, ci int
	if n, err := fmt.Sscanf(name, "mig-%d-gi%d-ci%d", &gpu, &gi, &ci); err == nil && n == 3 {
		g, ok := inv.GPUByIndex(gpu)
		switch {
		case !ok:
			return fmt.Sprintf("GPU %d is no longer on this node (%d GPU(s) now)", gpu, len(inv.GPUs))
		case len(g.MIG) == 0:
			return fmt.Sprintf("GPU %d (%s) has left MIG mode: its MIG devices are gone", gpu, g.UUID)
		default:
			return fmt.Sprintf("GPU %d has no MIG device with GPU instance %d and compute instance %d now", gpu, gi, ci)
		}
	}
	if idx, ok := strings.CutPrefix(name, "gpu-"); ok {
		if i, err := strconv.Atoi(idx); err == nil {
			g, ok := inv.GPUByIndex(i)
			switch {
			case !ok:
				return fmt.Sprintf("GPU %d is no longer on this node (%d GPU(s) now)", i, len(inv.GPUs))
			case len(g.MIG) > 0:
				return fmt.Sprintf("GPU %d (%s) has MIG enabled now: only its MIG devices can be given", i, g.UUID)
			case g.Node.HostPath == "":
				return fmt.Sprintf("GPU %d (%s) has no usable device node on this node", i, g.UUID)
			}
		}
	}
	return "no such device of this driver on this node"
}
