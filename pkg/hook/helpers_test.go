//go:build linux

package hook

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const hostLdconfigPath = "/sbin/ldconfig"

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: namespaces, mounts and pivot_root for the isolated ldconfig")
	}
}

func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s on the host: %v", name, err)
	}
	return p
}

// tree builds a fixture under dir from lines:
//
//	"dir  PATH", "file PATH CONTENT" (\n for a newline), "link PATH TARGET", "fifo PATH",
//	"copy PATH HOSTPATH" (a host file, symlinks resolved).
func tree(t testing.TB, dir string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		f := strings.Fields(l)
		p := filepath.Join(dir, f[1])
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755), l)
		switch f[0] {
		case "dir":
			require.NoError(t, os.MkdirAll(p, 0o755), l)
		case "file":
			require.NoError(t, os.WriteFile(p, []byte(strings.ReplaceAll(strings.Join(f[2:], " "), `\n`, "\n")), 0o644), l)
		case "link":
			require.NoError(t, os.Symlink(f[2], p), l)
		case "fifo":
			require.NoError(t, unix.Mkfifo(p, 0o644), l)
		case "copy":
			src, err := filepath.EvalSymlinks(f[2])
			require.NoError(t, err, l)
			b, err := os.ReadFile(src)
			require.NoError(t, err, l)
			require.NoError(t, os.WriteFile(p, b, 0o755), l)
		default:
			t.Fatalf("bad tree line %q", l)
		}
	}
}

// sum is a checksum of a file, or of every entry (names, types, link
// targets, contents) under a directory.
func sum(t testing.TB, p string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		io.WriteString(h, q+"\x00"+d.Type().String()+"\x00")
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(q)
			io.WriteString(h, l)
			return err
		case d.Type().IsRegular():
			b, err := os.ReadFile(q)
			h.Write(b)
			return err
		}
		return nil
	})
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// hostGuard records the checksums of a host sentinel directory and of the
// host's /etc/ld.so.cache and checks them when the test ends.
type hostGuard struct {
	Sentinel string // a host directory with a file and an ld.so.cache in it
}

func guardHost(t *testing.T) hostGuard {
	t.Helper()
	s := t.TempDir()
	tree(t, s, "file secret host-secret", "file ld.so.cache host-cache", "dir lib")
	before, cache := sum(t, s), sum(t, "/etc/ld.so.cache")
	t.Cleanup(func() {
		require.Equal(t, before, sum(t, s), "host sentinel directory changed")
		require.Equal(t, cache, sum(t, "/etc/ld.so.cache"), "host /etc/ld.so.cache changed")
	})
	return hostGuard{Sentinel: s}
}

// cc compiles C source into out with gcc and extra flags.
func cc(t testing.TB, out, src string, flags ...string) {
	t.Helper()
	gcc := requireTool(t, "gcc")
	c := filepath.Join(t.TempDir(), "src.c")
	require.NoError(t, os.WriteFile(c, []byte(src), 0o644))
	cmd := exec.Command(gcc, append(append([]string{"-o", out, c}, flags...), "-ldl")...)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
}

// artifacts caches what cc built, per test binary.
var artifacts sync.Map // name -> path

// artifactDirs are removed by TestMain when the test binary ends.
var artifactDirs sync.Map // dir -> struct{}

func TestMain(m *testing.M) {
	code := m.Run()
	artifactDirs.Range(func(k, _ any) bool { _ = os.RemoveAll(k.(string)); return true })
	os.Exit(code)
}

func artifact(t testing.TB, name, src string, flags ...string) string {
	t.Helper()
	if p, ok := artifacts.Load(name); ok {
		return p.(string)
	}
	dir, err := os.MkdirTemp("", "gpu-nri-hook-test-")
	require.NoError(t, err)
	artifactDirs.Store(dir, struct{}{})
	p := filepath.Join(dir, name)
	cc(t, p, src, flags...)
	artifacts.Store(name, p)
	return p
}

const fakeLibSrc = `int cuInit(unsigned f) { return 0; }`

const dlopenSrc = `#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		if (!dlopen(argv[i], RTLD_NOW)) { printf("FAIL %s: %s\n", argv[i], dlerror()); return 1; }
		printf("OK %s\n", argv[i]);
	}
	return 0;
}`

// glibcRoot builds a minimal glibc image: the host's loader and libc, a
// dlopen test program in /usr/bin/dlopen, and an injected fake driver
// library /usr/lib/gpu-nri/libcuda.so.999.88.77 with SONAME libcuda.so.1.
func glibcRoot(t testing.TB, extra ...string) string {
	t.Helper()
	root := t.TempDir()
	tree(t, root, append([]string{
		"copy lib64/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2",
		"copy lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6",
		"dir usr/lib/gpu-nri", "dir etc", "dir proc", "dir tmp",
		"copy usr/lib/gpu-nri/libcuda.so.999.88.77 " + artifact(t, "libcuda.so", fakeLibSrc, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1"),
		"copy usr/bin/dlopen " + artifact(t, "dlopen", dlopenSrc),
	}, extra...)...)
	return root
}

func driverOptions() hookproto.Options {
	return hookproto.Options{
		Ldconfig: hostLdconfigPath,
		Folders:  []string{"/usr/lib/gpu-nri"},
		Links: []hookproto.Link{
			{Target: "libcuda.so.999.88.77", Link: "/usr/lib/gpu-nri/libcuda.so.1"},
			{Target: "libcuda.so.1", Link: "/usr/lib/gpu-nri/libcuda.so"},
		},
		DriverVersion: "999.88.77",
	}
}

// inChroot runs argv inside root (as root), with an empty environment.
func inChroot(t testing.TB, root string, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	b, err := cmd.CombinedOutput()
	return string(b), err
}
