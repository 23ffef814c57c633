// Package hook makes the driver libraries gpu-nri injected into a container
// loadable by the container's dynamic loader.
//
// # What it does
//
// Run is `gpu-nri hook`, an OCI createContainer hook: runc and crun call it
// after the container's mounts exist and before the workload starts, with
// the container state JSON on stdin. In one invocation it
//
//   - creates the Links (SONAME links, libcuda.so -> libcuda.so.1, ...);
//   - writes /etc/ld.so.conf.d/00-gpu-nri.conf listing the Folders (sorted
//     first, so injected libraries win), creates /etc/ld.so.conf when the
//     image has none (distroless), and writes /etc/ld-musl-<arch>.path when
//     the image has a musl loader;
//   - with CUDACompat, puts /usr/local/cuda/compat first (00-compat-gpu-nri.conf)
//     when the image's libcuda.so.<version> there is newer than the host
//     driver;
//   - makes /etc/ld.so.cache name the injected libraries: when the image's
//     own cache is fresh (no loader configuration file or directory it
//     names changed after it) and the plugin passed the Sonames, by adding
//     their entries to it (cache.go: no exec, the image's entries kept, ours
//     winning for the same soname); otherwise by regenerating it with the
//     host's ldconfig (a host path, never the image's);
//   - with HideParams, binds a read-only copy of the container's
//     /proc/driver/nvidia/params saying "ModifyDeviceFiles: 0" over it, when
//     that file exists on procfs (params.go);
//   - does nothing when everything is already in place (a restart).
//
// Its argv (hookproto.Options, written by the plugin with
// hookproto.Options.Args) and the hookless mode's mount rule live in
// pkg/hookproto, so that the plugin's decision code does not link this
// package's namespace and file-descriptor code.
//
// # Guarantees
//
//   - Every operation on the container root goes through file descriptors:
//     an O_PATH fd on the root; every lookup by
//     openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) (the resolution of
//     github.com/cyphar/filepath-securejoin/pathrs-lite's OpenatInRoot,
//     called directly), or pathrs-lite's own checked walk where openat2 is
//     missing; missing directories created by pathrs-lite's MkdirAllHandle;
//     files read by reopening the checked handle (pathrs.Reopen, through a
//     private procfs), directories listed through openat2(O_DIRECTORY),
//     which never opens anything else; *at syscalls relative
//     to a directory handle for what pathrs-lite lacks: symlinks and files
//     created under a fresh temp name and renamed into place. An image
//     symlink can never lead a write outside the root; a symlink at a path we
//     write is replaced, not followed.
//   - A directory, FIFO, socket or device where a file or link belongs is
//     refused with an error wrapping ErrHostileRoot, before anything blocks.
//   - The host ldconfig (refused unless a static ELF) runs with no Go
//     re-exec: on a locked, discarded OS thread the hook unshares its mount
//     namespace, makes mounts private, pivots into the container root and
//     detaches the host's tree, mounts a fresh tmpfs over /proc and binds the
//     ldconfig read-only (nosuid, nodev, nosymfollow) into it; ldconfig is
//     forked into new pid/net/ipc/uts namespaces with an empty environment
//     and a deadline, creates no links (-X) and writes its cache only into
//     that tmpfs; the hook then writes the cache into the root through fds.
//   - Inputs are size-capped (state 1 MiB, config.json 32 MiB, cache 64 MiB,
//     each loader configuration file 1 MiB, at most 256 of them, 8 levels of
//     include); the image's cache is parsed by pkg/ldcache (fuzzed, linear,
//     never panics).
//
// # Does not
//
//   - mount anything into the container except the params copy above (the
//     runtime mounts from the plugin's adjustment), read the inherited
//     environment, or log;
//   - defend the container against itself: an image can still break its own
//     loader configuration;
//   - work on kernels without the new mount API with mount_setattr and
//     MOUNT_ATTR_NOSYMFOLLOW (Linux >= 5.14); the isolated ldconfig also
//     calls openat2 (5.6) itself.
package hook
