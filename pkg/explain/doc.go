// Package explain answers "what would gpu-nri do with this container, and
// why" offline: it runs the daemon's one decision function
// (engine.Engine.Evaluate) and its one NRI conversion
// (nriadjust.ToAdjustment) on a container's request and renders the result
// as a report (Request, Decision, Devices, Mounts, Env, Hooks, Warnings),
// as JSON or YAML, and optionally as the OCI spec change NRI's
// runtime-tools generator (the code containerd and CRI-O run) makes from the
// adjustment.
//
// Guarantees: for the same configuration, inventory and request input, the
// report's edits, adjustment and error are exactly what the daemon's
// CreateContainer computes (pkg/explain's agreement test drives the real
// plugin through an in-process NRI runtime and compares). Build never
// fails on a bad request: the error is part of the report. Rendering is
// deterministic.
//
// It does not read the host, load configuration or talk to a runtime: the
// caller (`gpu-nri explain`) builds the engine and the inventory, and turns
// flags or CRI JSON into the request input the way the daemon turns NRI
// objects into it (plugin.InputFromNRI). It does not model what other NRI
// plugins or the runtime's own CDI injection would add.
package explain
