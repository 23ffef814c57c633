//go:build linux

package hook

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Paths of the private tmpfs ldconfig sees. It is mounted over the
// container's /proc in a mount namespace of our own, so the container's
// procfs (and its /proc/<pid>/root magic links) is out of reach too.
const (
	privDir      = "/proc"
	privLdconfig = privDir + "/ldconfig"
	privCache    = privDir + "/ld.so.cache"
	maxCacheSize = 64 << 20
)

// DefaultTimeout bounds the ldconfig run when the context has no deadline.
const DefaultTimeout = 10 * time.Second

// hostLdconfig opens the host's ldconfig and checks that it is a statically
// linked ELF executable: a dynamic one would have its interpreter resolved
// inside the container root, i.e. the image's loader would run as root.
// Debian/Ubuntu ship /sbin/ldconfig as a shell wrapper around ldconfig.real;
// the wrapper is skipped for ldconfig.real.
func hostLdconfig(p string) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("hook: open host ldconfig %s: %w", p, err)
	}
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("hook: read host ldconfig %s: %w", p, err)
	}
	if string(magic[:2]) == "#!" && !strings.HasSuffix(p, ".real") {
		f.Close()
		return hostLdconfig(p + ".real")
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("hook: host ldconfig %s is not a regular file", p)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("hook: host ldconfig %s is not an ELF executable: %w", p, err)
	}
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_INTERP {
			f.Close()
			return nil, fmt.Errorf("hook: host ldconfig %s is dynamically linked; it would run the image's loader", p)
		}
	}
	return f, nil
}

