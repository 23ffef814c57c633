//go:build ignore

/* libcuda.c: a simulated CUDA driver library (libcuda.so.<ver>, SONAME
 * libcuda.so.1). Build with -DCUDA_API_VERSION=12040.
 *
 * Besides the entry points cudatest.c calls by name, it answers what
 * NVIDIA's CUDA runtime (libcudart.so.12 12.4, libcudart.so.11.0 11.8)
 * asks of a driver, found by stepping through libcudart against it:
 * libcudart dlopens libcuda.so.1, dlsyms cuGetProcAddress_v2 (falling back
 * to cuGetProcAddress) and cuInit, asks cuGetProcAddress for about 410
 * entry points by base name and CUDA version (cuGetProcAddress itself at
 * 11030 and 12000), then calls cuGetExportTable for undocumented tables by
 * UUID and calls through them. Entry points the simulation does not have
 * get a stub that fails with CUDA_ERROR_NOT_SUPPORTED; export-table entries
 * get a stub that does nothing and succeeds, except the two of the tools
 * runtime-callback-hooks table that hand out buffers.
 *
 * What works: cudaDriverGetVersion returns CUDA_API_VERSION. What does not:
 * cudaGetDeviceCount ends in cudaErrorSoftwareValidityNotEstablished (103):
 * libcudart verifies the driver through the export table d4082055-... (entry
 * 1 gets the runtime version, a nonce and a 16-byte result buffer) and the
 * simulation cannot answer NVIDIA's private check.
 *
 * SIMCUDA_TRACE=1 prints each cuGetProcAddress and cuGetExportTable query
 * and each call of a stub (with its first three arguments) on stderr. */
#include "simgpu.h"

#include <pthread.h>
#include <stdint.h>

#ifndef CUDA_API_VERSION
#error "define CUDA_API_VERSION, e.g. -DCUDA_API_VERSION=12040"
#endif

typedef int CUresult;
typedef int CUdevice;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_NOT_FOUND 500
#define CUDA_ERROR_NOT_SUPPORTED 801

/* CUdriverProcAddressQueryResult */
#define CU_GET_PROC_ADDRESS_SUCCESS 0
#define CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND 1

static int initialized;

static int trace(void)
{
	const char *t = getenv("SIMCUDA_TRACE");
	return t != NULL && t[0] == '1';
}

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

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, uint64_t flags, int *status);
CUresult cuGetExportTable(const void **table, const void *id);
CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, uint64_t flags);

static int valid_device(CUdevice dev)
{
	int minors[SIMGPU_MAX];

	return dev >= 0 && dev < simgpu_minors(minors);
}

