//go:build linux

package hook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Security regression tests: each is named after the advisory of NVIDIA's
// container toolkit whose mechanism it replays against our hook (see
// docs/threat-model.md). Every one checks that a host sentinel directory and
// the host's /etc/ld.so.cache are unchanged (guardHost).

// applyBounded runs apply and fails the test if it takes longer than d: a
// hostile root must give an error or a safe success, never a hang.
func applyBounded(t *testing.T, d time.Duration, root string, o hookproto.Options) (Report, error) {
	t.Helper()
	type res struct {
		r   Report
		err error
	}
	ch := make(chan res, 1)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	go func() { r, err := apply(ctx, root, o); ch <- res{r, err} }()
	select {
	case r := <-ch:
		return r.r, r.err
	case <-time.After(d + 5*time.Second):
		t.Fatalf("apply hung for more than %s", d+5*time.Second)
		return Report{}, nil
	}
}

func cacheLists(t *testing.T, root, want string) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, LdSoCache))
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular(), "container ld.so.cache must be a regular file now")
	out, err := exec.Command(hostLdconfigPath, "-p", "-C", filepath.Join(root, LdSoCache)).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), want)
}

func libLinks(dir string) hookproto.Options {
	o := driverOptions()
	o.Links = append(o.Links,
		hookproto.Link{Target: "/usr/lib/gpu-nri/libcuda.so.1", Link: dir + "/libcuda.so.1"},
		hookproto.Link{Target: "libcuda.so.1", Link: dir + "/libcuda.so"})
	return o
}

// CVE-2024-0134: an image symlink made a host-side write land on the host.
// Here the library directory the links go into points at / or at a host path.
func TestCVE_2024_0134_LibDirSymlinkToRoot(t *testing.T) {
	requireRoot(t)
	host := guardHost(t)
	for _, tc := range []struct {
		name, target string
		ok           bool // safe success: the link lands inside the root
	}{
		{"to slash", "/", true},
		{"to host sentinel", host.Sentinel + "/lib", false},
		{"dotdot to host sentinel", strings.Repeat("../", 20) + host.Sentinel[1:] + "/lib", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := glibcRoot(t, "link usr/lib/x86_64-linux-gnu "+tc.target)
			_, err := applyBounded(t, 10*time.Second, root, libLinks("/usr/lib/x86_64-linux-gnu"))
			if !tc.ok {
				require.ErrorIs(t, err, ErrHostileRoot)
				require.ErrorContains(t, err, "/usr/lib/x86_64-linux-gnu")
				return
			}
			require.NoError(t, err)
			l, err := os.Readlink(filepath.Join(root, "libcuda.so"))
			require.NoError(t, err, "the link is created in the container's own /")
			require.Equal(t, "libcuda.so.1", l)
			_, err = os.Lstat("/libcuda.so")
			require.True(t, os.IsNotExist(err), "nothing created in the host's /")
		})
	}
}

// CVE-2024-0134 again, on the loader configuration directory.
func TestCVE_2024_0134_ConfDirSymlinkOutOfRoot(t *testing.T) {
	requireRoot(t)
	host := guardHost(t)
	for _, target := range []string{host.Sentinel, strings.Repeat("../", 20) + host.Sentinel[1:]} {
		root := glibcRoot(t, "link etc/ld.so.conf.d "+target)
		_, err := applyBounded(t, 10*time.Second, root, driverOptions())
		require.ErrorContains(t, err, "/etc/ld.so.conf.d")
		require.ErrorIs(t, err, ErrHostileRoot, "a dangling symlink where a directory belongs")
	}
}

// CVE-2025-23267: `ldconfig -r <rootfs>` run from the host followed
// /etc/ld.so.cache -> <host path> and overwrote a host file.
func TestCVE_2025_23267_LdSoCacheSymlinkToHost(t *testing.T) {
	requireRoot(t)
	host := guardHost(t)
	for _, target := range []string{
		host.Sentinel + "/ld.so.cache",
		"/etc/ld.so.cache",
		strings.Repeat("../", 20) + host.Sentinel[1:] + "/ld.so.cache",
	} {
		root := glibcRoot(t, "link etc/ld.so.cache "+target, "link etc/ld.so.cache~ "+host.Sentinel+"/secret")
		_, err := applyBounded(t, 10*time.Second, root, driverOptions())
		require.NoError(t, err)
		cacheLists(t, root, "libcuda.so.1 (libc6,x86-64) => /usr/lib/gpu-nri/libcuda.so.1")
	}
}

