//go:build linux

package hook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// The mount work below (fsopen, open_tree, move_mount) is hand-written:
// pathrs-lite resolves paths, it does not mount. Every mount target in the
// container root is a handle pathrs-lite returned, or a fresh directory made
// with mkdirat on the root handle.
//
// Hiding device-node modification: the NVIDIA kernel module exports its
// options in /proc/driver/nvidia/params; user-space (libnvidia-ml,
// libcuda) creates or fixes /dev/nvidia* nodes itself when it reads
// "ModifyDeviceFiles: 1" there. In a container those nodes are the runtime's
// business, so the hook binds a copy saying "ModifyDeviceFiles: 0" over the
// file, as NVIDIA's disable-device-node-modification hook does.
const (
	ParamsFile      = "/proc/driver/nvidia/params"
	paramsKey       = "ModifyDeviceFiles"
	paramsName      = "params"
	maxParamsSize   = 64 << 10
	procSuperMagic  = unix.PROC_SUPER_MAGIC
	paramsTmpfsSize = "128k"
)

// hideDeviceNodeModification makes <root>/proc/driver/nvidia/params read
// "ModifyDeviceFiles: 0" for the container. It must run in the container's
// mount namespace (runc and crun run createContainer hooks there, before
// pivot_root): the new mount only exists in that namespace. The file is
// resolved once inside the root and must be on a filesystem with the magic
// fsMagic (PROC_SUPER_MAGIC; tests pass a stand-in's); anything else (no
// file, proc not mounted there, a driver-less kernel) is skipped without
// error. done reports whether a mount was made.
func (r *rootFS) hideDeviceNodeModification(fsMagic int64) (done bool, err error) {
	h, err := r.lookup(ParamsFile)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("hook: open %s in container root: %w", ParamsFile, err)
	}
	defer h.Close()
	fd := int(h.Fd())
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return false, fmt.Errorf("hook: statfs %s in container root: %w", ParamsFile, err)
	}
	if int64(sfs.Type) != fsMagic {
		// Not the container's procfs (not mounted yet, or the image's own
		// file): nothing of the driver's to hide.
		return false, nil
	}
	st, err := stat(h)
	if err != nil {
		return false, fmt.Errorf("hook: stat %s in container root: %w", ParamsFile, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG {
		return false, refuse(ParamsFile, t)
	}
	orig, err := readHandle(h, ParamsFile, maxParamsSize)
	if err != nil {
		return false, err
	}
	content, changed := disableDeviceFileModification(orig)
	if !changed {
		return false, nil // the driver already says 0
	}
	tree, err := paramsTree(r, content)
	if err != nil {
		return false, err
	}
	defer unix.Close(tree)
	// The target is the O_PATH fd checked above: no second lookup.
	if err := unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return false, fmt.Errorf("hook: mount copy over %s in container root %s: %w", ParamsFile, r.path, err)
	}
	return true, nil
}

// readHandle reads at most limit bytes of the file behind the O_PATH handle
// h (the container path p, for messages), reopened with pathrs.Reopen:
// the same inode that was checked, with no second lookup of p.
// O_NONBLOCK|O_NOCTTY: a FIFO or tty neither hangs nor becomes our terminal.
func readHandle(h *os.File, p string, limit int) ([]byte, error) {
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, fmt.Errorf("hook: open %s in container root: %w", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("hook: read %s in container root: %w", p, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("hook: %s in container root is larger than %d bytes: %w", p, limit, ErrHostileRoot)
	}
	return b, nil
}

// disableDeviceFileModification returns params with every
// "ModifyDeviceFiles:" line set to "ModifyDeviceFiles: 0" (one appended when
// there is none), every other byte kept. changed is false when the content
// already says 0.
func disableDeviceFileModification(params []byte) (out []byte, changed bool) {
	const want = paramsKey + ": 0"
	var b bytes.Buffer
	found := false
	rest := params
	for len(rest) > 0 {
		line, tail, nl := bytes.Cut(rest, []byte("\n"))
		rest = tail
		if key, _, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(key)) == paramsKey {
			found = true
			if string(line) != want {
				changed = true
			}
			line = []byte(want)
		}
		b.Write(line)
		if nl {
			b.WriteByte('\n')
		}
	}
	if !found {
		if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			b.WriteByte('\n')
		}
		b.WriteString(want + "\n")
		changed = true
	}
	return b.Bytes(), changed
}

