//go:build ignore

/* libnvidia-ml.c: a simulated NVML (libnvidia-ml.so.<ver>, SONAME
 * libnvidia-ml.so.1), enough of NVML's C ABI for NVIDIA's own clients
 * (k8s-device-plugin through go-nvml/go-nvlib, nvidia-ml-py/pynvml) and
 * gpu-nri's cgo build (pkg/nvmlfacts).
 *
 * Build with -DDRIVER_VERSION='"550.54.14"', -DCUDA_API_VERSION=12040 and
 * -DSIMGPU_MANIFEST='"..."': the simulated host's GPUs as test/simhost
 * computed them (simhost.NVMLManifest), one record per GPU separated by
 * '|', fields separated by ';':
 *
 *   minor;uuid;bus id;name;memory MiB;cc major;cc minor;arch;brand;pci device id;migs
 *
 * where migs is a ','-separated list of
 *   gi:ci:gi cap minor:ci cap minor:memory MiB:slices:gi profile id:uuid
 *
 * What a process sees follows the device nodes it may open (simgpu.h): a GPU
 * is listed when /dev/nvidia<minor> counts, a MIG device when its compute
 * instance's /dev/nvidia-caps/nvidia-cap<minor> counts too. Indexes are
 * positions among the visible GPUs, sorted by PCI bus id as NVML does.
 * Everything else answers NVML_ERROR_NOT_SUPPORTED where NVIDIA's clients
 * accept that. The struct layouts are NVML's (nvml.h); no kernel is asked
 * anything. */
#include "simgpu.h"

#include <sys/stat.h>

#ifndef DRIVER_VERSION
#error "define DRIVER_VERSION, e.g. -DDRIVER_VERSION='\"550.54.14\"'"
#endif
#ifndef CUDA_API_VERSION
#error "define CUDA_API_VERSION, e.g. -DCUDA_API_VERSION=12040"
#endif
#ifndef SIMGPU_MANIFEST
#define SIMGPU_MANIFEST ""
#endif

typedef int nvmlReturn_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_UNKNOWN 999

#define NVML_DEVICE_MIG_DISABLE 0
#define NVML_DEVICE_MIG_ENABLE 1
#define NVML_GPU_INSTANCE_PROFILE_COUNT 0x12
#define NVML_COMPUTE_INSTANCE_PROFILE_COUNT 0x9

#define MAX_MIG 8

struct sim_gpu;

/* A device handle: a full GPU (parent == NULL) or a MIG device. */
struct sim_dev {
	struct sim_gpu *gpu;    /* the physical GPU */
	int is_mig;
	int gi, ci, gi_minor, ci_minor;
	unsigned long long mem_mib;
	int slices, gi_profile_id;
	char uuid[96];
};

struct sim_gpu {
	struct sim_dev dev; /* the GPU's own handle */
	int minor, index, visible;
	char bus[32], name[96];
	unsigned long long mem_mib;
	int cc_major, cc_minor, arch, brand;
	unsigned int pci_device_id;
	int nmig;
	struct sim_dev mig[MAX_MIG];
	int mig_visible[MAX_MIG];
};

/* GPU and compute instance handles point into these. */
struct sim_gi {
	struct sim_dev *mig;
};
struct sim_ci {
	struct sim_dev *mig;
};

static int refs;
static int ngpus;
static struct sim_gpu gpus[SIMGPU_MAX];
static struct sim_gpu *order[SIMGPU_MAX]; /* visible GPUs by index */
static int nvisible;
static struct sim_gi gis[SIMGPU_MAX][MAX_MIG];
static struct sim_ci cis[SIMGPU_MAX][MAX_MIG];

/* counts reports whether the node dir/name counts as present (simgpu.h). */
static int counts(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return errno == ENXIO;
}

static char *next_field(char **s, char sep)
{
	char *start = *s, *p;
	if (start == NULL)
		return "";
	p = strchr(start, sep);
	if (p != NULL) {
		*p = '\0';
		*s = p + 1;
	} else {
		*s = NULL;
	}
	return start;
}

