package cdispec

import (
	"errors"
	"fmt"

	specs "tags.cncf.io/container-device-interface/specs-go"
)

// MarkerEnv is the only edit of a device in a Markers spec: the device's
// qualified name. A CDI device needs at least one edit (the CDI library
// rejects "empty device edits"); an environment variable is the one edit
// that puts nothing of the host into the container.
const MarkerEnv = "GPU_NRI_CDI_DEVICE"

// Markers is spec with each device's edits replaced by MarkerEnv=<name>
// and no spec-level edits: the same kind, devices and names, nothing of
// the host. In the runtime's CDI dir it lets a runtime that resolves CDI
// names itself before NRI (containerd 2.4: CRI CDIDevices, cdi.k8s.io/
// annotations) accept gpu-nri's names without injecting anything, so
// gpu-nri's NRI answer (policy, requirements, capabilities) is the only
// injection.
func Markers(spec *specs.Spec) (*specs.Spec, error) {
	if spec == nil || len(spec.Devices) == 0 {
		return nil, errors.New("cdispec: markers: a spec without devices")
	}
	out := &specs.Spec{Version: specs.CurrentVersion, Kind: spec.Kind, Annotations: spec.Annotations}
	for _, d := range spec.Devices {
		out.Devices = append(out.Devices, specs.Device{
			Name:           d.Name,
			ContainerEdits: specs.ContainerEdits{Env: []string{MarkerEnv + "=" + spec.Kind + "=" + d.Name}},
		})
	}
	v, err := specs.MinimumRequiredVersion(out)
	if err != nil {
		return nil, fmt.Errorf("cdispec: markers: %w", err)
	}
	out.Version = v
	return out, nil
}
