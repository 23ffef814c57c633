//go:build ignore

/* nvidia-smi.c: a stand-in for nvidia-smi. Prints the driver version, the
 * CUDA version and one line per accessible /dev/nvidiaN. Build with
 * -DDRIVER_VERSION='"550.54.14"' -DCUDA_VERSION_STRING='"12.4"' and
 * -DSIM_PROC_ROOT='"/path/proc"' (the simulated host's proc root).
 *
 * `-q` and `--query-gpu=uuid,compute_cap --format=csv,noheader` answer in
 * nvidia-smi's formats for every GPU of the simulated host (read from
 * SIM_PROC_ROOT/driver/nvidia/gpus/<bus id>/information), as the real tool
 * does on the host: what gpu-nri's static build asks for requirement checks.
 * Each -q GPU section has NVIDIA's "FB Memory Usage" subsection (Total,
 * Reserved, Used, Free in MiB, as nvidia-smi(1) describes it) with Total
 * -DSIM_MEMORY_MIB (simhost.DefaultMemoryMiB, what the simulated NVML says);
 * a MIG device's row of the "MIG devices:" table has Memory-Usage total
 * -DSIM_MIG_MEMORY_MIB (simhost.MIGMemoryMiB).
 *
 * `-L` lists every GPU ("GPU 0: <model> (UUID: GPU-...)") and, indented, its
 * MIG devices ("  MIG 1g.10gb     Device  0: (UUID: MIG-...)"), and the plain
 * output ends with nvidia-smi's "MIG devices:" table (GPU, GI, CI, MIG
 * device index), both read from SIM_PROC_ROOT/driver/nvidia/capabilities/
 * gpu<minor>/mig/gi<X>/ci<Y> as the driver's MIG state. MIG device indexes
 * ("Device N") count the compute instances in descending GI order, unlike
 * the ascending order of gpu-nri's inventory: real NVML orders MIG devices
 * by placement, not by GI id, so a reader must join -L with the table on
 * (GPU, MIG device) and match GI/CI, never positions. A MIG device's UUID
 * is simhost.MIGUUID(gpu index, gi, ci). */
#include "simgpu.h"

#ifndef DRIVER_VERSION
#error "define DRIVER_VERSION"
#endif
#ifndef CUDA_VERSION_STRING
#error "define CUDA_VERSION_STRING"
#endif
#ifndef SIM_MEMORY_MIB
#error "define SIM_MEMORY_MIB"
#endif

#ifndef SIM_MIG_MEMORY_MIB
#error "define SIM_MIG_MEMORY_MIB"
#endif

#ifndef SIM_PROC_ROOT
#define SIM_PROC_ROOT "/proc"
#endif

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* field copies the value of "Key: value" from an information file. */
static void field(const char *file, const char *key, char *out, size_t n)
{
	char line[512];
	FILE *f = fopen(file, "r");
	size_t k = strlen(key);

	out[0] = '\0';
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		char *v;
		if (strncmp(line, key, k) != 0 || line[k] != ':')
			continue;
		v = line + k + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		snprintf(out, n, "%s", v);
		break;
	}
	fclose(f);
}

/* query prints every simulated GPU: -q format (csv == 0) or
 * "uuid, compute_cap" lines (csv == 1). */
static int query(int csv)
{
	char dir[4096], *names[SIMGPU_MAX];
	int n = 0, i;
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof dir, "%s/driver/nvidia/gpus", SIM_PROC_ROOT);
	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n");
		return 9;
	}
	while ((de = readdir(d)) != NULL && n < SIMGPU_MAX)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof names[0], cmpstr);
	if (!csv)
		printf("\n==============NVSMI LOG==============\n\n"
		       "Driver Version                            : %s\n"
		       "CUDA Version                              : %s\n\n"
		       "Attached GPUs                             : %d\n",
		       DRIVER_VERSION, CUDA_VERSION_STRING, n);
	for (i = 0; i < n; i++) {
		char file[8192], uuid[128], model[128];
		snprintf(file, sizeof file, "%s/%s/information", dir, names[i]);
		field(file, "GPU UUID", uuid, sizeof uuid);
		field(file, "Model", model, sizeof model);
		if (csv)
			printf("%s, 9.0\n", uuid);
		else
			printf("GPU %s\n"
			       "    Product Name                          : %s\n"
			       "    Product Brand                         : NVIDIA\n"
			       "    Product Architecture                  : Hopper\n"
			       "    GPU UUID                              : %s\n"
			       "    FB Memory Usage\n"
			       "        Total                             : %d MiB\n"
			       "        Reserved                          : 0 MiB\n"
			       "        Used                              : 0 MiB\n"
			       "        Free                              : %d MiB\n",
			       names[i], model, uuid, SIM_MEMORY_MIB, SIM_MEMORY_MIB);
		free(names[i]);
	}
	return 0;
}

static int cmpint_desc(const void *a, const void *b)
{
	const int *x = a, *y = b;
	return x[0] != y[0] ? y[0] - x[0] : x[1] - y[1];
}

/* numbered fills ns with N of every entry "<prefix>N" of dir; returns how
 * many (0 when dir cannot be read). */
static int numbered(const char *dir, const char *prefix, int *ns, int max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t k = strlen(prefix);
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max)
		if (strncmp(de->d_name, prefix, k) == 0 && de->d_name[k] != '\0' &&
		    strspn(de->d_name + k, "0123456789") == strlen(de->d_name + k))
			ns[n++] = atoi(de->d_name + k);
	closedir(d);
	return n;
}

#define MIG_MAX 64

