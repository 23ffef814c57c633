// Package explain answers "what would gpu-nri do with this container, and
// why" offline: it runs the daemon's own evaluate -> convert sequence
// (nriadjust.Decide: engine.Engine.Decide, then nriadjust.ToAdjustment) on
// a container's request and renders the result
// as a report (Request, Decision, Devices, Mounts, Env, Hooks, Warnings),
// as JSON or YAML, and optionally as the OCI spec change NRI's
// runtime-tools generator (the code containerd and CRI-O run) makes from the
// adjustment.
//
// Guarantees: for the same configuration, host and request input, the
// report's edits, adjustment, outcome and error are what the daemon's
// CreateContainer computes, by construction: both call nriadjust.Decide
// (the tests pin the answers themselves, by hand). Build never
// fails on a bad request: the error is part of the report. Rendering is
// deterministic.
//
// It does not read the host, load configuration or talk to a runtime: the
// caller (`gpu-nri explain`) builds the engine and the host source
// (pkg/hostsrc), and turns
// flags or CRI JSON into the request input the way the daemon turns NRI
// objects into it (plugin.InputFromNRI). It does not model what other NRI
// plugins or the runtime's own CDI injection would add.
package explain
