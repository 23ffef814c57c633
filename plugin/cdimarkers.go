package plugin

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gpu-nri/gpu-nri/pkg/cdispec"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// ErrCDINameUnseen marks a container whose runtime resolved one of
// gpu-nri's CDI names with the names-only spec (injection.cdiOwnSpecDir)
// but did not tell gpu-nri that the container asked for it.
var ErrCDINameUnseen = errors.New("the runtime resolved the CDI name with gpu-nri's names-only spec (injection.cdiOwnSpecDir) " +
	"but did not pass it to NRI plugins (CRI CDIDevices reach NRI only from NRI v0.10: containerd 2.2+, CRI-O 1.35+; CRI-O 1.34 drops them), " +
	"so the container would start without it; name the device in a cdi.k8s.io/ container annotation (NVIDIA's device plugin: " +
	"--device-list-strategy cdi-annotations) or by NVIDIA_VISIBLE_DEVICES (envvar), or upgrade the runtime")

// unseenCDIMarkers refuses a container whose environment carries gpu-nri's
// CDI marker (cdispec.MarkerEnv=<name>, the only edit of the names-only
// spec) for a name that is neither among the container's CDI devices as
// NRI reports them nor in a cdi.k8s.io/ container annotation: the runtime
// gave the container that name (CRI CDIDevices on CRI-O 1.34, whose NRI
// v0.9.1 does not report them) and gpu-nri would otherwise answer "no GPU
// request", a quiet success without the GPU. String work on the
// environment only; nothing when no marker is set.
func unseenCDIMarkers(in *request.Input) error {
	var unseen []string
	for _, kv := range in.Env {
		name, ok := strings.CutPrefix(kv, cdispec.MarkerEnv+"=")
		if !ok || name == "" || cdiNameSeen(in, name) {
			continue
		}
		unseen = append(unseen, name)
	}
	if len(unseen) == 0 {
		return nil
	}
	return fmt.Errorf("gpu-nri: container %s: CDI device %s: %w", in.Who(), strings.Join(unseen, ", "), ErrCDINameUnseen)
}

func cdiNameSeen(in *request.Input, name string) bool {
	if slices.Contains(in.CDIDevices, name) {
		return true
	}
	for k, v := range in.Annotations {
		if !strings.HasPrefix(k, request.CDIAnnotationPrefix) {
			continue
		}
		for _, n := range strings.Split(v, ",") {
			if strings.TrimSpace(n) == name {
				return true
			}
		}
	}
	return false
}
