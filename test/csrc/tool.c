//go:build ignore

/* tool.c: the stand-in for driver binaries other than nvidia-smi
 * (nvidia-debugdump, nvidia-persistenced, nvidia-cuda-mps-control, ...).
 * Build with -DTOOL_NAME='"nvidia-debugdump"' -DDRIVER_VERSION='"550.54.14"'. */
#include <stdio.h>

#ifndef TOOL_NAME
#define TOOL_NAME "nvidia-tool"
#endif
#ifndef DRIVER_VERSION
#error "define DRIVER_VERSION"
#endif

int main(void)
{
	printf("%s (simulated) %s\n", TOOL_NAME, DRIVER_VERSION);
	return 0;
}
