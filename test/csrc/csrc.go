// Package csrc holds the C sources of gpu-nri's simulated NVIDIA driver and
// the in-container test program, embedded so that test/simhost (and any
// test or tool) can compile them with the system gcc. No binary is checked
// in.
//
//   - libcuda.c: libcuda.so.<ver> (SONAME libcuda.so.1): cuInit,
//     cuDriverGetVersion (-DCUDA_API_VERSION=12040), cuDeviceGetCount,
//     cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute, cuDeviceGetUuid,
//     cuDeviceTotalMem, and what NVIDIA's libcudart asks of a driver
//     (cuGetProcAddress(_v2), cuGetExportTable); see its header for what
//     libcudart then gets (docs/cuda-runtime.md).
//   - libnvidia-ml.c: a simulated NVML (SONAME libnvidia-ml.so.1) driven by
//     the host's GPU table (simhost.NVMLManifest, -DSIMGPU_MANIFEST): device
//     handles, UUID, name, memory, PCI info, minor, compute capability,
//     brand, architecture, driver/CUDA versions, MIG mode and MIG devices
//     with GI/CI ids, profiles and UUIDs; enough for NVIDIA's
//     k8s-device-plugin (go-nvml) and nvidia-ml-py (pynvml) unmodified.
//   - generic.c: every other driver library, compiled once per SONAME; it
//     also builds with -m32 -nostdlib when no 32-bit libc is installed.
//   - nvidia-smi.c: prints the versions and one line per accessible GPU.
//   - tool.c: the other driver binaries.
//   - cudarttest.c: a program using NVIDIA's CUDA runtime (dlopen of
//     libcudart.so.12), printing cudaRuntimeGetVersion, cudaDriverGetVersion
//     and cudaGetDeviceCount's result.
//   - cudatest.c: the in-container test program; dlopen("libcuda.so.1")
//     through the dynamic loader only, prints
//     "dlopen=ok lib=<name> devices=<n> cuda=<ver>" or "dlopen=FAIL <dlerror>".
//
// Device counting (simgpu.h) follows the behaviour of a host without the
// NVIDIA kernel module: /dev/nvidiaN counts when open(O_RDWR) succeeds or
// fails with ENXIO (present and allowed by the device cgroup); EPERM
// (denied) does not count. SIMGPU_DEV_ROOT replaces /dev for host-side tests.
//
// Each C file starts with a "//go:build ignore" line (a plain C comment)
// so that the go tool, which refuses .c files in a package without cgo,
// leaves them to gcc.
package csrc

import "embed"

// Files holds every .c and .h file of this directory.
//
//go:embed *.c *.h
var Files embed.FS
