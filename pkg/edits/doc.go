// Package edits turns a resolved GPU selection and the host inventory into
// gpu-nri's one internal model of what to inject: CDI container edits
// (tags.cncf.io/container-device-interface/specs-go ContainerEdits).
//
// The same edits feed the NRI adjustment (pkg/nriadjust), the CDI specs of
// `gpu-nri cdi generate` and the report of `gpu-nri explain`, so the three
// cannot disagree.
//
// Guarantees: every path emitted as a source (DeviceNode.HostPath,
// Mount.HostPath, Hook.Path) is a host path taken from the inventory or the
// configuration (or, for Selection.LibraryDir, a directory the daemon built
// from the inventory under injection.libraryDir: PlanDir says what it
// holds), never from the container; every mount is read-only,
// nosuid, nodev, rbind, rprivate (sockets add noexec) except the host's CUDA
// MPS pipe directory, which MPS clients must write to (read-write, nosuid,
// nodev, noexec, only with compute); device nodes carry the
// host node's real major, minor and mode; only the libraries, binaries and
// config files of the requested capabilities are included; the output is
// deterministic (sorted, deduplicated by container path).
//
// It does not read the host (the inventory did), parse requests, or decide
// authorization.
package edits