// paramsTree returns a detached, read-only (nosuid, nodev, noexec,
// nosymfollow, private) mount of a file holding content, on a fresh tmpfs
// that belongs to no mount namespace: nothing is visible anywhere until the
// caller moves it into place.
func paramsTree(r *rootFS, content []byte) (int, error) {
	tmp, err := paramsTmpfs(content)
	if err != nil {
		return -1, err
	}
	defer unix.Close(tmp)
	tree, err := unix.OpenTree(tmp, paramsName, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if errors.Is(err, unix.EINVAL) {
		// Linux < 6.15 clones only mounts of our own namespace.
		tree, err = paramsTreeAttached(r, tmp)
	}
	if err != nil {
		return -1, fmt.Errorf("hook: clone mount of the copy of %s: %w", ParamsFile, err)
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{
		Attr_set:    unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NOSYMFOLLOW,
		Propagation: unix.MS_PRIVATE,
	}); err != nil {
		unix.Close(tree)
		return -1, fmt.Errorf("hook: make the copy of %s read-only: %w", ParamsFile, err)
	}
	return tree, nil
}

// paramsTmpfs returns the root fd of a new detached tmpfs holding the file
// paramsName (mode 0444) with content.
func paramsTmpfs(content []byte) (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("hook: fsopen tmpfs for %s: %w", ParamsFile, err)
	}
	defer unix.Close(fs)
	for _, kv := range [][2]string{{"mode", "0755"}, {"size", paramsTmpfsSize}, {"nr_inodes", "8"}} {
		if err := unix.FsconfigSetString(fs, kv[0], kv[1]); err != nil {
			return -1, fmt.Errorf("hook: configure tmpfs %s=%s for %s: %w", kv[0], kv[1], ParamsFile, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("hook: create tmpfs for %s: %w", ParamsFile, err)
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_NOSYMFOLLOW)
	if err != nil {
		return -1, fmt.Errorf("hook: mount tmpfs for %s: %w", ParamsFile, err)
	}
	fd, err := unix.Openat(m, paramsName, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o444)
	if err != nil {
		unix.Close(m)
		return -1, fmt.Errorf("hook: create the copy of %s: %w", ParamsFile, err)
	}
	f := os.NewFile(uintptr(fd), paramsName)
	_, werr := f.Write(content)
	if err := errors.Join(werr, unix.Fchmod(fd, 0o444), f.Close()); err != nil {
		unix.Close(m)
		return -1, fmt.Errorf("hook: write the copy of %s: %w", ParamsFile, err)
	}
	return m, nil
}

// paramsTreeAttached clones paramsName from the detached tmpfs tmp on
// kernels that cannot clone from a detached mount: tmp is attached for the
// moment of the clone on a fresh empty directory at the top of the container
// root (mode 0700, made with mkdirat on the root fd), then detached through
// its own fd (/proc/self/fd/<tmp>, the hook's procfs, not the container's)
// and the directory removed.
func paramsTreeAttached(r *rootFS, tmp int) (int, error) {
	name := tempName("params")
	if err := unix.Mkdirat(r.fd(), name, 0o700); err != nil {
		return -1, fmt.Errorf("hook: create scratch directory /%s in container root %s: %w", name, r.path, err)
	}
	defer func() { _ = unix.Unlinkat(r.fd(), name, unix.AT_REMOVEDIR) }()
	dfd, err := unix.Openat(r.fd(), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("hook: open scratch directory /%s in container root %s: %w", name, r.path, err)
	}
	defer unix.Close(dfd)
	if err := unix.MoveMount(tmp, "", dfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return -1, fmt.Errorf("hook: attach tmpfs on scratch directory /%s in container root %s: %w", name, r.path, err)
	}
	tree, err := unix.OpenTree(tmp, paramsName, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	// umount2 takes a path, and there is no fd-based unmount; the path is the
	// hook's own fd link, resolved before anything of the image's.
	uerr := unix.Unmount("/proc/self/fd/"+strconv.Itoa(tmp), unix.MNT_DETACH)
	if err != nil {
		return -1, err
	}
	if uerr != nil {
		unix.Close(tree)
		return -1, fmt.Errorf("hook: detach tmpfs from scratch directory /%s in container root %s: %w", name, r.path, uerr)
	}
	return tree, nil
}
