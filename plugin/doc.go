// Package plugin is gpu-nri's NRI plugin: the long-running daemon that
// answers the container runtime's CreateContainer with one adjustment that
// gives the container exactly the GPUs, device-cgroup rules, driver files,
// environment and loader set-up it asked for and may have.
//
// It connects in external mode (a socket path) or pre-registered mode (the
// runtime starts it with NRI_PLUGIN_SOCKET and passes the configuration
// through Configure), reconnects with backoff when the runtime restarts, keeps
// the host inventory fresh in the background, and logs one audit line per
// decision with per-request fields (the shared logger is never mutated).
// It declares NRI's failure policy fail_request (a request it cannot answer
// in time fails rather than going on without gpu-nri; runtimes with NRI
// before v0.12.4 ignore it) without keep_connected, and feeds the metrics'
// CreateContainer watchdog on every handler entry and exit. With
// injection.cdiOwnSpecDir set it keeps the names-only spec of its CDI kind
// (cdispec.Markers) in that directory, written at start and on every
// inventory change, never on the CreateContainer path. A container whose
// environment carries that spec's marker (GPU_NRI_CDI_DEVICE=<name>) for a
// name NRI does not report as requested (CRI-O 1.34 resolves CRI
// CDIDevices but its NRI v0.9.1 does not pass them on) is refused with
// ErrCDINameUnseen rather than started without its GPU.
// With Options.DRA
// (dra.enabled) a container that names DRA claim devices is decided as an
// engine.Grant of exactly the claim's devices (pkg/dra), and the DRA
// ResourceSlices are republished on every inventory change.
//
// Guarantees: a container whose request is malformed, refused, or names a
// device the host does not have fails creation with an error naming the
// container, the input and the reason; CreateContainer does no file system
// work for gpu-nri's own devices when the inventory is current.
//
// The decision itself lives in pkg/engine (engine.Decide, with its
// rediscovery of a stale inventory); the evaluate -> convert sequence in
// pkg/nriadjust (nriadjust.Decide, shared with `gpu-nri explain`); the host
// is read by pkg/hostsrc, opened for each configuration with
// Options.HostOptions. This package only wires them to the runtime and logs
// the audit line (engine.Answer.AuditFields, docs/logging.md).
package plugin
