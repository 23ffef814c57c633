//go:build ignore

/* libnvidia-ml.c: a tiny simulated NVML (libnvidia-ml.so.<ver>, SONAME
 * libnvidia-ml.so.1). Build with -DDRIVER_VERSION='"550.54.14"' and
 * -DCUDA_API_VERSION=12040. */
#include "simgpu.h"

#ifndef DRIVER_VERSION
#error "define DRIVER_VERSION, e.g. -DDRIVER_VERSION='\"550.54.14\"'"
#endif
#ifndef CUDA_API_VERSION
#error "define CUDA_API_VERSION, e.g. -DCUDA_API_VERSION=12040"
#endif

typedef int nvmlReturn_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_INSUFFICIENT_SIZE 7

static int refs;

nvmlReturn_t nvmlInit_v2(void)
{
	refs++;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit(void)
{
	return nvmlInit_v2();
}

nvmlReturn_t nvmlShutdown(void)
{
	if (refs == 0)
		return NVML_ERROR_UNINITIALIZED;
	refs--;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
	if (refs == 0)
		return NVML_ERROR_UNINITIALIZED;
	if (version == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (length < sizeof DRIVER_VERSION)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(version, DRIVER_VERSION, sizeof DRIVER_VERSION);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version)
{
	if (version == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*version = CUDA_API_VERSION;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
	return nvmlSystemGetCudaDriverVersion_v2(version);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
	int minors[SIMGPU_MAX];

	if (refs == 0)
		return NVML_ERROR_UNINITIALIZED;
	if (count == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*count = (unsigned int)simgpu_minors(minors);
	return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
	switch (r) {
	case NVML_SUCCESS:
		return "Success";
	case NVML_ERROR_UNINITIALIZED:
		return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT:
		return "Invalid Argument";
	case NVML_ERROR_INSUFFICIENT_SIZE:
		return "Insufficient Size";
	}
	return "Unknown Error";
}
