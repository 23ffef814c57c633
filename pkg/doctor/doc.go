// Package doctor checks that a node is set up for gpu-nri and says, for
// every problem, how to fix it: the NVIDIA driver and its version (never
// [ok] when CUDA cannot run in containers — nvidia-uvm not loaded, a
// userland of another version than the kernel module, with reboot or
// modprobe as the fix —, when libnvidia-ml is missing, when the driver's
// facts are unavailable because nvidia-smi or NVML cannot run, or when
// there is no GSP firmware), device nodes against the GPUs found, the container runtime's NRI configuration
// (containerd config version 2, 3 or 4 with every file it imports, merged
// and migrated as containerd 2.4 does, or CRI-O with its crio.conf.d
// drop-ins): NRI enabled (also not in disabled_plugins), socket path,
// plugin directories and request
// timeout; whether gpu-nri is connected (the NRI socket accepts connections;
// registration itself through the daemon's /readyz when metrics.address is
// configured); the hook binary and ldconfig at the host paths the
// configuration names; a leftover NVIDIA runtime (nvidia-container-runtime
// as the default runtime) that would inject a second time; and the
// runtime's default validator: required_plugins (fail-closed only on a
// runtime whose NRI has the default validator, containerd 2.2+ and CRI-O
// 1.35+: doctor asks the runtime's CRI socket for its version with the CRI
// Version call, warns when an older runtime ignores the setting and makes no
// fail-closed claim when the version is unknown) and
// reject_oci_hook_adjustment (then injection.loader must be hookless).
//
// The runtime's files are merged as TOML tables (containerd's semantics:
// imports breadth first, tables merged key by key, top-level arrays as
// unions, version-2 files migrated to version 3; CRI-O's drop-ins replace
// key by key), then the merged tree is decoded into typed structs holding
// only the keys doctor checks; a value of the wrong type is a failure that
// names the file and the key.
//
// Guarantees: Run only reads (files under the host root, one unix socket
// connection to NRI, one CRI Version call when a default validator is
// required, one HTTP GET when configured) and never changes the node;
// every finding names what was checked, what was seen and, unless it is
// fine, the fix, naming the file whose value won when drop-ins are merged; findings come in a fixed order. Healthy is false exactly
// when a finding is a warning or a failure.
//
// It does not start or restart anything, asks CRI nothing but Version
// (no pods, containers or images), and does not evaluate containers (see
// package explain).
package doctor
