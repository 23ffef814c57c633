// Package nriadjust converts gpu-nri's container edits (CDI ContainerEdits)
// into an NRI ContainerAdjustment, the only form the daemon returns to the
// runtime.
//
// Guarantees: each device node becomes an AddDevice with the host node's
// real type, major, minor, mode and owner (typed values: NRI's helpers
// silently drop untyped constants), plus an explicit device-cgroup allow rule
// when the runtime applies them; mounts keep their options; environment and
// hooks are copied; hooks always carry their explicit environment. The
// conversion is pure and allocation-light.
//
// Exactly once: given what the container already carries (Options.Container,
// the NRI container: what CRI and the runtime's own CDI resolution injected
// before NRI), the adjustment leaves out each device node whose path is
// present (and its cgroup rule), each mount whose destination is present
// with the same source, and each hook identical (stage, path, args, env,
// timeout) to a present one. Environment entries are set by key, so they
// never duplicate. A present mount from another source is
// still replaced by gpu-nri's (the runtime's rule for a plugin mount).
//
// Decide is the one evaluate -> convert -> outcome sequence: the engine's
// decision, then ToAdjustment, with a conversion error failing the answer
// like the engine's own errors. The daemon and `gpu-nri explain` call it.
//
// It does not decide what to inject, does not remove what the runtime
// already injected (NRI cannot remove a hook), and it cannot express additional GIDs
// (NRI has no adjustment for them): ToAdjustment reports them as a warning.
package nriadjust
