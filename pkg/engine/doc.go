// Package engine is the one decision of gpu-nri: from a container's request
// input (or a grant made elsewhere) and the host to the edits it gets. The
// daemon's CreateContainer handler, `gpu-nri explain`, `gpu-nri cdi
// generate` (and DRA claim preparation) all call Engine.Decide, so they
// cannot disagree.
//
// Decide runs request parsing (pkg/request), authorization and requirement
// checks (pkg/policy), resolution of every device id against the inventory
// (a MIG-enabled GPU only through its MIG devices, no device whose GPU has
// no usable node, no device named twice), third-party CDI device lookup,
// and edits building (pkg/edits), in that order. A Grant (Query.Grant)
// skips parsing and authorization, not the device rules. When a request
// names a device the inventory lacks, or the host has no driver, Decide asks
// the Host to rediscover once (the Host rate-limits) and decides again. The
// Answer carries the result, the outcome (the Outcome* words the audit line,
// the metrics and explain all use) and the error; AuditFields gives the
// daemon's audit line fields (docs/logging.md). Any failure is an error that
// names the container, the input and the reason; the caller fails the
// container with it rather than starting it without GPUs.
//
// Guarantees: Decide does no file system work for gpu-nri's own devices (the
// inventory is pre-built); every device in the result is in the inventory;
// the Engine is immutable and safe for concurrent use.
//
// It does not log, read the host, or talk to a runtime: everything it knows
// of the host comes through the injected Host (pkg/hostsrc reads the real
// one; Fixed serves one inventory).
package engine
