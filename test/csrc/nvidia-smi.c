//go:build ignore

/* nvidia-smi.c: a stand-in for nvidia-smi. Prints the driver version, the
 * CUDA version and one line per accessible /dev/nvidiaN. Build with
 * -DDRIVER_VERSION='"550.54.14"' -DCUDA_VERSION_STRING='"12.4"'. */
#include "simgpu.h"

#ifndef DRIVER_VERSION
#error "define DRIVER_VERSION"
#endif
#ifndef CUDA_VERSION_STRING
#error "define CUDA_VERSION_STRING"
#endif

int main(void)
{
	int minors[SIMGPU_MAX];
	int n = simgpu_minors(minors);
	int i;

	printf("NVIDIA-SMI %s  Driver Version: %s  CUDA Version: %s\n",
	       DRIVER_VERSION, DRIVER_VERSION, CUDA_VERSION_STRING);
	for (i = 0; i < n; i++)
		printf("GPU %d: %s/nvidia%d (simulated)\n", i, simgpu_dev_root(), minors[i]);
	if (n == 0)
		printf("No devices were found\n");
	return n == 0 ? 6 : 0;
}