// CVE-2025-23267 through /proc magic links: with the container's procfs
// mounted (as runc has done when createContainer hooks run), an image points
// its cache, its configuration and /etc through /proc/<pid>/root at the host.
func TestCVE_2025_23267_ProcMagicLinksToHost(t *testing.T) {
	requireRoot(t)
	host := guardHost(t)
	mountProc := func(t *testing.T, root string) {
		p := filepath.Join(root, "proc")
		require.NoError(t, unix.Mount("proc", p, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
		t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	}
	t.Run("cache via /proc/1/root", func(t *testing.T) {
		root := glibcRoot(t, "link etc/ld.so.cache /proc/1/root"+host.Sentinel+"/ld.so.cache",
			"file etc/ld.so.conf include /proc/1/root"+host.Sentinel+"/*\\ninclude /etc/ld.so.conf.d/*.conf")
		mountProc(t, root)
		_, err := applyBounded(t, 10*time.Second, root, driverOptions())
		require.NoError(t, err)
		cacheLists(t, root, "libcuda.so.1")
	})
	t.Run("conf dir via /proc/self/root", func(t *testing.T) {
		root := glibcRoot(t, "link etc/ld.so.conf.d /proc/self/root"+host.Sentinel)
		mountProc(t, root)
		_, err := applyBounded(t, 10*time.Second, root, driverOptions())
		require.ErrorIs(t, err, unix.ELOOP, "magic links are refused by RESOLVE_NO_MAGICLINKS")
	})
	t.Run("lib dir via /proc/self/cwd", func(t *testing.T) {
		root := glibcRoot(t, "link usr/lib/x86_64-linux-gnu /proc/self/cwd")
		mountProc(t, root)
		_, err := applyBounded(t, 10*time.Second, root, libLinks("/usr/lib/x86_64-linux-gnu"))
		require.ErrorIs(t, err, unix.ELOOP)
	})
}

// CVE-2024-0132/CVE-2025-23359: the image plants a FIFO or a directory where
// the hook expects a file or a link. Clear error, no hang, nothing followed.
func TestCVE_2024_0132_FIFOOrDirAtTarget(t *testing.T) {
	requireRoot(t)
	guardHost(t)
	for _, tc := range []struct{ name, plant, want string }{
		{"fifo at link", "fifo usr/lib/gpu-nri/libcuda.so.1", "/usr/lib/gpu-nri/libcuda.so.1 in container root is a FIFO"},
		{"dir at link", "dir usr/lib/gpu-nri/libcuda.so/x", "/usr/lib/gpu-nri/libcuda.so in container root is a directory"},
		{"fifo at conf", "fifo etc/ld.so.conf.d/00-gpu-nri.conf", "is a FIFO"},
		{"dir at cache", "dir etc/ld.so.cache/x", "/etc/ld.so.cache in container root is a directory"},
		{"fifo at cache", "fifo etc/ld.so.cache", "/etc/ld.so.cache in container root is a FIFO"},
		{"fifo at ld.so.conf", "fifo etc/ld.so.conf", "/etc/ld.so.conf in container root is a FIFO"},
		{"fifo at musl path file", "fifo etc/ld-musl-x86_64.path", "is a FIFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := glibcRoot(t, tc.plant, "file lib/ld-musl-x86_64.so.1 x")
			_, err := applyBounded(t, 10*time.Second, root, driverOptions())
			require.ErrorIs(t, err, ErrHostileRoot)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// A FIFO the image includes from its own loader configuration would block
// ldconfig forever: the run is bounded and killed.
func TestCVE_2024_0132_FIFOIncludedByLdSoConfBounded(t *testing.T) {
	requireRoot(t)
	guardHost(t)
	root := glibcRoot(t, "file etc/ld.so.conf include /etc/ld.so.conf.d/*.conf", "fifo etc/ld.so.conf.d/zz.conf")
	start := time.Now()
	_, err := applyBounded(t, time.Second, root, driverOptions())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 4*time.Second)
}

// fakeLdconfigSrc is a static stand-in for ldconfig that reports what it
// sees (argv, environment, pid, namespaces, /proc, host paths) into the
// cache file it is asked to write.
const fakeLdconfigSrc = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/utsname.h>
extern char **environ;
int main(int argc, char **argv) {
	const char *out = 0;
	for (int i = 1; i < argc; i++) if (!strcmp(argv[i], "-C") && i + 1 < argc) out = argv[i + 1];
	FILE *f = fopen(out, "w");
	if (!f) return 2;
	fprintf(f, "args");
	for (int i = 1; i < argc; i++) fprintf(f, " %s", argv[i]);
	int n = 0; for (char **e = environ; *e; e++) { n++; fprintf(f, "\nenv %s", *e); }
	fprintf(f, "\nenvcount %d\npid %d\n", n, (int)getpid());
	fprintf(f, "sentinel %d\n", access(getenv("X") ? getenv("X") : SENTINEL, F_OK));
	fprintf(f, "hostcache-symlinked %d\n", access("/etc/hostcache-marker", F_OK));
	DIR *d = opendir("/proc");
	struct dirent *de;
	fprintf(f, "proc");
	while (d && (de = readdir(d))) if (de->d_name[0] != '.') fprintf(f, " %s", de->d_name);
	fprintf(f, "\n");
	fclose(f);
	return 0;
}`

// CVE-2025-23266 (NVIDIAScape): a hook that inherited the image's
// environment ran the image's LD_PRELOAD as root. The hook's ldconfig gets an
// explicit empty environment whatever the hook itself inherited; it runs as
// pid 1 of its own pid namespace, sees only our tmpfs at /proc, and no host
// path.
func TestCVE_2025_23266_LdconfigEnvironmentAndIsolation(t *testing.T) {
	requireRoot(t)
	host := guardHost(t)
	fake := filepath.Join(t.TempDir(), "ldconfig")
	cc(t, fake, fakeLdconfigSrc, "-static", `-DSENTINEL="`+host.Sentinel+`/secret"`)
	root := glibcRoot(t, "file x.so not-a-library", "link etc/hostcache-marker /etc/ld.so.cache")
	t.Setenv("LD_PRELOAD", "/proc/self/cwd/x.so")
	t.Setenv("X", host.Sentinel+"/secret")
	o := driverOptions()
	o.Ldconfig = fake
	_, err := applyBounded(t, 10*time.Second, root, o)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, LdSoCache))
	require.NoError(t, err)
	report := string(b)
	require.Contains(t, report, "args -X -f /etc/ld.so.conf -C /proc/ld.so.cache\n")
	require.Contains(t, report, "envcount 0\n", "explicit empty environment")
	require.NotContains(t, report, "LD_PRELOAD")
	require.Contains(t, report, "pid 1\n", "own pid namespace")
	require.Contains(t, report, "sentinel -1\n", "host tree detached")
	require.Contains(t, report, "hostcache-symlinked -1\n", "/etc/ld.so.cache resolves in the container")
	var proc []string
	for _, l := range strings.Split(report, "\n") {
		if rest, ok := strings.CutPrefix(l, "proc"); ok {
			proc = strings.Fields(rest)
		}
	}
	require.ElementsMatch(t, []string{"ldconfig", "ld.so.cache"}, proc, "private tmpfs at /proc, no procfs")
}

// CVE-2024-0135/0136: ldconfig taken from the container. The image's own
// /sbin/ldconfig is never run, and a host ldconfig that would need the
// image's dynamic loader is refused.
func TestCVE_2024_0136_OnlyStaticHostLdconfig(t *testing.T) {
	requireRoot(t)
	guardHost(t)
	imageLdconfig := filepath.Join(t.TempDir(), "ldconfig")
	cc(t, imageLdconfig, `#include <stdio.h>
int main(void) { FILE *f = fopen("/ran", "w"); return f ? 0 : 1; }`, "-static")
	root := glibcRoot(t, "copy sbin/ldconfig "+imageLdconfig, "copy usr/sbin/ldconfig "+imageLdconfig)
	_, err := applyBounded(t, 10*time.Second, root, driverOptions())
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "ran"))
	require.True(t, os.IsNotExist(err), "the image's ldconfig never runs")

	o := driverOptions()
	o.Ldconfig = filepath.Join(root, "usr/bin/dlopen") // dynamically linked
	_, err = applyBounded(t, 10*time.Second, glibcRoot(t), o)
	require.ErrorContains(t, err, "dynamically linked")
}
