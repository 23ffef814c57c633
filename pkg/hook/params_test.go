//go:build linux

package hook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestDisableDeviceFileModification(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		changed        bool
	}{
		{"driver default 1", "ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 1\nDeviceFileUID: 0\n",
			"ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 0\nDeviceFileUID: 0\n", true},
		{"already 0", "A: 1\nModifyDeviceFiles: 0\nB: 2\n", "A: 1\nModifyDeviceFiles: 0\nB: 2\n", false},
		{"odd spacing normalised", "ModifyDeviceFiles:0\n", "ModifyDeviceFiles: 0\n", true},
		{"spaces before colon", "  ModifyDeviceFiles  : 1\n", "ModifyDeviceFiles: 0\n", true},
		{"missing line appended", "A: 1\nB: 2\n", "A: 1\nB: 2\nModifyDeviceFiles: 0\n", true},
		{"missing line, no final newline", "A: 1", "A: 1\nModifyDeviceFiles: 0\n", true},
		{"empty", "", "ModifyDeviceFiles: 0\n", true},
		{"last line without newline", "A: 1\nModifyDeviceFiles: 1", "A: 1\nModifyDeviceFiles: 0", true},
		{"every occurrence", "ModifyDeviceFiles: 1\nX: 1\nModifyDeviceFiles: 1\n", "ModifyDeviceFiles: 0\nX: 1\nModifyDeviceFiles: 0\n", true},
		{"similar keys untouched", "ModifyDeviceFilesX: 1\nNoModifyDeviceFiles: 1\n",
			"ModifyDeviceFilesX: 1\nNoModifyDeviceFiles: 1\nModifyDeviceFiles: 0\n", true},
		{"CRLF and blank lines kept", "A: 1\r\n\nModifyDeviceFiles: 1\n\n", "A: 1\r\n\nModifyDeviceFiles: 0\n\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := disableDeviceFileModification([]byte(tc.in))
			require.Equal(t, tc.want, string(got))
			require.Equal(t, tc.changed, changed)
		})
	}
}

// standInMagic is the filesystem magic of dir: the tests' stand-in for
// PROC_SUPER_MAGIC (the kernel here has no nvidia driver, so no procfs has
// driver/nvidia/params).
func standInMagic(t *testing.T, dir string) int64 {
	t.Helper()
	var s unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &s))
	require.NotEqual(t, int64(unix.PROC_SUPER_MAGIC), int64(s.Type))
	return int64(s.Type)
}

const driverParams = "ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 1\nDeviceFileUID: 0\nDeviceFileMode: 438\n"

// The skip paths need no privileges: nothing there, or not procfs.
func TestHideParamsSkips(t *testing.T) {
	t.Run("no proc in root", func(t *testing.T) {
		root := t.TempDir()
		rep, err := apply(context.Background(), root, hookproto.Options{HideParams: true})
		require.NoError(t, err)
		require.False(t, rep.ParamsHidden)
	})
	t.Run("proc without driver", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "dir proc/driver")
		rep, err := apply(context.Background(), root, hookproto.Options{HideParams: true})
		require.NoError(t, err)
		require.False(t, rep.ParamsHidden)
	})
	t.Run("image file, not procfs", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "file proc/driver/nvidia/params ModifyDeviceFiles: 1")
		before := sum(t, root)
		rep, err := apply(context.Background(), root, hookproto.Options{HideParams: true})
		require.NoError(t, err)
		require.False(t, rep.ParamsHidden)
		require.Equal(t, before, sum(t, root))
	})
	t.Run("image symlink to a host file, not followed out of the root", func(t *testing.T) {
		root, host := t.TempDir(), t.TempDir()
		tree(t, host, "file params ModifyDeviceFiles: 1")
		tree(t, root, "link proc/driver/nvidia/params "+filepath.Join(host, "params"))
		r, err := openRoot(root)
		require.NoError(t, err)
		defer r.Close()
		// Even with the host file's filesystem as the accepted magic.
		done, err := r.hideDeviceNodeModification(standInMagic(t, host))
		require.NoError(t, err)
		require.False(t, done)
	})
	t.Run("FIFO on the accepted filesystem is refused without hanging", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "fifo proc/driver/nvidia/params")
		r, err := openRoot(root)
		require.NoError(t, err)
		defer r.Close()
		_, err = r.hideDeviceNodeModification(standInMagic(t, root))
		require.ErrorIs(t, err, ErrHostileRoot)
		require.ErrorContains(t, err, ParamsFile)
	})
	t.Run("oversized", func(t *testing.T) {
		root := t.TempDir()
		tree(t, root, "dir proc/driver/nvidia")
		require.NoError(t, os.WriteFile(filepath.Join(root, "proc/driver/nvidia/params"), make([]byte, maxParamsSize+1), 0o644))
		r, err := openRoot(root)
		require.NoError(t, err)
		defer r.Close()
		_, err = r.hideDeviceNodeModification(standInMagic(t, root))
		require.ErrorIs(t, err, ErrHostileRoot)
	})
}

