//go:build ignore

/* libcuda.c: a simulated CUDA driver library (libcuda.so.<ver>, SONAME
 * libcuda.so.1). Build with -DCUDA_API_VERSION=12040. */
#include "simgpu.h"

#ifndef CUDA_API_VERSION
#error "define CUDA_API_VERSION, e.g. -DCUDA_API_VERSION=12040"
#endif

typedef int CUresult;
typedef int CUdevice;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_INVALID_DEVICE 101

static int initialized;

CUresult cuInit(unsigned int flags)
{
	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	initialized = 1;
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *version)
{
	if (version == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	*version = CUDA_API_VERSION;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count)
{
	int minors[SIMGPU_MAX];

	if (count == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	*count = simgpu_minors(minors);
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
	int minors[SIMGPU_MAX];

	if (dev == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (ordinal < 0 || ordinal >= simgpu_minors(minors))
		return CUDA_ERROR_INVALID_DEVICE;
	*dev = ordinal;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	int minors[SIMGPU_MAX];

	if (name == NULL || len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (dev < 0 || dev >= simgpu_minors(minors))
		return CUDA_ERROR_INVALID_DEVICE;
	snprintf(name, (size_t)len, "NVIDIA Simulated GPU (minor %d)", minors[dev]);
	return CUDA_SUCCESS;
}
