// Package simhost builds a simulated NVIDIA GPU host in a directory, for
// gpu-nri's tests and end-to-end scripts.
//
// # What it imitates
//
// A Debian/Ubuntu x86_64 machine with the NVIDIA 550 datacenter driver
// installed by NVIDIA's packages (default 4 × "NVIDIA H100 80GB HBM3",
// driver 550.54.14, CUDA 12.4), optionally with MIG enabled on some GPUs,
// or (Options.Layout LayoutDebian) by Debian's own packages: libraries in
// nvidia/current, reached through absolute /etc/alternatives links.
// Build lays out, under Options.Dir:
//
//   - driver/: the driver root: real ELF shared libraries compiled by gcc
//     from the C sources in test/csrc (libcuda.so.<ver> with SONAME
//     libcuda.so.1 that counts the /dev/nvidiaN the process may open, a tiny
//     NVML, and one stand-in per other library with its real SONAME), the
//     SONAME symlinks, etc/ld.so.cache written by pkg/ldcache listing the
//     libraries exactly as glibc's ldconfig would, binaries (nvidia-smi,
//     whose -q, --query-gpu, -L and plain outputs follow NVIDIA's formats
//     including MIG UUIDs and the "MIG devices:" table, and stand-ins), GSP firmware, graphics/Vulkan/OpenCL config files and the
//     persistenced unix socket;
//   - dev/: nvidiaN (195:N), nvidiactl (195:255), nvidia-modeset
//     (195:254), nvidia-uvm and nvidia-uvm-tools (dynamic major, 511 by
//     default), nvidia-caps/nvidia-capN (MIG config, monitor and per-MIG
//     access), dri/cardN, dri/renderDN and dri/by-path links;
//   - proc/: driver/nvidia/version, gpus/<bus id>/information,
//     capabilities/..., params, driver/nvidia-caps/mig-minors and devices,
//     in the formats of the real files.
//
// Device nodes are real (mknod) with Options.RealNodes (root only) and empty
// regular files otherwise; Host.Stater answers their numbers either way.
//
// # Guarantees
//
// Everything in Host (GPUs, UUIDs, bus ids, nodes, libraries with their
// SONAME per capability) is computed from Options, never read back, so tests
// can compare what discovery finds with what was built. UUIDs and PCI bus
// ids are deterministic functions of the GPU index (GPUUUID, PCIBusID;
// MIGUUID of the GPU index, GI and CI). Compiled artifacts are cached by source hash under
// Options.CacheDir, so repeated builds cost file copies only.
//
// # What it does not do
//
// It loads no kernel module and answers no ioctl: opening a real node gives
// ENXIO (or EPERM when a device cgroup denies it), which is what the
// simulated libcuda counts. It writes no container images and touches no
// system path outside Options.Dir (and the compiler cache).
package simhost
