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
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tree(t, dir, tc.plant...)
			r, err := openRoot(dir)
			require.NoError(t, err)
			defer r.Close()
			d, err := r.mkdirAll(tc.mk)
			if tc.errno != 0 {
				require.ErrorIs(t, err, tc.errno)
				require.ErrorIs(t, err, ErrHostileRoot)
				require.ErrorContains(t, err, tc.mk)
				_, serr := os.Lstat(filepath.Join(host.Sentinel, "new"))
				require.True(t, os.IsNotExist(serr), "nothing created on the host")
				_, serr = os.Lstat(filepath.Join(dir, "missing"))
				require.True(t, os.IsNotExist(serr), "the dangling link's target is not created")
				return
			}
			require.NoError(t, err)
			defer d.Close()
			fi, err := os.Lstat(filepath.Join(dir, tc.made))
			require.NoError(t, err)
			require.True(t, fi.IsDir())
			var want, got unix.Stat_t
			require.NoError(t, unix.Stat(filepath.Join(dir, tc.made), &want))
			require.NoError(t, unix.Fstat(int(d.Fd()), &got))
			require.Equal(t, want.Ino, got.Ino, "the handle is the directory made")
		})
	}
}

// TestRootReads: the read-side helpers refuse or skip what is not a regular
// file or directory without blocking, and never leave the root.
func TestRootReads(t *testing.T) {
	requireRoot(t)
	host := guardHost(t)
	dir := t.TempDir()
	tree(t, dir, "file etc/conf hello", "fifo etc/fifo", "link etc/out "+host.Sentinel+"/secret",
		"link etc/rel ../../../../etc/conf", "file lib x", "link etc/magic /proc/self/root/etc/passwd")
	r, err := openRoot(dir)
	require.NoError(t, err)
	defer r.Close()

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

	typ, err := r.statType("/etc/fifo")
	require.NoError(t, err)
	require.Equal(t, uint32(unix.S_IFIFO), typ)
	require.False(t, r.exists("/etc/out"))
	require.Equal(t, int64(-1), r.mtime("/etc/fifo"))
	require.Positive(t, r.mtime("/etc/conf"))
}
