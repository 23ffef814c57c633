// Package libdir keeps the daemon's library directories (config
// injection.libraryDir): for the current inventory and each capability set a
// container asked for (and the configured defaults), one directory on the
// host holding the libraries of edits.PlanDir, so that a container gets them
// as one mount instead of one per file.
//
// Each directory is its own small tmpfs at <root>/<plan name>.<n>: an empty
// file per library with the host's library bind-mounted read-only (nosuid,
// nodev) over it, and the plan's relative links; the tmpfs is then remounted
// read-only, which is what marks a directory complete (Find, and the
// cleanup at start, go by it).
//
// Guarantees: LibraryDir, the only call on the create path, does no I/O and takes
// no lock (an atomic load and a map read); it answers only for the inventory
// a directory was built from, so a new driver never gets an old directory,
// and a miss asks Run, without blocking, to build it. Run also looks for a
// new inventory every 250 ms and builds the configured sets for it. All file system work is
// in Run's goroutine. A directory reused for a new inventory is first checked
// to still bind the same files (device and inode); one no longer wanted is
// detached after a grace period, so that a container whose adjustment already
// names it still gets it. At start every directory left under root is
// detached; anything there that libdir did not make is an error, so a
// mistyped root never loses a file. Run detaches every directory it made when
// it ends.
//
// It does not decide which files a container gets (pkg/edits), read the
// driver (pkg/inventory), or make the mounts reach the runtime: the daemon
// must share the runtime's mount namespace or propagate to it.
package libdir