static void parse_mig(struct sim_gpu *g, char *rec)
{
	char *s = rec;
	struct sim_dev *m;
	if (g->nmig >= MAX_MIG)
		return;
	m = &g->mig[g->nmig];
	m->gpu = g;
	m->is_mig = 1;
	m->gi = atoi(next_field(&s, ':'));
	m->ci = atoi(next_field(&s, ':'));
	m->gi_minor = atoi(next_field(&s, ':'));
	m->ci_minor = atoi(next_field(&s, ':'));
	m->mem_mib = strtoull(next_field(&s, ':'), NULL, 10);
	m->slices = atoi(next_field(&s, ':'));
	m->gi_profile_id = atoi(next_field(&s, ':'));
	snprintf(m->uuid, sizeof m->uuid, "%s", next_field(&s, ':'));
	g->nmig++;
}

static void parse_gpu(char *rec)
{
	struct sim_gpu *g;
	char *s = rec, *migs, *one;
	if (ngpus >= SIMGPU_MAX || rec[0] == '\0')
		return;
	g = &gpus[ngpus++];
	memset(g, 0, sizeof *g);
	g->dev.gpu = g;
	g->minor = atoi(next_field(&s, ';'));
	snprintf(g->dev.uuid, sizeof g->dev.uuid, "%s", next_field(&s, ';'));
	snprintf(g->bus, sizeof g->bus, "%s", next_field(&s, ';'));
	snprintf(g->name, sizeof g->name, "%s", next_field(&s, ';'));
	g->mem_mib = strtoull(next_field(&s, ';'), NULL, 10);
	g->cc_major = atoi(next_field(&s, ';'));
	g->cc_minor = atoi(next_field(&s, ';'));
	g->arch = atoi(next_field(&s, ';'));
	g->brand = atoi(next_field(&s, ';'));
	g->pci_device_id = (unsigned int)strtoul(next_field(&s, ';'), NULL, 0);
	migs = next_field(&s, ';');
	while (migs != NULL && migs[0] != '\0') {
		one = next_field(&migs, ',');
		parse_mig(g, one);
	}
}

static int cmp_bus(const void *a, const void *b)
{
	return strcmp((*(struct sim_gpu *const *)a)->bus, (*(struct sim_gpu *const *)b)->bus);
}

/* load parses the manifest and decides, from the device nodes this
 * process may open, what it sees. */
static void load(void)
{
	static char buf[65536];
	char *s = buf, path[4200];
	const char *root = simgpu_dev_root();
	int i, j;

	snprintf(buf, sizeof buf, "%s", SIMGPU_MANIFEST);
	ngpus = 0;
	nvisible = 0;
	while (s != NULL)
		parse_gpu(next_field(&s, '|'));
	for (i = 0; i < ngpus; i++) {
		struct sim_gpu *g = &gpus[i];
		snprintf(path, sizeof path, "%s/nvidia%d", root, g->minor);
		g->visible = counts(path);
		for (j = 0; j < g->nmig; j++) {
			snprintf(path, sizeof path, "%s/nvidia-caps/nvidia-cap%d", root, g->mig[j].ci_minor);
			g->mig_visible[j] = g->visible && counts(path);
			gis[i][j].mig = &g->mig[j];
			cis[i][j].mig = &g->mig[j];
		}
		if (g->visible)
			order[nvisible++] = g;
	}
	qsort(order, nvisible, sizeof order[0], cmp_bus);
	for (i = 0; i < nvisible; i++)
		order[i]->index = i;
}

#define NEED_INIT()                               \
	do {                                      \
		if (refs == 0)                    \
			return NVML_ERROR_UNINITIALIZED; \
	} while (0)