/* migs fills ids with the (gi, ci) pairs of the GPU with minor `minor`, in
 * "Device N" order (descending GI, then ascending CI); returns how many. */
static int migs(int minor, int ids[MIG_MAX][2])
{
	char dir[4096], gidir[4200];
	int gis[MIG_MAX], cis[MIG_MAX];
	int ngi, nci, n = 0, i, j;

	snprintf(dir, sizeof dir, "%s/driver/nvidia/capabilities/gpu%d/mig", SIM_PROC_ROOT, minor);
	ngi = numbered(dir, "gi", gis, MIG_MAX);
	for (i = 0; i < ngi; i++) {
		snprintf(gidir, sizeof gidir, "%s/gi%d", dir, gis[i]);
		nci = numbered(gidir, "ci", cis, MIG_MAX);
		for (j = 0; j < nci && n < MIG_MAX; j++) {
			ids[n][0] = gis[i];
			ids[n][1] = cis[j];
			n++;
		}
	}
	qsort(ids, n, sizeof ids[0], cmpint_desc);
	return n;
}

/* mig_uuid writes simhost.MIGUUID(g, gi, ci). */
static void mig_uuid(char *out, size_t n, int g, int gi, int ci)
{
	unsigned long long v = ((unsigned long long)g << 8) + ((unsigned long long)gi << 3) + (unsigned long long)ci;
	snprintf(out, n, "MIG-%08llx-6d1f-5f2e-8c3b-%012llx", 0x3c1d0000ULL + v, 0xfeed00000000ULL + v);
}

/* gpus lists the simulated GPUs' bus ids (sorted: nvidia-smi's index
 * order) into names; returns how many, -1 without a driver. */
static int gpus(char *names[SIMGPU_MAX])
{
	char dir[4096];
	int n = 0;
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof dir, "%s/driver/nvidia/gpus", SIM_PROC_ROOT);
	d = opendir(dir);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && n < SIMGPU_MAX)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof names[0], cmpstr);
	return n;
}

/* info reads one field of GPU bus's information file. */
static void info(const char *bus, const char *key, char *out, size_t n)
{
	char file[8192];
	snprintf(file, sizeof file, "%s/driver/nvidia/gpus/%s/information", SIM_PROC_ROOT, bus);
	field(file, key, out, n);
}

/* list prints `nvidia-smi -L`. */
static int list(void)
{
	char *names[SIMGPU_MAX];
	int n = gpus(names), i, j;

	if (n < 0) {
		fprintf(stderr, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n");
		return 9;
	}
	for (i = 0; i < n; i++) {
		char uuid[128], model[128], minor[32], mu[128];
		int ids[MIG_MAX][2], m;
		info(names[i], "GPU UUID", uuid, sizeof uuid);
		info(names[i], "Model", model, sizeof model);
		info(names[i], "Device Minor", minor, sizeof minor);
		printf("GPU %d: %s (UUID: %s)\n", i, model, uuid);
		m = migs(atoi(minor), ids);
		for (j = 0; j < m; j++) {
			mig_uuid(mu, sizeof mu, i, ids[j][0], ids[j][1]);
			printf("  MIG 1g.10gb     Device %2d: (UUID: %s)\n", j, mu);
		}
		free(names[i]);
	}
	return 0;
}

/* mig_table prints the plain output's "MIG devices:" table; returns how
 * many MIG devices it listed. */
static int mig_table(void)
{
	char *names[SIMGPU_MAX];
	int n = gpus(names), i, j, total = 0;

	for (i = 0; i < n; i++) {
		char minor[32];
		int ids[MIG_MAX][2], m;
		info(names[i], "Device Minor", minor, sizeof minor);
		m = migs(atoi(minor), ids);
		for (j = 0; j < m; j++) {
			if (total++ == 0)
				printf("+-----------------------------------------------------------------------------------------+\n"
				       "| MIG devices:                                                                            |\n"
				       "+------------------+----------------------------------+-----------+-----------------------+\n"
				       "| GPU  GI  CI  MIG |                     Memory-Usage |        Vol|        Shared         |\n"
				       "|      ID  ID  Dev |                       BAR1-Usage | SM     Unc| CE ENC  DEC  OFA  JPG |\n"
				       "|                  |                                  |        ECC|                       |\n"
				       "|==================+==================================+===========+=======================|\n");
			printf("| %2d  %3d %3d %3d  |              13MiB / %5dMiB    | 16      0 |  1   0    1    0    1 |\n"
			       "|                  |                 0MiB / 16383MiB  |           |                       |\n"
			       "+------------------+----------------------------------+-----------+-----------------------+\n",
			       i, ids[j][0], ids[j][1], j, SIM_MIG_MEMORY_MIB);
		}
		free(names[i]);
	}
	return total;
}

int main(int argc, char **argv)
{
	int minors[SIMGPU_MAX];
	int n, i, m;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-q") == 0)
			return query(0);
		if (strncmp(argv[i], "--query-gpu=", 12) == 0)
			return query(1);
		if (strcmp(argv[i], "-L") == 0 || strcmp(argv[i], "--list-gpus") == 0)
			return list();
	}
	n = simgpu_minors(minors);

	printf("NVIDIA-SMI %s  Driver Version: %s  CUDA Version: %s\n",
	       DRIVER_VERSION, DRIVER_VERSION, CUDA_VERSION_STRING);
	for (i = 0; i < n; i++)
		printf("GPU %d: %s/nvidia%d (simulated)\n", i, simgpu_dev_root(), minors[i]);
	if (n == 0)
		printf("No devices were found\n");
	m = mig_table();
	return n == 0 && m == 0 ? 6 : 0;
}
