// Package cdispec builds a CDI spec (tags.cncf.io/container-device-interface
// specs-go Spec) for this host's GPUs, for the runtimes that consume CDI
// themselves (Podman, Docker, nerdctl, containerd's and CRI-O's native CDI).
//
// Every device's edits are the daemon's own decision (engine.Engine.Decide)
// for a grant of that one device on the same inventory, and the "all"
// device's the decision for a grant of all of them, so a CDI device and the
// daemon's answer for the same GPU and capabilities carry the same nodes,
// mounts and hook, and the device rules (a MIG-enabled GPU only through its
// MIG devices, no GPU without a usable node) are the engine's, not
// restated here. What every device shares (control nodes, libraries, binaries,
// firmware, the loader hook, NVIDIA_VISIBLE_DEVICES=void) is hoisted to the
// spec's top-level containerEdits; what differs (the GPU's node, a MIG
// device's cap nodes and parent node) stays on the device.
//
// Guarantees: Generate is deterministic for an inventory and options;
// Validate checks a spec with the CDI library's own loader (the same parser
// and validation the runtimes run); Write is the CDI library's writer
// (cdi.Cache.WriteSpec: validation, a temporary file in the same directory
// that caches ignore, rename), so a runtime never reads a half-written or
// invalid spec; the spec
// carries the lowest CDI version that can express it, so older consumers
// (Podman 4.3) accept it.
//
// Markers turns a spec into its marker twin (same kind and names, each
// device's only edit MarkerEnv=<name>) for the runtime's CDI dir when
// gpu-nri is the one that injects (injection.cdiOwnSpecDir): the runtime
// accepts the names and injects nothing of the host.
//
// It does not decide policy (a CDI consumer applies a spec to whoever asks),
// evaluate NVIDIA_REQUIRE_* requirements, or watch the host: the command
// (`gpu-nri cdi generate --watch`) drives regeneration with
// inventory.Watcher.
package cdispec
