//go:build linux

package hook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/ldcache"
	"github.com/stretchr/testify/require"
)

// imageRoot is glibcRoot made into a built image: a Debian-style loader
// configuration, an image library in /usr/local/lib (found only through the
// cache), an image libcuda.so.1 there that the injected one must shadow,
// every file dated an hour back, and the cache the image's build would
// have run ldconfig for, newest.
func imageRoot(t testing.TB) string {
	t.Helper()
	root := glibcRoot(t,
		"file etc/ld.so.conf include /etc/ld.so.conf.d/*.conf",
		`file etc/ld.so.conf.d/libc.conf # libc default configuration\n/usr/local/lib`,
		`file etc/ld.so.conf.d/x86_64-linux-gnu.conf /usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu`,
		"copy usr/local/lib/libimage.so.2.0.0 "+artifact(t, "libimage.so", fakeLibSrc, "-shared", "-fPIC", "-Wl,-soname,libimage.so.2"),
		"link usr/local/lib/libimage.so.2 libimage.so.2.0.0",
		"copy usr/local/lib/libcuda.so.1 "+artifact(t, "libcuda-image.so", fakeLibSrc, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1"),
		"copy usr/lib/gpu-nri/libGLX_nvidia.so.999.88.77 "+artifact(t, "libGLX_nvidia.so", fakeLibSrc, "-shared", "-fPIC", "-Wl,-soname,libGLX_nvidia.so.0"),
	)
	old := time.Now().Add(-time.Hour)
	require.NoError(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	}))
	// The image build's ldconfig (on our own fixture, not a hostile root).
	out, err := exec.Command(hostLdconfigPath, "-X", "-r", root).CombinedOutput()
	require.NoError(t, err, string(out))
	return root
}

// cacheOptions: driverOptions plus a GLX library with the alias ldconfig
// does not list, links and cache names as pkg/edits makes them.
func cacheOptions() hookproto.Options {
	o := driverOptions()
	o.Links = append(o.Links,
		hookproto.Link{Target: "libGLX_nvidia.so.999.88.77", Link: "/usr/lib/gpu-nri/libGLX_nvidia.so.0"},
		hookproto.Link{Target: "libGLX_nvidia.so.0", Link: "/usr/lib/gpu-nri/libGLX_indirect.so.0"})
	o.Sonames = append(hookproto.CacheNames("/usr/lib/gpu-nri/libcuda.so.999.88.77", "libcuda.so.1", false),
		hookproto.CacheNames("/usr/lib/gpu-nri/libGLX_nvidia.so.999.88.77", "libGLX_nvidia.so.0", false)...)
	return o
}

// resolve is what ld.so picks for each soname of a 64-bit x86 program: the
// first entry in file order whose flags it accepts (elf/dl-cache.c).
func resolve(t *testing.T, root string) map[string]string {
	t.Helper()
	entries, err := ldcache.ReadFile(filepath.Join(root, LdSoCache))
	require.NoError(t, err)
	out := map[string]string{}
	for _, e := range entries {
		if _, ok := out[e.Key]; !ok && (e.Flags == ldcache.FlagELF || e.Flags == ldcache.FlagELFLibc6|ldcache.FlagX8664Lib64) {
			out[e.Key] = e.Value
		}
	}
	return out
}

// TestMergedCacheMatchesLdconfig: on a built image the hook adds its entries
// to the image's cache without running ldconfig, and every soname resolves
// exactly as after ldconfig's rebuild (the same image made stale gets
// ldconfig); the injected libcuda shadows the image's, the image's own
// library in /usr/local/lib stays loadable, and hookproto.CacheNames' rule
// (which aliases get an entry) is the one ldconfig follows.
func TestMergedCacheMatchesLdconfig(t *testing.T) {
	requireRoot(t)
	guardHost(t)
	merged, rebuilt := imageRoot(t), imageRoot(t)
	// The rebuilt one: a library directory changed after its cache.
	later := time.Now().Add(2 * time.Second) // ext4 times are coarse; equal is fresh
	require.NoError(t, os.Chtimes(filepath.Join(rebuilt, "usr/local/lib"), later, later))

	rep, err := apply(context.Background(), merged, cacheOptions())
	require.NoError(t, err)
	require.Equal(t, Report{LinksChanged: 4, FilesChanged: 1, CacheMerged: true}, rep)
	rep, err = apply(context.Background(), rebuilt, cacheOptions())
	require.NoError(t, err)
	require.Equal(t, Report{LinksChanged: 4, FilesChanged: 1, Ldconfig: true}, rep)

	got, want := resolve(t, merged), resolve(t, rebuilt)
	require.Equal(t, want, got)
	require.Equal(t, "/usr/lib/gpu-nri/libcuda.so.1", got["libcuda.so.1"])
	require.Equal(t, "/usr/lib/gpu-nri/libcuda.so", got["libcuda.so"])
	require.Equal(t, "/usr/local/lib/libimage.so.2", got["libimage.so.2"])
	require.Equal(t, "/usr/lib/gpu-nri/libGLX_nvidia.so.0", got["libGLX_nvidia.so.0"])
	require.NotContains(t, want, "libGLX_indirect.so.0", "ldconfig lists no entry for this alias")

	out, err := inChroot(t, merged, "/usr/bin/dlopen", "libcuda.so.1", "libcuda.so", "libimage.so.2")
	require.NoError(t, err, out)

	// A restart finds everything in place and writes nothing.
	rep, err = apply(context.Background(), merged, cacheOptions())
	require.NoError(t, err)
	require.Equal(t, Report{}, rep)
}

