// Package fsutil holds the small file-system helpers several gpu-nri
// packages need, written once: an atomic file write and the split of a
// device number into its major and minor numbers.
//
// Guarantees: WriteFileAtomic never leaves a half-written file at its
// target (readers see the old content or the new, nothing between) and
// removes its temporary file on failure. The package holds no state, does
// not log, and decides nothing about which paths to write: callers pass
// final host paths.
package fsutil
