//go:build linux

package hook

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/stretchr/testify/require"
)

func TestRootFromState(t *testing.T) {
	bundle := t.TempDir()
	for _, tc := range []struct{ name, rootPath, want string }{
		{"relative", "rootfs", filepath.Join(bundle, "rootfs")},
		{"absolute", "/run/x/rootfs", "/run/x/rootfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := json.Marshal(map[string]any{"root": map[string]any{"path": tc.rootPath}})
			require.NoError(t, os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644))
			got, err := RootFromState(strings.NewReader(`{"ociVersion":"1.2.0","id":"c","pid":1,"bundle":"` + bundle + `"}`))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := RootFromState(strings.NewReader(`{"bundle":"rel"}`))
	require.ErrorContains(t, err, "absolute bundle")
	_, err = RootFromState(strings.NewReader(strings.Repeat(" ", maxStateSize+1)))
	require.ErrorContains(t, err, "larger than")
}

// TestApplyGlibc is the end-to-end check on a real glibc rootfs: after the
// hook, the host's `ldconfig -p` reading the container's cache lists the
// injected library, and a program dlopens libcuda.so.1 and libcuda.so in a
// chroot with no LD_LIBRARY_PATH.
func TestApplyGlibc(t *testing.T) {
	requireRoot(t)
	guardHost(t)
	root := glibcRoot(t)
	rep, err := apply(context.Background(), root, driverOptions())
	require.NoError(t, err)
	require.Equal(t, Report{LinksChanged: 2, FilesChanged: 2, Ldconfig: true}, rep)

	conf, err := os.ReadFile(filepath.Join(root, ConfFile))
	require.NoError(t, err)
	require.Equal(t, "/usr/lib/gpu-nri\n", string(conf))
	conf, err = os.ReadFile(filepath.Join(root, LdSoConf))
	require.NoError(t, err)
	require.Equal(t, ldSoConfInit, string(conf))
	l, err := os.Readlink(filepath.Join(root, "usr/lib/gpu-nri/libcuda.so"))
	require.NoError(t, err)
	require.Equal(t, "libcuda.so.1", l)

	out, err := exec.Command(hostLdconfigPath, "-p", "-C", filepath.Join(root, LdSoCache)).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "libcuda.so.1 (libc6,x86-64) => /usr/lib/gpu-nri/libcuda.so.1")

	out2, err := inChroot(t, root, "/usr/bin/dlopen", "libcuda.so.1", "libcuda.so")
	require.NoError(t, err, out2)
	require.Contains(t, out2, "OK libcuda.so\n")

	// A second run (container restart) changes nothing and runs no ldconfig.
	rep, err = apply(context.Background(), root, driverOptions())
	require.NoError(t, err)
	require.Equal(t, Report{}, rep)
}

// TestApplyNoCacheWithoutHook pins the reason the hook exists: without it the
// same image cannot load the library.
func TestApplyNoCacheWithoutHook(t *testing.T) {
	requireRoot(t)
	root := glibcRoot(t)
	out, err := inChroot(t, root, "/usr/bin/dlopen", "libcuda.so.1")
	require.Error(t, err, out)
}

func TestApplyKeepsImageLdSoConf(t *testing.T) {
	requireRoot(t)
	root := glibcRoot(t, "file etc/ld.so.conf include /etc/ld.so.conf.d/*.conf # image")
	_, err := apply(context.Background(), root, driverOptions())
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, LdSoConf))
	require.NoError(t, err)
	require.Equal(t, "include /etc/ld.so.conf.d/*.conf # image", string(b))
}

func TestApplyMusl(t *testing.T) {
	root := t.TempDir()
	tree(t, root, "file lib/ld-musl-x86_64.so.1 x", "dir usr/lib/gpu-nri", "file usr/lib/gpu-nri/libcuda.so.999.88.77 x")
	o := driverOptions()
	o.Ldconfig = "/nonexistent/ldconfig" // never run for a musl-only image
	rep, err := apply(context.Background(), root, o)
	require.NoError(t, err)
	require.Equal(t, "/etc/ld-musl-x86_64.path", rep.Musl)
	require.False(t, rep.Ldconfig)
	b, err := os.ReadFile(filepath.Join(root, "etc/ld-musl-x86_64.path"))
	require.NoError(t, err)
	require.Equal(t, "/usr/lib/gpu-nri\n/lib\n/usr/local/lib\n/usr/lib\n", string(b))

	// An image path file is kept after ours, and a rerun is stable.
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/ld-musl-x86_64.path"), []byte("/opt/lib:/lib\n"), 0o644))
	_, err = apply(context.Background(), root, o)
	require.NoError(t, err)
	rep, err = apply(context.Background(), root, o)
	require.NoError(t, err)
	require.Zero(t, rep.FilesChanged)
	b, err = os.ReadFile(filepath.Join(root, "etc/ld-musl-x86_64.path"))
	require.NoError(t, err)
	require.Equal(t, "/usr/lib/gpu-nri\n/opt/lib\n/lib\n", string(b))
}

func TestApplyCUDACompat(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name, compatLib string
		want            bool
	}{
		{"newer", "libcuda.so.1000.1.2", true},
		{"older", "libcuda.so.500.1.2", false},
		{"same major", "libcuda.so.999.99.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := glibcRoot(t, "file usr/local/cuda/compat/"+tc.compatLib+" x", "link usr/local/cuda/compat/libcuda.so.1 "+tc.compatLib)
			o := driverOptions()
			o.CUDACompat = true
			rep, err := apply(context.Background(), root, o)
			require.NoError(t, err)
			require.Equal(t, tc.want, rep.Compat)
			_, err = os.Stat(filepath.Join(root, CompatConf))
			require.Equal(t, tc.want, err == nil)
		})
	}
}

func TestApplyLinksOnly(t *testing.T) {
	root := t.TempDir()
	tree(t, root, "file usr/lib/x/libnvidia-ml.so.1.2 x", "file usr/lib/x/libnvidia-ml.so.1 stale-copy")
	o := hookproto.Options{Links: []hookproto.Link{
		{Target: "libnvidia-ml.so.1.2", Link: "/usr/lib/x/libnvidia-ml.so.1"},
		{Target: "libnvidia-ml.so.1", Link: "/usr/lib/new/dir/libnvidia-ml.so"},
	}}
	rep, err := apply(context.Background(), root, o)
	require.NoError(t, err)
	require.Equal(t, 2, rep.LinksChanged)
	l, err := os.Readlink(filepath.Join(root, "usr/lib/x/libnvidia-ml.so.1"))
	require.NoError(t, err)
	require.Equal(t, "libnvidia-ml.so.1.2", l)
	_, err = os.Readlink(filepath.Join(root, "usr/lib/new/dir/libnvidia-ml.so"))
	require.NoError(t, err)
	ents, err := os.ReadDir(filepath.Join(root, "usr/lib/x"))
	require.NoError(t, err)
	require.Len(t, ents, 2, "no temp files left behind")
}

func TestValidate(t *testing.T) {
	for _, o := range []hookproto.Options{
		{Links: []hookproto.Link{{Target: "a", Link: "relative"}}},
		{Links: []hookproto.Link{{Target: "", Link: "/a"}}},
		{Folders: []string{"rel"}},
		{Folders: []string{"/a\n/b"}},
	} {
		_, err := apply(context.Background(), t.TempDir(), o)
		require.Error(t, err, "%+v", o)
	}
}
