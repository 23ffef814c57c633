// Package install puts gpu-nri on a host without Kubernetes, and takes it
// off again: the binary, the configuration, and either the systemd unit
// (external mode) or the runtime's pre-registered plugin layout.
//
// Every path is a host path joined under the root (WithRoot), so tests (and
// image builders) install into a directory. Files are written to a temporary name
// in the target directory and renamed into place: a binary the runtime or
// systemd is executing is never opened for writing (no ETXTBSY), and readers
// never see a half-written file. A file whose content and mode already match
// is left alone, so a second Install reports no change. Options are
// functions (WithRoot, WithMode, ...) that reject a bad value when applied,
// before anything is read or written.
//
// Install records what it wrote (path and SHA-256) and which directories it
// created in <root>/var/lib/gpu-nri/install.json. Uninstall removes exactly
// those files, except files changed since (kept, and reported), then the
// directories it created when they are empty. Installing in a new mode
// removes the previous mode's files the same way.
//
// Given the hook-only gpu-nri-hook binary (WithHookBinary), Install puts it
// beside gpu-nri and the default configuration's injection.hookPath names
// it; without it, hookPath names gpu-nri itself and Result.Notes says so.
//
// Mode "hook" only places the binaries (the Kubernetes init container uses
// it to install the hook binary on the host); it keeps no record.
//
// The package neither starts nor stops services and never talks to systemd
// or the runtime: the command does that. It does not log; Result lists every
// change.
package install
