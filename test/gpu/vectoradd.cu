// vectoradd.cu: the GPU check's CUDA program (test/gpu/check.sh). It adds two
// vectors of N floats with a real kernel on every visible GPU and checks each
// result on the host, printing one line per GPU:
//   vectoradd gpu=<i> name=<name> uuid=GPU-<uuid> bus=<pci bus id> n=<N> ok
// then "vectoradd devices=<count> ok" (exit 0), or "vectoradd FAIL <why>"
// (exit 1). Built by `make gpu-vectoradd` with nvcc (CUDA 11.8 from Debian),
// linked with the static CUDA runtime: in a container it needs only the
// driver gpu-nri injects (libcuda.so.1 and the device nodes).
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

__global__ void add(const float *a, const float *b, float *c, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		c[i] = a[i] + b[i];
}

static int fail(const char *what, cudaError_t err)
{
	printf("vectoradd FAIL %s: %s (%s, %d)\n", what, cudaGetErrorString(err), cudaGetErrorName(err), (int)err);
	return 1;
}

int main()
{
	const int n = 1 << 20;
	int count = 0, driver = 0;
	cudaError_t err;

	if ((err = cudaDriverGetVersion(&driver)) != cudaSuccess)
		return fail("cudaDriverGetVersion", err);
	if ((err = cudaGetDeviceCount(&count)) != cudaSuccess)
		return fail("cudaGetDeviceCount", err);
	printf("vectoradd driver=%d devices=%d\n", driver, count);
	float *a = (float *)malloc(n * sizeof(float)), *b = (float *)malloc(n * sizeof(float)),
	      *c = (float *)malloc(n * sizeof(float));
	for (int i = 0; i < n; i++) {
		a[i] = (float)i;
		b[i] = 2.0f * (float)i;
	}
	for (int d = 0; d < count; d++) {
		cudaDeviceProp p;
		char bus[32];
		float *da, *db, *dc;
		if ((err = cudaSetDevice(d)) != cudaSuccess)
			return fail("cudaSetDevice", err);
		if ((err = cudaGetDeviceProperties(&p, d)) != cudaSuccess)
			return fail("cudaGetDeviceProperties", err);
		cudaDeviceGetPCIBusId(bus, sizeof bus, d);
		if ((err = cudaMalloc(&da, n * sizeof(float))) != cudaSuccess || (err = cudaMalloc(&db, n * sizeof(float))) != cudaSuccess ||
		    (err = cudaMalloc(&dc, n * sizeof(float))) != cudaSuccess)
			return fail("cudaMalloc", err);
		cudaMemcpy(da, a, n * sizeof(float), cudaMemcpyHostToDevice);
		cudaMemcpy(db, b, n * sizeof(float), cudaMemcpyHostToDevice);
		add<<<(n + 255) / 256, 256>>>(da, db, dc, n);
		if ((err = cudaGetLastError()) != cudaSuccess)
			return fail("kernel launch", err);
		if ((err = cudaMemcpy(c, dc, n * sizeof(float), cudaMemcpyDeviceToHost)) != cudaSuccess)
			return fail("cudaMemcpy", err);
		for (int i = 0; i < n; i++)
			if (c[i] != 3.0f * (float)i) {
				printf("vectoradd FAIL gpu=%d c[%d]=%f want %f\n", d, i, c[i], 3.0f * (float)i);
				return 1;
			}
		printf("vectoradd gpu=%d name=%s uuid=GPU-", d, p.name);
		for (int k = 0; k < 16; k++)
			printf("%02x%s", (unsigned char)p.uuid.bytes[k], (k == 3 || k == 5 || k == 7 || k == 9) ? "-" : "");
		printf(" bus=%s n=%d ok\n", bus, n);
		cudaFree(da);
		cudaFree(db);
		cudaFree(dc);
	}
	if (count == 0) {
		printf("vectoradd FAIL no device\n");
		return 1;
	}
	printf("vectoradd devices=%d ok\n", count);
	return 0;
}