// TestMergedCacheRefusals: whatever the merge does not follow gets ldconfig,
// with the same loadable result.
func TestMergedCacheRefusals(t *testing.T) {
	requireRoot(t)
	guardHost(t)
	// Later than any cache imageRoot writes (ext4 times are coarse, and an
	// equal time counts as fresh: image layers often carry whole seconds).
	later := func() time.Time { return time.Now().Add(2 * time.Second) }
	for name, spoil := range map[string]func(root string){
		"no cache": func(root string) { require.NoError(t, os.Remove(filepath.Join(root, LdSoCache))) },
		"broken cache": func(root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, LdSoCache), []byte("glibc-ld.so.cache1.1 but cut"), 0o644))
		},
		"conf newer": func(root string) {
			require.NoError(t, os.Chtimes(filepath.Join(root, "etc/ld.so.conf.d/libc.conf"), later(), later()))
		},
		"new conf file": func(root string) {
			p := filepath.Join(root, "etc/ld.so.conf.d/zz.conf")
			require.NoError(t, os.WriteFile(p, []byte("/opt/lib\n"), 0o644))
			require.NoError(t, os.Chtimes(p, later(), later()))
		},
		"hwcap line": func(root string) {
			p := filepath.Join(root, "etc/ld.so.conf.d/libc.conf")
			require.NoError(t, os.WriteFile(p, []byte("hwcap 0 nosegneg\n/usr/local/lib\n"), 0o644))
			old := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(p, old, old))
		},
		"glob in a directory part": func(root string) {
			p := filepath.Join(root, "etc/ld.so.conf")
			require.NoError(t, os.WriteFile(p, []byte("include /etc/ld.so.conf.d/*.conf\ninclude /etc/*/x.conf\n"), 0o644))
			old := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(p, old, old))
		},
		"include loop": func(root string) {
			p := filepath.Join(root, "etc/ld.so.conf.d/libc.conf")
			require.NoError(t, os.WriteFile(p, []byte("include /etc/ld.so.conf\n/usr/local/lib\n"), 0o644))
			old := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(p, old, old))
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := imageRoot(t)
			spoil(root)
			rep, err := apply(context.Background(), root, cacheOptions())
			require.NoError(t, err)
			if name == "include loop" {
				// Followed once per file: merged, and loadable.
				require.True(t, rep.CacheMerged, "%+v", rep)
			} else {
				require.True(t, rep.Ldconfig, "%+v", rep)
				require.False(t, rep.CacheMerged)
			}
			out, err := inChroot(t, root, "/usr/bin/dlopen", "libcuda.so.1", "libcuda.so")
			require.NoError(t, err, out)
			require.Equal(t, "/usr/lib/gpu-nri/libcuda.so.1", resolve(t, root)["libcuda.so.1"])
		})
	}
}

// TestMergedCacheHostile: an include through a symlink to a host directory
// resolves inside the container root, so the host's (fresh) conf file is
// never read: had it been, the merge would have been refused as stale.
func TestMergedCacheHostile(t *testing.T) {
	requireRoot(t)
	guardHost(t)
	root := imageRoot(t)
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "x.conf"), []byte("/host-only\n"), 0o644))
	require.NoError(t, os.Symlink(host, filepath.Join(root, "etc/ld.so.conf.d/escape")))
	p := filepath.Join(root, "etc/ld.so.conf")
	require.NoError(t, os.WriteFile(p, []byte("include /etc/ld.so.conf.d/*.conf\ninclude /etc/ld.so.conf.d/escape/*.conf\n"), 0o644))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(p, old, old))
	require.NoError(t, os.Chtimes(filepath.Join(root, "etc/ld.so.conf.d"), old, old))

	rep, err := apply(context.Background(), root, cacheOptions())
	require.NoError(t, err)
	require.True(t, rep.CacheMerged, "%+v", rep)
	require.Equal(t, "/usr/lib/gpu-nri/libcuda.so.1", resolve(t, root)["libcuda.so.1"])
}
