package inventory

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// ErrComputeNotReady is wrapped by the error CheckCompute returns when CUDA
// cannot run in a container on this host.
var ErrComputeNotReady = errors.New("CUDA cannot run on this node")

// ComputeProblem is a reason CUDA cannot run in a container on this host,
// found once by Discover (see Inventory.ComputeProblems).
type ComputeProblem struct {
	// Cause says what is wrong and where it was seen.
	Cause string
	// Fix says what the node's administrator does about it.
	Fix string
}

// String is "<cause>; fix: <fix>".
func (p ComputeProblem) String() string { return p.Cause + "; fix: " + p.Fix }

// CheckCompute says, with no file system work, whether a container given
// caps can run CUDA here. It returns nothing when caps has no compute or
// the inventory has no ComputeProblems. Otherwise it returns an error
// wrapping ErrComputeNotReady that names every cause and its fix, or, with
// allow (requirements.computeNotReady: allow), the same text as a warning
// and no error.
func (inv *Inventory) CheckCompute(caps []Capability, allow bool) (warning string, err error) {
	if len(inv.ComputeProblems) == 0 || !slices.Contains(caps, Compute) {
		return "", nil
	}
	parts := make([]string, len(inv.ComputeProblems))
	for i, p := range inv.ComputeProblems {
		parts[i] = p.String()
	}
	msg := strings.Join(parts, "; and ")
	if allow {
		return fmt.Sprintf("%v (allowed by requirements.computeNotReady: allow): %s", ErrComputeNotReady, msg), nil
	}
	return "", fmt.Errorf("%w: %s (requirements.computeNotReady: allow would start it anyway)", ErrComputeNotReady, msg)
}

// computeProblems finds what stops CUDA in a container: nvidia-uvm missing
// and a userland driver of another version than the loaded kernel module.
// It runs once, after the device nodes and libraries are known.
func (d *discovery) computeProblems(otherVersions []string) {
	inv := d.inv
	if inv.UVM == nil {
		node := d.devPath("nvidia-uvm")
		_, loaded := d.majors["nvidia-uvm"]
		switch {
		case !d.procDevicesRead:
			inv.ComputeProblems = append(inv.ComputeProblems, ComputeProblem{
				Cause: fmt.Sprintf("%s is missing and %s cannot be read", node, d.procPath("devices")),
				Fix:   "load the nvidia-uvm kernel module and create its nodes: modprobe nvidia-uvm && nvidia-modprobe -u -c 0"})
		case !loaded:
			inv.ComputeProblems = append(inv.ComputeProblems, ComputeProblem{
				Cause: fmt.Sprintf("the nvidia-uvm kernel module is not loaded (no nvidia-uvm in %s, no %s)", d.procPath("devices"), node),
				Fix:   "modprobe nvidia-uvm && nvidia-modprobe -u -c 0, and have it loaded at boot (e.g. nvidia-uvm in /etc/modules-load.d/nvidia.conf)"})
		default:
			inv.ComputeProblems = append(inv.ComputeProblems, ComputeProblem{
				Cause: fmt.Sprintf("nvidia-uvm is loaded but %s is missing or not its device node", node),
				Fix:   "create the nodes: nvidia-modprobe -u -c 0 (or mknod -m 666 " + node + fmt.Sprintf(" c %d 0)", d.majors["nvidia-uvm"])})
		}
	}
	hasCUDA := slices.ContainsFunc(inv.Libraries[Compute], func(f File) bool { return libName(filepath.Base(f.Path)) == "libcuda" })
	if !hasCUDA && len(otherVersions) > 0 {
		inv.ComputeProblems = append(inv.ComputeProblems, ComputeProblem{
			Cause: fmt.Sprintf("the driver's libraries under %s are version %s but the loaded kernel module is %s (%s): the driver was upgraded or downgraded without a reboot",
				d.h.DriverRoot, strings.Join(otherVersions, ", "), inv.DriverVersion, d.procPath("driver/nvidia/version")),
			Fix: "reboot the node (or stop every GPU workload and reload the nvidia kernel modules) so that the kernel module matches the libraries; gpu-nri picks the change up by itself"})
	}
}
