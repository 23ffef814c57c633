// Package nvmlfacts asks the host's NVIDIA driver for the facts that
// NVIDIA_REQUIRE_* checks need and discovery cannot read from files: the
// CUDA driver API version (inventory.Inventory.CUDAVersion) and each GPU's
// brand and compute capability (inventory.GPU.Brand, .Arch), and for the
// DRA driver's slices each GPU's framebuffer size (.MemoryMiB: NVML's
// memory info total, or the Total of nvidia-smi -q's "FB Memory Usage")
// and each MIG device's profile name (inventory.MIGDevice.Profile, from
// nvidia-smi -L) and memory (.MemoryMiB, the total of its row in plain
// nvidia-smi's "MIG devices:" table).
//
// Fill does it in one of two ways, chosen at build time:
//
//   - cgo builds load the driver's own libnvidia-ml.so.1 from the driver
//     root through github.com/NVIDIA/go-nvml (nvml.WithLibraryPath), never a
//     library from the plugin's image or the loader's search path;
//   - CGO_ENABLED=0 builds (the static binary that doubles as the OCI hook)
//     run the driver root's nvidia-smi (`-q`, and
//     `--query-gpu=uuid,compute_cap --format=csv,noheader`) with a minimal
//     environment and a timeout, through the driver root's dynamic loader
//     when it has one (with the directories of the inventory's libraries,
//     then the standard ones, as its library path), and parse its output
//     (ParseSMI).
//
// In both builds, when the inventory lists MIG devices, Fill also learns
// their UUIDs from the driver root's nvidia-smi (run the same way):
// `nvidia-smi -L` prints each MIG device's UUID under its GPU as
// "Device N", N being NVML's MIG device index, which follows placement and
// need not be the inventory's ascending GI/CI order; the plain `nvidia-smi`
// output's "MIG devices:" table gives (GPU, GI, CI, MIG device) for each N.
// ParseMIG joins the two on (GPU index, N), and Fill matches each MIG device
// of the inventory by its parent GPU's UUID and its GI and CI ids (the
// gi<X>/ci<Y> of /proc/driver/nvidia/capabilities), never by position. The
// UUIDs of drivers before R470 ("MIG-GPU-<uuid>/<gi>/<ci>") name their ids
// themselves and need no table. The cgo build does not ask NVML for MIG
// handles, so one parser serves both builds; the two extra nvidia-smi runs
// happen only on hosts with MIG devices.
//
// Every file it runs or loads (nvidia-smi, the loader, libnvidia-ml) is
// resolved inside the driver root as if it were "/" (securejoin): Debian's
// /usr/bin/nvidia-smi -> /etc/alternatives/nvidia-smi and /lib64's loader
// link are absolute, and followed from the plugin's own root they would
// leave the driver root.
//
// # Guarantees
//
// GPUs are matched by UUID, case-insensitively; facts about GPUs that the
// inventory does not list are ignored. A MIG device gets a UUID only when
// nvidia-smi names one for exactly its GPU, GI and CI; one it does not is
// left without a UUID and named in the error. Fill writes whatever it learned and
// returns an error (errors joined) naming what it could not learn; it never
// guesses: a property it could not learn stays "", which package policy
// reports as an unverifiable requirement. Brands are normalized to the
// lower-case names NVIDIA's requirement checks use ("tesla", "geforcertx",
// "nvidiavcs"; see NormalizeBrand).
//
// # What it does not do
//
// It is meant for inventory refresh only: loading NVML or running nvidia-smi
// costs milliseconds to seconds and must never sit on the container-create
// path. It is not safe for concurrent use (go-nvml binds the library's
// symbols process-wide). It does not log, does not discover device nodes or
// libraries (package inventory), and does not discover MIG devices (package
// inventory does, from the capability files; Fill only names them).
package nvmlfacts
