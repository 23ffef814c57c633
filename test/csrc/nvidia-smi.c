//go:build ignore

/* nvidia-smi.c: a stand-in for nvidia-smi. Prints the driver version, the
 * CUDA version and one line per accessible /dev/nvidiaN. Build with
 * -DDRIVER_VERSION='"550.54.14"' -DCUDA_VERSION_STRING='"12.4"' and
 * -DSIM_PROC_ROOT='"/path/proc"' (the simulated host's proc root).
 *
 * `-q` and `--query-gpu=uuid,compute_cap --format=csv,noheader` answer in
 * nvidia-smi's formats for every GPU of the simulated host (read from
 * SIM_PROC_ROOT/driver/nvidia/gpus/<bus id>/information), as the real tool
 * does on the host: what gpu-nri's static build asks for requirement checks. */
#include "simgpu.h"

#ifndef DRIVER_VERSION
#error "define DRIVER_VERSION"
#endif
#ifndef CUDA_VERSION_STRING
#error "define CUDA_VERSION_STRING"
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
			       "    GPU UUID                              : %s\n",
			       names[i], model, uuid);
		free(names[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int minors[SIMGPU_MAX];
	int n, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-q") == 0)
			return query(0);
		if (strncmp(argv[i], "--query-gpu=", 12) == 0)
			return query(1);
	}
	n = simgpu_minors(minors);

	printf("NVIDIA-SMI %s  Driver Version: %s  CUDA Version: %s\n",
	       DRIVER_VERSION, DRIVER_VERSION, CUDA_VERSION_STRING);
	for (i = 0; i < n; i++)
		printf("GPU %d: %s/nvidia%d (simulated)\n", i, simgpu_dev_root(), minors[i]);
	if (n == 0)
		printf("No devices were found\n");
	return n == 0 ? 6 : 0;
}
