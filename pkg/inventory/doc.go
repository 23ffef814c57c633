// Package inventory discovers what a host's NVIDIA driver offers to
// containers: the driver version, every GPU and MIG device, the device nodes
// (control, per-GPU, DRI, MIG capabilities, IMEX channels, and the optional
// GDS, MOFED, NVSwitch and GDRCopy groups), the driver libraries of each
// capability (compat32 included), binaries, firmware, sockets and
// configuration files. Discover builds an Inventory once; a Watcher keeps it
// current.
//
// # Where it reads, what it emits
//
// Every input is a host path from config.Host (DriverRoot, DevRoot,
// ProcRoot) read at Host.View(path), i.e. under Host.Root when the plugin
// runs in a container with the host mounted there. Every path in the
// Inventory is a HOST path (HostPath, what the runtime resolves) paired with
// the path the item takes inside the container (Path):
//
//   - device nodes: <DevRoot>/x on the host, /dev/x in the container, with
//     the major, minor, mode and owner of the host node (a stat that must
//     find a character device; WithNodeStater replaces it for fixtures);
//   - driver files: <DriverRoot>/<real path> on the host, symlinks resolved
//     inside the driver root as if it were "/" (never leaving it). For
//     libraries Path is the real file's path inside the driver root
//     (/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14); for binaries and
//     configuration files it is where the file was found (/usr/bin/nvidia-smi);
//   - sockets are looked for on the host's /run first, then the driver
//     root's.
//
// # How it finds things
//
// GPUs come from <proc>/driver/nvidia/gpus/*/information and are numbered
// in PCI bus id order, as nvidia-smi does. MIG devices come from
// <proc>/driver/nvidia/capabilities/gpu<minor>/mig/gi<X>/ci<Y>/access
// ("DeviceFileMinor") and are numbered per GPU by (GI, CI); their
// /dev/nvidia-caps nodes take the "nvidia-caps" major of <proc>/devices and,
// when nvidia-modprobe has not created them yet, are described from procfs.
// nvidia-uvm's major is read from <proc>/devices and checked against the
// node. DRI nodes are mapped to GPUs through udev's
// <dev>/dri/by-path/pci-<bus>-{card,render} links or, on a host without
// them (no udev), through the kernel's /sys/bus/pci/devices/<bus>/drm
// (read under host.root).
//
// Libraries are looked up in <DriverRoot>/etc/ld.so.cache (pkg/ldcache);
// when it cannot be read, the standard library directories are scanned and
// each file's word size is read from its ELF header. Only files named
// <lib>.so.<driver version> count, except the libraries NVIDIA versions
// separately (the EGL platform libraries libnvidia-egl-gbm, -wayland,
// -wayland2, -xcb, -xlib, and the legacy libnvidia-nvvm70), where any
// version counts; a scanned directory's SONAME-style symlink
// (<lib>.so.1) counts when the file it resolves to does. libvdpau_nvidia,
// which the cache never lists, is found in the vdpau subdirectories (on
// Debian only as the link vdpau/libvdpau_nvidia.so.1). Every symlink,
// absolute ones included (Debian's /etc/alternatives), is resolved inside
// the driver root. 32-bit libraries go under Compat32 with
// Lib32 set and BaseCapability naming their 64-bit counterpart's capability.
// Each library's SONAME is read at discovery time.
//
// For display it also collects the X.Org driver modules (nvidia_drv.so,
// libglxserver_nvidia.so.<version> and, as the same file, the unversioned
// name the X server loads) into ConfigFiles[Display], at the paths where
// they were found, like NVIDIA does. Graphics gets GBM's NVIDIA backend,
// <libdir>/gbm/nvidia-drm_gbm.so, as the libnvidia-allocator file itself
// (NVIDIA's CDI hook makes it a link), in ConfigFiles[Graphics].
//
// # Guarantees
//
//   - An Inventory is immutable once Discover returns; share it freely.
//     Its lookups (GPUByIndex, GPUByUUID, GPUByPCI, MIGByIndex, MIGByUUID)
//     use maps built by New (Discover calls it; hand-built inventories go
//     through it too) and do no file system work.
//   - Missing optional pieces (uvm, modeset, DRI, firmware, a library
//     directory, SONAMEs) become Warnings, never errors. Every driver
//     library seen and left out (dangling link, not a regular or ELF file,
//     another driver version) is listed in Skipped with the reason. No driver (no
//     <proc>/driver/nvidia/version) is an error wrapping ErrNoDriver; a GPU
//     information file that cannot be parsed is an error, since skipping it
//     would renumber the GPUs after it.
//   - What stops CUDA in a container (nvidia-uvm not loaded or its node
//     missing; driver libraries of another version than the loaded kernel
//     module, i.e. a userland upgraded without a reboot) is found once, as
//     ComputeProblems with their fixes; CheckCompute answers per request
//     from it with no file system work.
//   - ComputeFingerprint costs a few reads and stats; Watcher.Run polls it
//     and rediscovers on change, so a driver upgrade, a MIG reconfiguration
//     or a module reload replaces the inventory, and a failed rediscovery
//     leaves no stale inventory behind (Current returns nil). With
//     config.Host.Watch, Run also watches the driver's library, binary,
//     firmware and device directories with inotify (debounced) and polls the
//     procfs part of the fingerprint (ProcFingerprint) every 250ms, since
//     inotify never fires for procfs: the inventory follows an upgrade
//     within about a second, the poll stays the fallback, and a watch that
//     cannot be set up is reported through Run's callback (ErrWatchUnavailable)
//     and replaced by polling. Watcher.Kick asks a running Run to rediscover
//     now, without blocking. None of this runs on the CreateContainer path.
//   - No package-level mutable state; nothing here logs.
//
// # What it does not do
//
// It does not talk to NVML: Brand, Arch, CUDAVersion and MIG UUIDs stay
// empty unless a WithGPUFacts function fills them. It does not decide what a
// container gets (see pkg/policy), create device nodes, or run ldconfig. It
// reads nothing else of /sys.
package inventory
