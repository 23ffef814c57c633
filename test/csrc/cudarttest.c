//go:build ignore

/* cudarttest.c: a program that uses NVIDIA's CUDA runtime the way a CUDA
 * application does, with no CUDA headers: it dlopens the runtime (argv[1],
 * default libcudart.so.12) through the dynamic loader, calls
 * cudaRuntimeGetVersion, cudaDriverGetVersion and cudaGetDeviceCount, and
 * prints one line
 *   cudart=ok runtime=<v> driver=<v> driver_rc=<rc> count_rc=<rc> count_err=<name> count=<n>
 * (count is -1 unless count_rc is 0), or
 *   cudart=FAIL <dlerror>   (exit 1).
 * libcudart finds the driver itself (dlopen("libcuda.so.1")): with NVIDIA's
 * driver and no kernel module count_rc is 100 (cudaErrorNoDevice); without a
 * driver on the loader path it is 35 (cudaErrorInsufficientDriver). */
#include <dlfcn.h>
#include <stdio.h>

typedef int (*int_fn)(int *);
typedef const char *(*name_fn)(int);

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "libcudart.so.12";
	void *h = dlopen(name, RTLD_NOW);
	int_fn runtime, driver, count;
	name_fn err_name;
	int rv = -1, dv = -1, n = -1, drc, crc;

	/* libcudart's exit handlers may crash after a failed initialization:
	 * the line must be out before them. */
	setvbuf(stdout, NULL, _IONBF, 0);
	if (h == NULL) {
		printf("cudart=FAIL %s\n", dlerror());
		return 1;
	}
	runtime = (int_fn)dlsym(h, "cudaRuntimeGetVersion");
	driver = (int_fn)dlsym(h, "cudaDriverGetVersion");
	count = (int_fn)dlsym(h, "cudaGetDeviceCount");
	err_name = (name_fn)dlsym(h, "cudaGetErrorName");
	if (runtime == NULL || driver == NULL || count == NULL || err_name == NULL) {
		printf("cudart=FAIL missing CUDA runtime symbols in %s\n", name);
		return 1;
	}
	runtime(&rv);
	drc = driver(&dv);
	crc = count(&n);
	if (crc != 0)
		n = -1;
	printf("cudart=ok runtime=%d driver=%d driver_rc=%d count_rc=%d count_err=%s count=%d\n", rv, dv, drc, crc,
	       err_name(crc), n);
	return 0;
}