// runLdconfig runs the host's ldconfig against the container root and
// returns the cache it built. It never writes to the container root itself:
//
//  1. On a dedicated, locked OS thread (discarded afterwards): unshare the
//     mount namespace, make every mount private, bind the root onto itself,
//     pivot_root into it and detach the old root: nothing of the host's tree
//     is left in the namespace.
//  2. Mount a fresh tmpfs (nosuid, nodev, noexec, nosymfollow) over /proc,
//     and bind the host ldconfig, opened before the pivot, read-only
//     (nosuid, nodev, nosymfollow) onto a file in it.
//  3. Fork ldconfig into new pid/net/ipc/uts namespaces with an empty
//     environment, stdin /dev/null opened before the pivot, and a deadline:
//     `ldconfig -X -f /etc/ld.so.conf -C /proc/ld.so.cache`: -X: it creates no
//     links; -C: it writes only into our tmpfs.
//  4. Read the cache back from the tmpfs; the caller writes it into the root
//     through file descriptors.
//
// No Go re-exec is needed: the namespace and mount work happens on the thread
// that forks ldconfig, so the one exec on this path is ldconfig itself.
func runLdconfig(ctx context.Context, root *rootFS, ldconfig string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	type result struct {
		cache []byte
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread's mount namespace and root are
		// changed, so the runtime must terminate it when this returns.
		runtime.LockOSThread()
		c, err := ldconfigOnThread(ctx, root, ldconfig)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.cache, r.err
}

func ldconfigOnThread(ctx context.Context, root *rootFS, ldconfig string) ([]byte, error) {
	ld, err := hostLdconfig(ldconfig)
	if err != nil {
		return nil, err
	}
	defer ld.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("hook: open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()

	// Clone the host ldconfig as a detached read-only mount while still in
	// the host's view (open_tree needs a mount of our own namespace).
	ldTree, err := unix.OpenTree(int(ld.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return nil, fmt.Errorf("hook: clone mount of host ldconfig %s: %w", ldconfig, err)
	}
	defer unix.Close(ldTree)
	if err := unix.MountSetattr(ldTree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{
		Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSYMFOLLOW,
	}); err != nil {
		return nil, fmt.Errorf("hook: make host ldconfig mount read-only: %w", err)
	}

	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return nil, fmt.Errorf("hook: unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("hook: make mounts private: %w", err)
	}
	// root.path is the runtime's own (bundle) path, not the image's; the
	// result is checked against the root fd below.
	if err := unix.Mount(root.path, root.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("hook: bind container root %s: %w", root.path, err)
	}
	if err := unix.Chdir(root.path); err != nil {
		return nil, fmt.Errorf("hook: chdir to container root %s: %w", root.path, err)
	}
	var want, got unix.Stat_t
	if err := errors.Join(unix.Fstat(root.fd(), &want), unix.Stat(".", &got)); err != nil {
		return nil, fmt.Errorf("hook: stat container root %s: %w", root.path, err)
	}
	if want.Dev != got.Dev || want.Ino != got.Ino {
		return nil, fmt.Errorf("hook: container root %s changed under the hook", root.path)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return nil, fmt.Errorf("hook: pivot_root into %s: %w", root.path, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return nil, fmt.Errorf("hook: detach host root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return nil, fmt.Errorf("hook: chdir /: %w", err)
	}

	// From here on every path is a container path. Hand-written rather
	// than pathrs-lite: /proc must be a real directory of the root, with no
	// symlink anywhere (RESOLVE_NO_SYMLINKS), a stricter rule than
	// pathrs-lite's in-root resolution offers.
	procFd, err := unix.Openat2(unix.AT_FDCWD, privDir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("hook: open %s in container root (must be a real directory): %w: %w", privDir, err, ErrHostileRoot)
	}
	defer unix.Close(procFd)
	tmp, err := privateTmpfs()
	if err != nil {
		return nil, err
	}
	defer unix.Close(tmp)
	fd, err := unix.Openat(tmp, "ldconfig", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o500)
	if err != nil {
		return nil, fmt.Errorf("hook: create ldconfig mount point: %w", err)
	}
	unix.Close(fd)
	if err := unix.MoveMount(ldTree, "", tmp, "ldconfig", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return nil, fmt.Errorf("hook: mount host ldconfig: %w", err)
	}
	if err := unix.MoveMount(tmp, "", procFd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return nil, fmt.Errorf("hook: mount private tmpfs on %s: %w", privDir, err)
	}

	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, privLdconfig, "-X", "-f", "/etc/ld.so.conf", "-C", privCache)
	cmd.Args[0] = "ldconfig"
	cmd.Env = []string{}
	cmd.Stdin = devnull
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS,
		Pdeathsig:  unix.SIGKILL,
	}
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("hook: host ldconfig %s in container root %s: %w: %s", ldconfig, root.path, err, bytes.TrimSpace(limitBytes(out.Bytes(), 2048)))
	}
	cfd, err := unix.Openat(tmp, "ld.so.cache", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hook: ldconfig wrote no cache: %w: %s", err, bytes.TrimSpace(limitBytes(out.Bytes(), 2048)))
	}
	f := os.NewFile(uintptr(cfd), privCache)
	defer f.Close()
	cache, err := io.ReadAll(io.LimitReader(f, maxCacheSize+1))
	if err != nil {
		return nil, fmt.Errorf("hook: read ldconfig cache: %w", err)
	}
	if len(cache) > maxCacheSize {
		return nil, fmt.Errorf("hook: ldconfig cache larger than %d bytes", maxCacheSize)
	}
	return cache, nil
}

// privateTmpfs returns the root fd of a new detached tmpfs mount.
func privateTmpfs() (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("hook: fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	for _, kv := range [][2]string{{"mode", "0700"}, {"size", "128m"}} {
		if err := unix.FsconfigSetString(fs, kv[0], kv[1]); err != nil {
			return -1, fmt.Errorf("hook: configure tmpfs %s=%s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("hook: create tmpfs: %w", err)
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC,
		unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_NOSYMFOLLOW)
	if err != nil {
		return -1, fmt.Errorf("hook: mount tmpfs: %w", err)
	}
	return m, nil
}

func limitBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
