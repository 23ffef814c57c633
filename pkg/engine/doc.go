// Package engine is the one decision function of gpu-nri: from a container's
// request input and the host inventory to the edits it gets. The daemon's
// CreateContainer handler, `gpu-nri explain` and `gpu-nri cdi generate` all
// call it, so they cannot disagree.
//
// Evaluate runs request parsing (pkg/request), authorization and requirement
// checks (pkg/policy), resolution of every device id against the inventory,
// third-party CDI device lookup, and edits building (pkg/edits), in that
// order. Any failure is an error that names the container, the input and the
// reason; the caller fails the container with it rather than starting it
// without GPUs.
//
// Guarantees: Evaluate does no file system work for gpu-nri's own devices
// (the inventory is pre-built); every device in the result is in the
// inventory; the Engine is immutable and safe for concurrent use.
//
// It does not log, read the host, or talk to a runtime.
package engine