/* cuDeviceTotalMem_v2: every simulated GPU has 80 GiB (an H100 80GB). */
CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
	if (bytes == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!valid_device(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	*bytes = (size_t)80 << 30;
	return CUDA_SUCCESS;
}

/* cuDeviceGetAttribute answers an H100's (compute capability 9.0, 132
 * SMs) main attributes by CUdevice_attribute number, 0 for the rest. */
CUresult cuDeviceGetAttribute(int *value, int attrib, CUdevice dev)
{
	static const int attrs[][2] = {
		{1, 1024},	/* MAX_THREADS_PER_BLOCK */
		{2, 1024},	/* MAX_BLOCK_DIM_X */
		{3, 1024},	/* MAX_BLOCK_DIM_Y */
		{4, 64},	/* MAX_BLOCK_DIM_Z */
		{5, 2147483647}, /* MAX_GRID_DIM_X */
		{6, 65535},	/* MAX_GRID_DIM_Y */
		{7, 65535},	/* MAX_GRID_DIM_Z */
		{8, 49152},	/* MAX_SHARED_MEMORY_PER_BLOCK */
		{10, 32},	/* WARP_SIZE */
		{12, 65536},	/* MAX_REGISTERS_PER_BLOCK */
		{13, 1980000},	/* CLOCK_RATE (kHz) */
		{16, 132},	/* MULTIPROCESSOR_COUNT */
		{36, 2619000},	/* MEMORY_CLOCK_RATE (kHz) */
		{37, 5120},	/* GLOBAL_MEMORY_BUS_WIDTH */
		{39, 2048},	/* MAX_THREADS_PER_MULTIPROCESSOR */
		{41, 1},	/* UNIFIED_ADDRESSING */
		{75, 9},	/* COMPUTE_CAPABILITY_MAJOR */
		{76, 0},	/* COMPUTE_CAPABILITY_MINOR */
	};
	int minors[SIMGPU_MAX];
	size_t i;

	if (value == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!valid_device(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	*value = 0;
	for (i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
		if (attrs[i][0] == attrib)
			*value = attrs[i][1];
	/* PCI bus and domain as simhost.PCIBusID numbers them (minor = index) */
	simgpu_minors(minors);
	if (attrib == 33) /* PCI_BUS_ID */
		*value = 0x10 * (minors[dev] % 15 + 1);
	if (attrib == 50) /* PCI_DOMAIN_ID */
		*value = minors[dev] / 15;
	return CUDA_SUCCESS;
}

/* cuDeviceGetUuid(_v2): the 16 bytes of simhost.GPUUUID(minor). */
CUresult cuDeviceGetUuid(unsigned char uuid[16], CUdevice dev)
{
	int minors[SIMGPU_MAX];
	unsigned int v, m;
	unsigned char *p = uuid;

	if (uuid == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!valid_device(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	simgpu_minors(minors);
	m = (unsigned int)minors[dev];
	v = 0x5a1e0000u + m;
	*p++ = v >> 24, *p++ = v >> 16, *p++ = v >> 8, *p++ = v;
	*p++ = 0x1d, *p++ = 0x2c, *p++ = 0x4c, *p++ = 0x3e, *p++ = 0x9b, *p++ = 0x1a;
	*p++ = 0xc0, *p++ = 0xff, *p++ = 0xee, *p++ = m >> 16, *p++ = m >> 8, *p++ = m;
	return CUDA_SUCCESS;
}

/* cuModuleGetLoadingMode answers CU_MODULE_EAGER_LOADING (libcudart asks
 * during initialization). */
CUresult cuModuleGetLoadingMode(int *mode)
{
	if (mode == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	*mode = 1;
	return CUDA_SUCCESS;
}

/* Entry points the simulation does not have are answered with a stub that
 * fails the call with CUDA_ERROR_NOT_SUPPORTED: stub number i stands for
 * the i-th distinct name asked for, so that SIMCUDA_TRACE can say which
 * one was called. A stub takes any arguments (the callee ignores them in
 * the x86-64 and aarch64 calling conventions). */
#define SIMCUDA_STUBS 1000 /* libcudart 12.4 uses about 410 names and 15 tables */
static const char *stub_names[SIMCUDA_STUBS];
static CUresult stub_results[SIMCUDA_STUBS];
static int stub_count;

static CUresult stub_called(int i, uintptr_t a, uintptr_t b, uintptr_t c)
{
	if (trace())
		fprintf(stderr, "simcuda: called %s(%#lx, %#lx, %#lx, ...): not simulated, returns %d\n", stub_names[i],
			(unsigned long)a, (unsigned long)b, (unsigned long)c, stub_results[i]);
	return stub_results[i];
}

#define STUB(a, b, c) \
	static CUresult stub_##a##b##c(uintptr_t x, uintptr_t y, uintptr_t z)                \
	{                                                                                    \
		return stub_called(a * 100 + b * 10 + c, x, y, z);                           \
	}
#define STUB10(a, b)                                                                         \
	STUB(a, b, 0) STUB(a, b, 1) STUB(a, b, 2) STUB(a, b, 3) STUB(a, b, 4) STUB(a, b, 5) \
	STUB(a, b, 6) STUB(a, b, 7) STUB(a, b, 8) STUB(a, b, 9)
#define STUB100(a)                                                                                 \
	STUB10(a, 0) STUB10(a, 1) STUB10(a, 2) STUB10(a, 3) STUB10(a, 4) STUB10(a, 5) STUB10(a, 6) \
	STUB10(a, 7) STUB10(a, 8) STUB10(a, 9)
STUB100(0) STUB100(1) STUB100(2) STUB100(3) STUB100(4) STUB100(5) STUB100(6) STUB100(7) STUB100(8) STUB100(9)

#define REF(a, b, c) (void *)stub_##a##b##c
#define REF10(a, b)                                                                                \
	REF(a, b, 0), REF(a, b, 1), REF(a, b, 2), REF(a, b, 3), REF(a, b, 4), REF(a, b, 5), REF(a, b, 6), \
		REF(a, b, 7), REF(a, b, 8), REF(a, b, 9)
#define REF100(a)                                                                                       \
	REF10(a, 0), REF10(a, 1), REF10(a, 2), REF10(a, 3), REF10(a, 4), REF10(a, 5), REF10(a, 6), REF10(a, 7), \
		REF10(a, 8), REF10(a, 9)
static void *const stubs[SIMCUDA_STUBS] = {REF100(0), REF100(1), REF100(2), REF100(3), REF100(4),
					   REF100(5), REF100(6), REF100(7), REF100(8), REF100(9)};

static pthread_mutex_t stub_lock = PTHREAD_MUTEX_INITIALIZER;

static void *stub_for_locked(const char *name, CUresult result)
{
	int i;

	for (i = 0; i < stub_count; i++)
		if (strcmp(stub_names[i], name) == 0)
			return stubs[i];
	if (stub_count == SIMCUDA_STUBS)
		return NULL;
	stub_names[stub_count] = strdup(name);
	if (stub_names[stub_count] == NULL)
		return NULL;
	stub_results[stub_count] = result;
	return stubs[stub_count++];
}

/* stub_for returns the stub standing for name (NULL when all are taken),
 * which returns result. */
static void *stub_for(const char *name, CUresult result)
{
	void *fn;

	pthread_mutex_lock(&stub_lock);
	fn = stub_for_locked(name, result);
	pthread_mutex_unlock(&stub_lock);
	return fn;
}

/* procs maps a base name and the CUDA version that introduced an ABI
 * variant to its function, as cuGetProcAddress does: the variant with the
 * highest version not above the caller's cudaVersion wins. */
struct proc {
	const char *name;
	int since;
	void *fn;
};

static const struct proc procs[] = {
	{"cuInit", 2000, (void *)cuInit},
	{"cuDriverGetVersion", 2020, (void *)cuDriverGetVersion},
	{"cuDeviceGetCount", 2000, (void *)cuDeviceGetCount},
	{"cuDeviceGet", 2000, (void *)cuDeviceGet},
	{"cuDeviceGetName", 2000, (void *)cuDeviceGetName},
	{"cuGetProcAddress", 11030, (void *)cuGetProcAddress},
	{"cuGetProcAddress", 12000, (void *)cuGetProcAddress_v2},
	{"cuDeviceTotalMem", 3020, (void *)cuDeviceTotalMem_v2},
	{"cuDeviceGetAttribute", 2000, (void *)cuDeviceGetAttribute},
	{"cuDeviceGetUuid", 9020, (void *)cuDeviceGetUuid},
	{"cuDeviceGetUuid", 11040, (void *)cuDeviceGetUuid},
	{"cuModuleGetLoadingMode", 11070, (void *)cuModuleGetLoadingMode},
	{"cuGetExportTable", 3000, (void *)cuGetExportTable},
};

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, uint64_t flags, int *status)
{
	size_t i;
	int best = -1;

	if (symbol == NULL || pfn == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	*pfn = NULL;
	for (i = 0; i < sizeof procs / sizeof procs[0]; i++)
		if (strcmp(procs[i].name, symbol) == 0 && procs[i].since <= cudaVersion && procs[i].since > best) {
			best = procs[i].since;
			*pfn = procs[i].fn;
		}
	if (*pfn == NULL && symbol[0] != '\0' && strncmp(symbol, "cu", 2) == 0)
		*pfn = stub_for(symbol, CUDA_ERROR_NOT_SUPPORTED);
	if (trace())
		fprintf(stderr, "simcuda: cuGetProcAddress %s version=%d flags=%llu -> %s\n", symbol, cudaVersion,
			(unsigned long long)flags, *pfn != NULL ? "found" : "not found");
	if (status != NULL)
		*status = *pfn != NULL ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	return *pfn != NULL ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, uint64_t flags)
{
	return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}

/* Export tables: libcudart asks for a few undocumented tables by UUID (16
 * bytes) and calls through them. Each is an array of pointers whose first
 * word is the table's size in bytes; every entry is a stub that does
 * nothing and returns CUDA_SUCCESS (traced by name). */
/* The tools runtime-callback-hooks table (a094798c-2e74-2e74-93f2-0800200c0a66):
 * libcudart calls entries 2 and 6 as (void **buffer, size_t *size) and
 * wants a buffer of at least 468 and 14 bytes; each gets zeroed memory of
 * its own. */
static const unsigned char tools_hooks_id[16] = {0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74,
						 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66};
static uint64_t hooks_buffer2[512], hooks_buffer6[512];

static CUresult hooks_entry2(void **buffer, size_t *size)
{
	if (buffer == NULL || size == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	*buffer = hooks_buffer2;
	*size = sizeof hooks_buffer2;
	return CUDA_SUCCESS;
}

static CUresult hooks_entry6(void **buffer, size_t *size)
{
	if (buffer == NULL || size == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	*buffer = hooks_buffer6;
	*size = sizeof hooks_buffer6;
	return CUDA_SUCCESS;
}

#define SIMCUDA_TABLES 16
#define SIMCUDA_TABLE_LEN 64
static unsigned char table_ids[SIMCUDA_TABLES][16];
static const void *tables[SIMCUDA_TABLES][SIMCUDA_TABLE_LEN];
static int table_count;

static CUresult export_table_locked(const void **table, const unsigned char *u)
{
	int t, i;

	for (t = 0; t < table_count; t++)
		if (memcmp(table_ids[t], u, 16) == 0) {
			*table = tables[t];
			return CUDA_SUCCESS;
		}
	if (table_count == SIMCUDA_TABLES)
		return CUDA_ERROR_NOT_SUPPORTED;
	t = table_count++;
	memcpy(table_ids[t], u, 16);
	tables[t][0] = (const void *)(uintptr_t)sizeof tables[t];
	for (i = 1; i < SIMCUDA_TABLE_LEN; i++) {
		char name[64];

		snprintf(name, sizeof name, "export table %02x%02x%02x%02x entry %d", u[0], u[1], u[2], u[3], i);
		tables[t][i] = stub_for(name, CUDA_SUCCESS);
	}
	if (memcmp(u, tools_hooks_id, 16) == 0) {
		tables[t][2] = (const void *)hooks_entry2;
		tables[t][6] = (const void *)hooks_entry6;
	}
	*table = tables[t];
	return CUDA_SUCCESS;
}

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

CUresult cuGetExportTable(const void **table, const void *id)
{
	const unsigned char *u = id;
	CUresult rc;

	if (table == NULL || id == NULL)
		return CUDA_ERROR_INVALID_VALUE;
	if (trace())
		fprintf(stderr, "simcuda: cuGetExportTable %02x%02x%02x%02x-...\n", u[0], u[1], u[2], u[3]);
	pthread_mutex_lock(&table_lock);
	rc = export_table_locked(table, u);
	pthread_mutex_unlock(&table_lock);
	return rc;
}