static nvmlReturn_t copy_str(char *dst, unsigned int length, const char *src)
{
	if (dst == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (length < strlen(src) + 1)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(dst, src, strlen(src) + 1);
	return NVML_SUCCESS;
}

/* dev_ok checks that d is one of our handles. */
static int dev_ok(const struct sim_dev *d)
{
	int i, j;
	for (i = 0; i < ngpus; i++) {
		if (d == &gpus[i].dev)
			return gpus[i].visible;
		for (j = 0; j < gpus[i].nmig; j++)
			if (d == &gpus[i].mig[j])
				return gpus[i].mig_visible[j];
	}
	return 0;
}

#define DEV(h) struct sim_dev *d = (struct sim_dev *)(h); \
	NEED_INIT(); \
	if (d == NULL || !dev_ok(d)) \
		return NVML_ERROR_INVALID_ARGUMENT

/* ---- init, system ---- */

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
	(void)flags;
	if (refs++ == 0)
		load();
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void)
{
	if (refs == 0)
		return NVML_ERROR_UNINITIALIZED;
	refs--;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
	NEED_INIT();
	return copy_str(version, length, DRIVER_VERSION);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
	NEED_INIT();
	/* NVML's version is "12." followed by the driver version. */
	char v[64];
	snprintf(v, sizeof v, "%d.%s", CUDA_API_VERSION / 1000, DRIVER_VERSION);
	return copy_str(version, length, v);
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

/* ---- device enumeration ---- */

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
	NEED_INIT();
	if (count == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*count = (unsigned int)nvisible;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device)
{
	NEED_INIT();
	if (device == NULL || index >= (unsigned int)nvisible)
		return NVML_ERROR_INVALID_ARGUMENT;
	*device = &order[index]->dev;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, void **device)
{
	return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, void **device)
{
	int i, j;
	NEED_INIT();
	if (uuid == NULL || device == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (i = 0; i < ngpus; i++) {
		if (gpus[i].visible && strcmp(gpus[i].dev.uuid, uuid) == 0) {
			*device = &gpus[i].dev;
			return NVML_SUCCESS;
		}
		for (j = 0; j < gpus[i].nmig; j++)
			if (gpus[i].mig_visible[j] && strcmp(gpus[i].mig[j].uuid, uuid) == 0) {
				*device = &gpus[i].mig[j];
				return NVML_SUCCESS;
			}
	}
	return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus, void **device)
{
	int i;
	NEED_INIT();
	if (bus == NULL || device == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (i = 0; i < nvisible; i++) {
		/* NVML accepts the 4- and 8-digit domain forms, any case. */
		const char *ours = order[i]->bus, *theirs = bus;
		size_t lo = strlen(ours), lt = strlen(theirs);
		if (lt >= 12 && lo >= 12 && strcasecmp(ours + lo - 12, theirs + lt - 12) == 0) {
			*device = &order[i]->dev;
			return NVML_SUCCESS;
		}
	}
	return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *bus, void **device)
{
	return nvmlDeviceGetHandleByPciBusId_v2(bus, device);
}

/* ---- device facts ---- */

nvmlReturn_t nvmlDeviceGetUUID(void *h, char *uuid, unsigned int length)
{
	DEV(h);
	return copy_str(uuid, length, d->uuid);
}

nvmlReturn_t nvmlDeviceGetName(void *h, char *name, unsigned int length)
{
	char n[160];
	DEV(h);
	if (!d->is_mig)
		return copy_str(name, length, d->gpu->name);
	snprintf(n, sizeof n, "%s MIG %dg.%llugb", d->gpu->name, d->slices, (d->mem_mib + 1023) / 1024);
	return copy_str(name, length, n);
}

nvmlReturn_t nvmlDeviceGetIndex(void *h, unsigned int *index)
{
	DEV(h);
	if (index == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*index = (unsigned int)d->gpu->index;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMinorNumber(void *h, unsigned int *minor)
{
	DEV(h);
	if (minor == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (d->is_mig)
		return NVML_ERROR_NOT_SUPPORTED;
	*minor = (unsigned int)d->gpu->minor;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetBrand(void *h, int *brand)
{
	DEV(h);
	if (brand == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*brand = d->gpu->brand;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetArchitecture(void *h, unsigned int *arch)
{
	DEV(h);
	if (arch == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*arch = (unsigned int)d->gpu->arch;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(void *h, int *major, int *minor)
{
	DEV(h);
	if (major == NULL || minor == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*major = d->gpu->cc_major;
	*minor = d->gpu->cc_minor;
	return NVML_SUCCESS;
}

typedef struct {
	unsigned long long total, free, used;
} sim_memory_v1;

typedef struct {
	unsigned int version;
	unsigned long long total, reserved, free, used;
} sim_memory_v2;

static unsigned long long dev_mem_mib(const struct sim_dev *d)
{
	return d->is_mig ? d->mem_mib : d->gpu->mem_mib;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(void *h, sim_memory_v1 *m)
{
	DEV(h);
	if (m == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	m->total = dev_mem_mib(d) << 20;
	m->used = 0;
	m->free = m->total;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(void *h, sim_memory_v2 *m)
{
	DEV(h);
	if (m == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	m->total = dev_mem_mib(d) << 20;
	m->reserved = 0;
	m->used = 0;
	m->free = m->total;
	return NVML_SUCCESS;
}

typedef struct {
	char busIdLegacy[16];
	unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
	char busId[32];
} sim_pci_info;

nvmlReturn_t nvmlDeviceGetPciInfo_v3(void *h, sim_pci_info *p)
{
	unsigned int dom = 0, bus = 0, dev = 0, fn = 0;
	DEV(h);
	if (p == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (sscanf(d->gpu->bus, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4)
		return NVML_ERROR_UNKNOWN;
	memset(p, 0, sizeof *p);
	p->domain = dom;
	p->bus = bus;
	p->device = dev;
	p->pciDeviceId = d->gpu->pci_device_id;
	p->pciSubSystemId = 0x16c110de;
	snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "%04X:%02X:%02X.0", dom, bus, dev);
	snprintf(p->busId, sizeof p->busId, "%08X:%02X:%02X.0", dom, bus, dev);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(void *h, sim_pci_info *p) { return nvmlDeviceGetPciInfo_v3(h, p); }
nvmlReturn_t nvmlDeviceGetPciInfo(void *h, sim_pci_info *p) { return nvmlDeviceGetPciInfo_v3(h, p); }

nvmlReturn_t nvmlDeviceGetNumaNode(void *h, unsigned int *node)
{
	DEV(h);
	(void)node;
	return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(void *h, int *mode)
{
	DEV(h);
	if (mode == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*mode = 1;
	return NVML_SUCCESS;
}

/* ---- MIG ---- */

nvmlReturn_t nvmlDeviceGetMigMode(void *h, unsigned int *current, unsigned int *pending)
{
	DEV(h);
	if (current == NULL || pending == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (d->is_mig)
		return NVML_ERROR_NOT_SUPPORTED;
	*current = *pending = d->gpu->nmig > 0 ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(void *h, unsigned int *is_mig)
{
	DEV(h);
	if (is_mig == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*is_mig = (unsigned int)d->is_mig;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(void *h, unsigned int *count)
{
	DEV(h);
	if (count == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (d->is_mig)
		return NVML_ERROR_NOT_SUPPORTED;
	*count = d->gpu->nmig > 0 ? 7 : 0;
	return NVML_SUCCESS;
}

/* mig_by_index returns the index-th visible MIG device of g, ordered as
 * NVML orders them (here: ascending GPU instance, then compute instance,
 * the manifest's order), or NULL. */
static struct sim_dev *mig_by_index(struct sim_gpu *g, unsigned int index)
{
	int j;
	unsigned int k = 0;
	for (j = 0; j < g->nmig; j++)
		if (g->mig_visible[j] && k++ == index)
			return &g->mig[j];
	return NULL;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(void *h, unsigned int index, void **mig)
{
	struct sim_dev *m;
	DEV(h);
	if (mig == NULL || d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (d->gpu->nmig == 0)
		return NVML_ERROR_NOT_SUPPORTED;
	if (index >= 7)
		return NVML_ERROR_INVALID_ARGUMENT;
	m = mig_by_index(d->gpu, index);
	if (m == NULL)
		return NVML_ERROR_NOT_FOUND;
	*mig = m;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(void *h, void **parent)
{
	DEV(h);
	if (parent == NULL || !d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	*parent = &d->gpu->dev;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(void *h, unsigned int *id)
{
	DEV(h);
	if (id == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (!d->is_mig)
		return NVML_ERROR_NOT_SUPPORTED;
	*id = (unsigned int)d->gi;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(void *h, unsigned int *id)
{
	DEV(h);
	if (id == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (!d->is_mig)
		return NVML_ERROR_NOT_SUPPORTED;
	*id = (unsigned int)d->ci;
	return NVML_SUCCESS;
}

typedef struct {
	unsigned int multiprocessorCount, sharedCopyEngineCount, sharedDecoderCount, sharedEncoderCount,
		sharedJpegCount, sharedOfaCount, gpuInstanceSliceCount, computeInstanceSliceCount;
	unsigned long long memorySizeMB;
} sim_attributes;

nvmlReturn_t nvmlDeviceGetAttributes_v2(void *h, sim_attributes *a)
{
	DEV(h);
	if (a == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	memset(a, 0, sizeof *a);
	if (!d->is_mig) {
		a->multiprocessorCount = 132;
		a->sharedCopyEngineCount = 8;
		a->gpuInstanceSliceCount = 7;
		a->computeInstanceSliceCount = 7;
		a->memorySizeMB = d->gpu->mem_mib;
		return NVML_SUCCESS;
	}
	a->multiprocessorCount = 16 * (unsigned int)d->slices;
	a->sharedCopyEngineCount = 1;
	a->sharedDecoderCount = 1;
	a->sharedJpegCount = 1;
	a->gpuInstanceSliceCount = (unsigned int)d->slices;
	a->computeInstanceSliceCount = (unsigned int)d->slices;
	a->memorySizeMB = d->mem_mib;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetAttributes(void *h, sim_attributes *a) { return nvmlDeviceGetAttributes_v2(h, a); }

/* GPU instance profiles: NVML's profile index (NVML_GPU_INSTANCE_PROFILE_*
 * 1, 2, 3, 4, 7 slices at indexes 0, 1, 2, 3, 4) and the device's own
 * profile ids (H100 80GB: 19, 14, 9, 5, 0). */
static const struct {
	int index, slices, id;
} gi_profiles[] = {{0, 1, 19}, {1, 2, 14}, {2, 3, 9}, {3, 4, 5}, {4, 7, 0}};

typedef struct {
	unsigned int id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount, copyEngineCount,
		decoderCount, encoderCount, jpegCount, ofaCount;
	unsigned long long memorySizeMB;
} sim_gi_profile;

nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(void *h, unsigned int profile, sim_gi_profile *p)
{
	size_t i;
	DEV(h);
	if (p == NULL || d->is_mig || profile >= NVML_GPU_INSTANCE_PROFILE_COUNT)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (d->gpu->nmig == 0)
		return NVML_ERROR_NOT_SUPPORTED;
	for (i = 0; i < sizeof gi_profiles / sizeof gi_profiles[0]; i++) {
		unsigned int s;
		if (gi_profiles[i].index != (int)profile)
			continue;
		s = (unsigned int)gi_profiles[i].slices;
		memset(p, 0, sizeof *p);
		p->id = (unsigned int)gi_profiles[i].id;
		p->sliceCount = s;
		p->instanceCount = 7 / s;
		p->multiprocessorCount = 16 * s;
		p->copyEngineCount = s;
		p->decoderCount = s;
		p->jpegCount = s;
		/* one slice is an eighth of the memory, less what the driver keeps */
		p->memorySizeMB = (d->gpu->mem_mib / 8 - 211) * (s == 7 ? 8 : (s == 3 ? 4 : s));
		return NVML_SUCCESS;
	}
	return NVML_ERROR_NOT_SUPPORTED;
}

static struct sim_gi *gi_of(void *h)
{
	int i, j;
	for (i = 0; i < ngpus; i++)
		for (j = 0; j < gpus[i].nmig; j++)
			if (h == &gis[i][j] && gpus[i].mig_visible[j])
				return &gis[i][j];
	return NULL;
}

static struct sim_ci *ci_of(void *h)
{
	int i, j;
	for (i = 0; i < ngpus; i++)
		for (j = 0; j < gpus[i].nmig; j++)
			if (h == &cis[i][j] && gpus[i].mig_visible[j])
				return &cis[i][j];
	return NULL;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceById(void *h, unsigned int id, void **gi)
{
	int i, j;
	DEV(h);
	if (gi == NULL || d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (d->gpu->nmig == 0)
		return NVML_ERROR_NOT_SUPPORTED;
	i = (int)(d->gpu - gpus);
	for (j = 0; j < d->gpu->nmig; j++)
		if (d->gpu->mig_visible[j] && d->gpu->mig[j].gi == (int)id) {
			*gi = &gis[i][j];
			return NVML_SUCCESS;
		}
	return NVML_ERROR_NOT_FOUND;
}

typedef struct {
	void *device;
	unsigned int id, profileId;
	unsigned int start, size;
} sim_gi_info;

nvmlReturn_t nvmlGpuInstanceGetInfo(void *h, sim_gi_info *info)
{
	struct sim_gi *g;
	NEED_INIT();
	g = gi_of(h);
	if (g == NULL || info == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	info->device = &g->mig->gpu->dev;
	info->id = (unsigned int)g->mig->gi;
	info->profileId = (unsigned int)g->mig->gi_profile_id;
	info->start = (unsigned int)(g->mig - g->mig->gpu->mig);
	info->size = (unsigned int)g->mig->slices;
	return NVML_SUCCESS;
}

typedef struct {
	unsigned int id, sliceCount, instanceCount, multiprocessorCount, sharedCopyEngineCount,
		sharedDecoderCount, sharedEncoderCount, sharedJpegCount, sharedOfaCount;
} sim_ci_profile;

/* Compute instance profiles: the one that spans the whole GPU instance,
 * at NVML's index for that slice count (1, 2, 3, 4, 7 at 0, 1, 2, 3, 4),
 * with profile id = index, shared engines. */
nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfo(void *h, unsigned int profile, unsigned int eng,
							  sim_ci_profile *p)
{
	struct sim_gi *g;
	int s, idx;
	NEED_INIT();
	g = gi_of(h);
	if (g == NULL || p == NULL || profile >= NVML_COMPUTE_INSTANCE_PROFILE_COUNT || eng != 0)
		return NVML_ERROR_INVALID_ARGUMENT;
	s = g->mig->slices;
	idx = s == 7 ? 4 : s - 1;
	if ((int)profile != idx)
		return NVML_ERROR_NOT_SUPPORTED;
	memset(p, 0, sizeof *p);
	p->id = profile;
	p->sliceCount = (unsigned int)s;
	p->instanceCount = 1;
	p->multiprocessorCount = 16 * (unsigned int)s;
	p->sharedCopyEngineCount = (unsigned int)s;
	p->sharedDecoderCount = (unsigned int)s;
	p->sharedJpegCount = (unsigned int)s;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceById(void *h, unsigned int id, void **ci)
{
	struct sim_gi *g;
	int i, j;
	NEED_INIT();
	g = gi_of(h);
	if (g == NULL || ci == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (g->mig->ci != (int)id)
		return NVML_ERROR_NOT_FOUND;
	i = (int)(g->mig->gpu - gpus);
	j = (int)(g->mig - g->mig->gpu->mig);
	*ci = &cis[i][j];
	return NVML_SUCCESS;
}

typedef struct {
	void *device, *gpuInstance;
	unsigned int id, profileId;
	unsigned int start, size;
} sim_ci_info;

nvmlReturn_t nvmlComputeInstanceGetInfo_v2(void *h, sim_ci_info *info)
{
	struct sim_ci *c;
	int i, j, s;
	NEED_INIT();
	c = ci_of(h);
	if (c == NULL || info == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	i = (int)(c->mig->gpu - gpus);
	j = (int)(c->mig - c->mig->gpu->mig);
	s = c->mig->slices;
	info->device = &c->mig->gpu->dev;
	info->gpuInstance = &gis[i][j];
	info->id = (unsigned int)c->mig->ci;
	info->profileId = (unsigned int)(s == 7 ? 4 : s - 1);
	info->start = 0;
	info->size = (unsigned int)s;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlComputeInstanceGetInfo(void *h, sim_ci_info *info) { return nvmlComputeInstanceGetInfo_v2(h, info); }

/* ---- what a healthy idle GPU answers elsewhere ---- */

nvmlReturn_t nvmlDeviceGetSupportedEventTypes(void *h, unsigned long long *types)
{
	DEV(h);
	if (types == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*types = 0;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(void *a, void *b, int *level)
{
	(void)b;
	DEV(a);
	if (level == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*level = 40; /* NVML_TOPOLOGY_NODE: same NUMA node, no NVLink */
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkState(void *h, unsigned int link, int *active)
{
	DEV(h);
	(void)link;
	(void)active;
	return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(void *h, unsigned int link, sim_pci_info *p)
{
	DEV(h);
	(void)link;
	(void)p;
	return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo(void *h, unsigned int link, sim_pci_info *p)
{
	return nvmlDeviceGetNvLinkRemotePciInfo_v2(h, link, p);
}

nvmlReturn_t nvmlDeviceGetP2PStatus(void *a, void *b, int index, int *status)
{
	(void)b;
	(void)index;
	DEV(a);
	if (status == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*status = 4; /* NVML_P2P_STATUS_NOT_SUPPORTED */
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
	case NVML_ERROR_NOT_SUPPORTED:
		return "Not Supported";
	case NVML_ERROR_NO_PERMISSION:
		return "Insufficient Permissions";
	case NVML_ERROR_NOT_FOUND:
		return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE:
		return "Insufficient Size";
	case NVML_ERROR_FUNCTION_NOT_FOUND:
		return "Function Not Found";
	}
	return "Unknown Error";
}
