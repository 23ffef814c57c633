package request

import (
	"github.com/gpu-nri/gpu-nri/config"
)

// Limits on what Parse accepts. Anything larger is refused with an *Error:
// requests are small, and an unbounded value is either a mistake or an
// attack on the CreateContainer path.
const (
	// MaxValueLen is the longest value (env var, annotation, mount path,
	// CDI name) Parse reads.
	MaxValueLen = 4096
	// MaxItems is the most devices one source may list.
	MaxItems = 256
	// MaxIndex is the largest GPU or MIG index ("255", "3:255").
	MaxIndex = 255
	// MaxIMEXChannel is the largest IMEX channel id.
	MaxIMEXChannel = 65535
	// MaxRequirements is the most NVIDIA_REQUIRE_* variables.
	MaxRequirements = 64
	// MaxCDIAnnotations is the most cdi.k8s.io/ annotation keys per container.
	MaxCDIAnnotations = 64
)

// Well-known names.
const (
	// EnvVisibleDevices selects the GPUs.
	EnvVisibleDevices = "NVIDIA_VISIBLE_DEVICES"
	// EnvDriverCapabilities selects the driver capabilities.
	EnvDriverCapabilities = "NVIDIA_DRIVER_CAPABILITIES"
	// EnvRequirePrefix starts every requirement variable.
	EnvRequirePrefix = "NVIDIA_REQUIRE_"
	// EnvRequireCUDA is the CUDA requirement of CUDA images.
	EnvRequireCUDA = "NVIDIA_REQUIRE_CUDA"
	// EnvRequireJetpack starts variables that are not requirements:
	// NVIDIA_REQUIRE_JETPACK and every NVIDIA_REQUIRE_JETPACK* (e.g.
	// NVIDIA_REQUIRE_JETPACK_HOST_MOUNTS) are ignored, as NVIDIA ignores them.
	EnvRequireJetpack = "NVIDIA_REQUIRE_JETPACK"
	// EnvDisableRequire skips every requirement check.
	EnvDisableRequire = "NVIDIA_DISABLE_REQUIRE"
	// EnvCUDAVersion marks legacy CUDA images.
	EnvCUDAVersion = "CUDA_VERSION"
	// EnvMIGConfigDevices and EnvMIGMonitorDevices grant MIG management.
	EnvMIGConfigDevices  = "NVIDIA_MIG_CONFIG_DEVICES"
	EnvMIGMonitorDevices = "NVIDIA_MIG_MONITOR_DEVICES"
	// EnvIMEXChannels lists IMEX channels.
	EnvIMEXChannels = "NVIDIA_IMEX_CHANNELS"
	// Feature switches (value "enabled").
	EnvGDS      = "NVIDIA_GDS"
	EnvMOFED    = "NVIDIA_MOFED"
	EnvNVSwitch = "NVIDIA_NVSWITCH"
	EnvGDRCopy  = "NVIDIA_GDRCOPY"

	// VolumeMountsRoot is where the device plugin's volume-mounts strategy
	// mounts one file per device; NVIDIA_VISIBLE_DEVICES set to exactly this
	// path means "read the mounts".
	VolumeMountsRoot = "/var/run/nvidia-container-devices"

	// CDIAnnotationPrefix starts the CDI device annotations
	// (tags.cncf.io/container-device-interface/pkg/cdi.AnnotationPrefix).
	CDIAnnotationPrefix = "cdi.k8s.io/"

	// GPUsAnnotation and CapabilitiesAnnotation are the first labels of
	// gpu-nri's own pod annotation keys: "gpus.<domain>/container.<name>",
	// "gpus.<domain>/pod", and the same for "capabilities.".
	GPUsAnnotation         = "gpus"
	CapabilitiesAnnotation = "capabilities"
)

// Options are the configuration Parse needs. The zero value is usable: it
// means domain "gpu-nri.io", kind "nvidia.com/gpu", default capabilities
// utility and compute, and every capability supported.
type Options struct {
	// AnnotationDomain is the domain of gpu-nri's pod annotation keys
	// (config injection.annotationDomain), e.g. "gpu-nri.io".
	AnnotationDomain string
	// CDIKind is the CDI kind gpu-nri answers for itself (config
	// injection.cdiKind), e.g. "nvidia.com/gpu". Names of this kind are
	// parsed into GPU device items ("nvidia.com/gpu=0" is GPU index 0).
	CDIKind string
	// DefaultCapabilities apply when no capabilities are requested (nil:
	// utility, compute).
	DefaultCapabilities []string
	// SupportedCapabilities are the capabilities a container may ask for
	// (nil: all).
	SupportedCapabilities []string
}

// Defaults used by a zero Options.
const (
	DefaultAnnotationDomain = "gpu-nri.io"
	DefaultCDIKind          = "nvidia.com/gpu"
)

// OptionsFromConfig returns the Options of an injection config.
func OptionsFromConfig(c *config.Injection) Options {
	if c == nil {
		return Options{}
	}
	return Options{
		AnnotationDomain:      c.AnnotationDomain,
		CDIKind:               c.CDIKind,
		DefaultCapabilities:   c.DefaultCapabilities,
		SupportedCapabilities: c.SupportedCapabilities,
	}
}

func (o *Options) domain() string {
	if o.AnnotationDomain == "" {
		return DefaultAnnotationDomain
	}
	return o.AnnotationDomain
}

func (o *Options) cdiKind() string {
	if o.CDIKind == "" {
		return DefaultCDIKind
	}
	return o.CDIKind
}
