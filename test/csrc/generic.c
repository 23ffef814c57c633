//go:build ignore

/* generic.c: the stand-in for every other driver library. It is compiled
 * once per library with that library's SONAME (-Wl,-soname,...), and
 * builds with or without libc (-nostdlib for 32-bit copies when no 32-bit
 * libc is installed). */

#ifndef SIMGPU_LIBRARY
#define SIMGPU_LIBRARY "generic"
#endif

const char simgpu_library[] = SIMGPU_LIBRARY;

const char *simgpu_library_name(void)
{
	return simgpu_library;
}
