//go:build ignore

/* simgpu.h: device counting shared by the simulated driver sources.
 *
 * A GPU is "present" when /dev/nvidiaN (N all digits) can be opened
 * O_RDWR, or the open fails with ENXIO: with no NVIDIA kernel module loaded
 * a real character node gives ENXIO when the device cgroup allows it and
 * EPERM when it does not. Regular files (simulated nodes outside a
 * container) open successfully. SIMGPU_DEV_ROOT overrides "/dev" so tests
 * on the host can point at a simulated tree.
 */
#ifndef SIMGPU_H
#define SIMGPU_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIMGPU_MAX 256

static const char *simgpu_dev_root(void)
{
	const char *r = getenv("SIMGPU_DEV_ROOT");
	return (r != NULL && r[0] != '\0') ? r : "/dev";
}

static int simgpu_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* simgpu_minors fills minors (sorted) with the accessible GPU minors and
 * returns how many there are. */
static int simgpu_minors(int minors[SIMGPU_MAX])
{
	const char *root = simgpu_dev_root();
	DIR *d = opendir(root);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < SIMGPU_MAX) {
		const char *s = de->d_name;
		char path[4096];
		int fd;

		if (strncmp(s, "nvidia", 6) != 0 || s[6] == '\0')
			continue;
		s += 6;
		if (strspn(s, "0123456789") != strlen(s) || strlen(s) > 6)
			continue;
		snprintf(path, sizeof path, "%s/%s", root, de->d_name);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		else if (errno != ENXIO)
			continue; /* EPERM: denied by the device cgroup */
		minors[n++] = atoi(s);
	}
	closedir(d);
	qsort(minors, n, sizeof minors[0], simgpu_cmp);
	return n;
}

#endif
