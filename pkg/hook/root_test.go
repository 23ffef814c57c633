//go:build linux

package hook

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestRootMkdirAll pins what the hook relies on from pathrs-lite's
// MkdirAllHandle: symlinks in the way are followed inside the root only, and
// a dangling one is refused instead of being used to create its target.
func TestRootMkdirAll(t *testing.T) {
	requireRoot(t)
	host := guardHost(t)
	for _, tc := range []struct {
		name  string
		plant []string
		mk    string
		made  string // host path under the root that must now be a directory
		errno unix.Errno
	}{
		{name: "plain", mk: "/a/b/c", made: "a/b/c"},
		{name: "dotdot stays in root", mk: "/../../a", made: "a"},
		{name: "absolute symlink inside root", plant: []string{"dir real", "link etc /real"}, mk: "/etc/x", made: "real/x"},
		{name: "dotdot symlink clamped", plant: []string{"dir real", "link etc ../../../../real"}, mk: "/etc/x", made: "real/x"},
		{name: "dangling symlink to host path", plant: []string{"link etc " + host.Sentinel + "/new"}, mk: "/etc/x", errno: unix.ENOTDIR},
		{name: "dangling relative symlink", plant: []string{"link etc missing"}, mk: "/etc", errno: unix.ENOTDIR},
		{name: "regular file in the way", plant: []string{"file etc x"}, mk: "/etc/x", errno: unix.ENOTDIR},
	} {
		for _, walk := range lookups {
			t.Run(tc.name+"/"+walk.name, func(t *testing.T) {
				dir := t.TempDir()
				tree(t, dir, tc.plant...)
				r, err := openRoot(dir)
				require.NoError(t, err)
				defer r.Close()
				r.noOpenat2 = walk.noOpenat2
				mkdirAllCase(t, r, dir, host, tc.mk, tc.made, tc.errno)
			})
		}
	}
}

// lookups are the two ways rootFS resolves a path: openat2 itself, and
// pathrs-lite's own walk (kernels or seccomp filters without openat2).
var lookups = []struct {
	name      string
	noOpenat2 bool
}{{"openat2", false}, {"pathrs-lite walk", true}}

func mkdirAllCase(t *testing.T, r *rootFS, dir string, host hostGuard, mk, made string, errno unix.Errno) {
	t.Helper()
	d, err := r.mkdirAll(mk)
	if errno != 0 {
		require.ErrorIs(t, err, errno)
		require.ErrorIs(t, err, ErrHostileRoot)
		require.ErrorContains(t, err, mk)
		_, serr := os.Lstat(filepath.Join(host.Sentinel, "new"))
		require.True(t, os.IsNotExist(serr), "nothing created on the host")
		_, serr = os.Lstat(filepath.Join(dir, "missing"))
		require.True(t, os.IsNotExist(serr), "the dangling link's target is not created")
		return
	}
	require.NoError(t, err)
	defer d.Close()
	fi, err := os.Lstat(filepath.Join(dir, made))
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	var want, got unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(dir, made), &want))
	require.NoError(t, unix.Fstat(int(d.Fd()), &got))
	require.Equal(t, want.Ino, got.Ino, "the handle is the directory made")
	// Asked again, the directory now exists: the same one, found
	// (openat2's fast path when it is there).
	d2, err := r.mkdirAll(mk)
	require.NoError(t, err)
	defer d2.Close()
	require.NoError(t, unix.Fstat(int(d2.Fd()), &got))
	require.Equal(t, want.Ino, got.Ino, "an existing directory is found, not made")
}

// TestRootReads: the read-side helpers refuse or skip what is not a regular
// file or directory without blocking, and never leave the root.
func TestRootReads(t *testing.T) {
	requireRoot(t)
	for _, walk := range lookups {
		t.Run(walk.name, func(t *testing.T) { rootReads(t, walk.noOpenat2) })
	}
}

func rootReads(t *testing.T, noOpenat2 bool) {
	host := guardHost(t)
	dir := t.TempDir()
	tree(t, dir, "file etc/conf hello", "fifo etc/fifo", "link etc/out "+host.Sentinel+"/secret",
		"link etc/rel ../../../../etc/conf", "file lib x", "link etc/magic /proc/self/root/etc/passwd",
		"dir usr/lib/real", "file usr/lib/real/a x", "link usr/lib/up ../../../../usr/lib/real", "link usr/lib/hostdir "+host.Sentinel)
	r, err := openRoot(dir)
	require.NoError(t, err)
	defer r.Close()
	r.noOpenat2 = noOpenat2

	b, ok, err := r.readFile("/etc/rel", 100)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "hello", string(b), "a relative symlink is clamped to the root")

	_, ok, err = r.readFile("/etc/out", 100)
	require.NoError(t, err)
	require.False(t, ok, "an absolute symlink resolves inside the root, where nothing is")

	done := make(chan error, 1)
	go func() { _, _, err := r.readFile("/etc/fifo", 100); done <- err }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrHostileRoot)
		require.ErrorContains(t, err, "/etc/fifo in container root is a FIFO")
	case <-time.After(10 * time.Second):
		t.Fatal("readFile blocked on a FIFO")
	}

	_, _, err = r.readFile("/etc/conf", 3)
	require.ErrorIs(t, err, ErrHostileRoot, "larger than the limit")

	names, err := r.readDirNames("/lib")
	require.NoError(t, err)
	require.Nil(t, names, "a file where a directory is listed reads as empty")

	type listing struct {
		names []string
		err   error
	}
	listed := make(chan listing, 1)
	go func() { n, err := r.readDirNames("/etc/fifo"); listed <- listing{n, err} }()
	select {
	case l := <-listed:
		require.NoError(t, l.err)
		require.Nil(t, l.names, "a FIFO where a directory is listed reads as empty")
	case <-time.After(10 * time.Second):
		t.Fatal("readDirNames blocked on a FIFO")
	}
	names, err = r.readDirNames("/usr/lib/up")
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, names, "a relative symlink to a directory is clamped to the root")
	names, err = r.readDirNames("/usr/lib/hostdir")
	require.NoError(t, err)
	require.Nil(t, names, "an absolute symlink to a host directory resolves inside the root, where nothing is")

	typ, err := r.statType("/etc/fifo")
	require.NoError(t, err)
	require.Equal(t, uint32(unix.S_IFIFO), typ)
	require.False(t, r.exists("/etc/out"))
	require.Equal(t, int64(-1), r.mtime("/etc/fifo"))
	require.Positive(t, r.mtime("/etc/conf"))
}