// inPrivateMountNS runs f on a locked OS thread in a mount namespace of its
// own (all mounts private); the thread is discarded afterwards.
func inPrivateMountNS(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its namespace
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			ch <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			ch <- fmt.Errorf("make / rprivate: %w", err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// mountsUnder lists the mount points in this thread's namespace under dir.
func mountsUnder(dir string) []string {
	b, _ := os.ReadFile("/proc/thread-self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

// A real procfs mounted in the root as runc does, on a kernel with no
// nvidia driver: nothing to hide, no error.
func TestHideParamsRealProcWithoutDriver(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/proc/driver/nvidia/params"); err == nil {
		t.Skip("this kernel has the nvidia driver; the mount test below covers it")
	}
	root := t.TempDir()
	tree(t, root, "dir proc")
	err := inPrivateMountNS(func() error {
		if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return err
		}
		rep, err := apply(context.Background(), root, hookproto.Options{HideParams: true})
		if err != nil {
			return err
		}
		if rep.ParamsHidden {
			return fmt.Errorf("params hidden on a kernel without the driver")
		}
		return nil
	})
	require.NoError(t, err)
}

type paramsView struct {
	container, original string
	writeErr            error
	mounts              []string
}

// TestHideParamsMount checks the mount mechanics on a stand-in for procfs
// (the test directory's own filesystem): in the container's namespace the
// path reads ModifyDeviceFiles: 0 and is read-only, the original file is
// unchanged, and the host's namespace sees neither mount nor change.
func TestHideParamsMount(t *testing.T) {
	requireRoot(t)
	guardHost(t)
	for _, attached := range []bool{false, true} {
		t.Run(fmt.Sprintf("attached fallback %v", attached), func(t *testing.T) {
			root := t.TempDir()
			tree(t, root, "dir proc/driver/nvidia", "dir etc")
			params := filepath.Join(root, "proc/driver/nvidia/params")
			require.NoError(t, os.WriteFile(params, []byte(driverParams), 0o444))
			magic := standInMagic(t, root)
			hostMounts := mountsUnder(root)
			before := sum(t, root)

			var v paramsView
			err := inPrivateMountNS(func() error {
				orig, err := os.Open(params)
				if err != nil {
					return err
				}
				defer orig.Close()
				r, err := openRoot(root)
				if err != nil {
					return err
				}
				defer r.Close()
				if attached {
					err = hideViaAttached(r)
				} else {
					var done bool
					done, err = r.hideDeviceNodeModification(magic)
					if err == nil && !done {
						err = fmt.Errorf("nothing mounted")
					}
				}
				if err != nil {
					return err
				}
				b, err := os.ReadFile(params)
				if err != nil {
					return err
				}
				v.container = string(b)
				ob := make([]byte, 4096)
				n, err := orig.ReadAt(ob, 0)
				if err != nil && n == 0 {
					return err
				}
				v.original = string(ob[:n])
				_, v.writeErr = os.OpenFile(params, os.O_WRONLY, 0)
				v.mounts = mountsUnder(root)
				// A second run sees our copy (tmpfs, not the accepted
				// magic, or already 0): no second mount.
				if done, err := r.hideDeviceNodeModification(magic); err != nil || done {
					return fmt.Errorf("second run: done=%v err=%w", done, err)
				}
				return nil
			})
			require.NoError(t, err)
			require.Contains(t, v.container, "ModifyDeviceFiles: 0\n")
			require.NotContains(t, v.container, "ModifyDeviceFiles: 1")
			require.Equal(t, strings.Replace(driverParams, "ModifyDeviceFiles: 1", "ModifyDeviceFiles: 0", 1), v.container)
			require.Equal(t, driverParams, v.original, "the original file is only covered, never written")
			require.ErrorIs(t, v.writeErr, unix.EROFS)
			require.Equal(t, append(hostMounts, params), v.mounts, "exactly one new mount, on the params file")

			// Host namespace: unchanged.
			b, err := os.ReadFile(params)
			require.NoError(t, err)
			require.Equal(t, driverParams, string(b))
			require.Equal(t, hostMounts, mountsUnder(root))
			require.Equal(t, before, sum(t, root), "no scratch directory or other file left in the root")
		})
	}
}

// hideViaAttached is hideDeviceNodeModification's mount step through the
// fallback for kernels that cannot clone from a detached mount.
func hideViaAttached(r *rootFS) error {
	content, _ := disableDeviceFileModification([]byte(driverParams))
	tmp, err := paramsTmpfs(content)
	if err != nil {
		return err
	}
	defer unix.Close(tmp)
	tree, err := paramsTreeAttached(r, tmp)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return err
	}
	h, err := r.lookup(ParamsFile)
	if err != nil {
		return err
	}
	defer h.Close()
	return unix.MoveMount(tree, "", int(h.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}
