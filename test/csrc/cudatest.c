//go:build ignore

/* cudatest.c: the in-container test program. It dlopens the CUDA driver
 * library by name (argv[1], default libcuda.so.1) the way CUDA programs
 * do, relying on the dynamic loader alone (no LD_LIBRARY_PATH), and prints
 *   dlopen=ok lib=<name> devices=<n> cuda=<ver>
 * or
 *   dlopen=FAIL <dlerror>      (exit 1)
 */
#include <dlfcn.h>
#include <stdio.h>

typedef int (*cu_init_fn)(unsigned int);
typedef int (*cu_int_fn)(int *);

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "libcuda.so.1";
	void *h = dlopen(name, RTLD_NOW);
	cu_init_fn init;
	cu_int_fn version, count;
	int ver = 0, n = 0, rc;

	if (h == NULL) {
		printf("dlopen=FAIL %s\n", dlerror());
		return 1;
	}
	init = (cu_init_fn)dlsym(h, "cuInit");
	version = (cu_int_fn)dlsym(h, "cuDriverGetVersion");
	count = (cu_int_fn)dlsym(h, "cuDeviceGetCount");
	if (init == NULL || version == NULL || count == NULL) {
		printf("dlopen=FAIL missing CUDA symbols in %s\n", name);
		return 1;
	}
	if ((rc = init(0)) != 0) {
		printf("dlopen=FAIL cuInit returned %d\n", rc);
		return 1;
	}
	if ((rc = version(&ver)) != 0 || (rc = count(&n)) != 0) {
		printf("dlopen=FAIL CUDA call returned %d\n", rc);
		return 1;
	}
	printf("dlopen=ok lib=%s devices=%d cuda=%d\n", name, n, ver);
	return 0;
}
