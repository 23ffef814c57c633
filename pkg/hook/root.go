//go:build linux

package hook

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// rootFS is the container root, held as an O_PATH file descriptor. Every
// path below it is resolved by the kernel with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS): absolute symlinks and ".." in the image stay inside
// the root, and /proc magic links are refused. No method re-resolves a path
// string that was checked earlier (CVE-2026-24260).
type rootFS struct {
	fd   int
	path string // for error messages and the ldconfig pivot only
	// dirs caches directory fds by container path for one invocation
	// (29 links in one directory: one lookup).
	dirs map[string]int
}

const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

func openRoot(p string) (*rootFS, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hook: open container root %s: %w", p, err)
	}
	return &rootFS{fd: fd, path: p, dirs: map[string]int{}}, nil
}

func (r *rootFS) Close() error {
	for _, fd := range r.dirs {
		unix.Close(fd)
	}
	return unix.Close(r.fd)
}

// cachedDir is mkdirAll with the result kept open until Close; callers must
// not close it.
func (r *rootFS) cachedDir(p string) (int, error) {
	p = path.Clean("/" + p)
	if fd, ok := r.dirs[p]; ok {
		return fd, nil
	}
	fd, err := r.mkdirAll(p)
	if err != nil {
		return -1, err
	}
	r.dirs[p] = fd
	return fd, nil
}

// openat2 resolves p (a container path) inside the root.
func (r *rootFS) openat2(p string, flags uint64) (int, error) {
	for {
		fd, err := unix.Openat2(r.fd, p, &unix.OpenHow{
			Flags:   flags | unix.O_CLOEXEC,
			Resolve: resolveFlags,
		})
		// EAGAIN: a rename raced with the lookup; the kernel asks us to retry.
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// openDir opens the container directory p as O_PATH.
func (r *rootFS) openDir(p string) (int, error) {
	fd, err := r.openat2(p, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, fmt.Errorf("hook: open directory %s in container root: %w", p, err)
	}
	return fd, nil
}

// mkdirAll opens the container directory p, creating missing components
// (mode 0755) one at a time with mkdirat on an fd of the parent. A dangling
// symlink in the way is never followed to create something elsewhere: mkdirat
// refuses it with EEXIST and the lookup still fails.
func (r *rootFS) mkdirAll(p string) (int, error) {
	p = path.Clean("/" + p)
	if fd, err := r.openat2(p, unix.O_PATH|unix.O_DIRECTORY); err == nil {
		return fd, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return -1, fmt.Errorf("hook: open directory %s in container root: %w", p, err)
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	dir := "/"
	for _, part := range parts {
		next := path.Join(dir, part)
		fd, err := r.openat2(next, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			pfd, perr := r.openDir(dir)
			if perr != nil {
				return -1, perr
			}
			merr := unix.Mkdirat(pfd, part, 0o755)
			unix.Close(pfd)
			if merr != nil && !errors.Is(merr, unix.EEXIST) {
				return -1, fmt.Errorf("hook: mkdir %s in container root: %w", next, merr)
			}
			fd, err = r.openat2(next, unix.O_PATH|unix.O_DIRECTORY)
		}
		if err != nil {
			return -1, fmt.Errorf("hook: open directory %s in container root: %w", next, err)
		}
		if next == p {
			return fd, nil
		}
		unix.Close(fd)
		dir = next
	}
	return r.openDir(p) // p == "/"
}

// fileType returns the type bits (unix.S_IFMT) of name in the directory dirfd
// without following a final symlink; 0 when it does not exist.
func fileType(dirfd int, name string) (uint32, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Mode & unix.S_IFMT, nil
}

func typeName(t uint32) string {
	switch t {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFREG:
		return "a regular file"
	}
	return fmt.Sprintf("file type %#o", t)
}

// ErrHostileRoot is wrapped by every error caused by what the container root
// holds (a directory, FIFO or device where a file or link belongs, a symlink
// out of place) rather than by the host.
var ErrHostileRoot = errors.New("unexpected file in container root")

func refuse(p string, t uint32) error {
	return fmt.Errorf("hook: %s in container root is %s: %w", p, typeName(t), ErrHostileRoot)
}

func tempName(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return ".gpu-nri-" + hex.EncodeToString(b[:]) + "-" + base
}

// readFile reads the regular file p in the container root, at most limit
// bytes. ok is false when it does not exist. A FIFO, device or directory is
// refused before it is opened for reading (no hang); a symlink is followed
// inside the root only.
func (r *rootFS) readFile(p string, limit int64) (data []byte, ok bool, err error) {
	fd, err := r.openat2(p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("hook: open %s in container root: %w", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, false, fmt.Errorf("hook: stat %s in container root: %w", p, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG {
		return nil, false, refuse(p, t)
	}
	// Opened again for reading; the same inode as the one checked, or refused.
	if data, err = r.readSameFile(fd, &st, p, int(limit)); err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// writeFile makes the container file p (its directory created if missing)
// hold data, unless it already does: the new content goes to a fresh temp
// file (O_EXCL|O_NOFOLLOW) in the same directory, renamed over p. An existing
// symlink at p is replaced, never followed; a directory, FIFO or device is
// refused. changed reports whether anything was written.
func (r *rootFS) writeFile(p string, data []byte, mode uint32) (changed bool, err error) {
	dir, base := path.Split(path.Clean("/" + p))
	dfd, err := r.cachedDir(dir)
	if err != nil {
		return false, err
	}
	t, err := fileType(dfd, base)
	if err != nil {
		return false, fmt.Errorf("hook: stat %s in container root: %w", p, err)
	}
	switch t {
	case unix.S_IFREG:
		if same, err := sameContent(dfd, base, data); err != nil {
			return false, fmt.Errorf("hook: read %s in container root: %w", p, err)
		} else if same {
			return false, nil
		}
	case 0, unix.S_IFLNK:
	default:
		return false, refuse(p, t)
	}
	tmp := tempName(base)
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return false, fmt.Errorf("hook: create temp file for %s in container root: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(data)
	if err := errors.Join(werr, unix.Fchmod(fd, mode), f.Close()); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return false, fmt.Errorf("hook: write %s in container root: %w", p, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return false, fmt.Errorf("hook: rename into %s in container root: %w", p, err)
	}
	return true, nil
}

// sameContent compares the regular file name in dirfd with data. It is only
// called after fstatat saw a regular file; O_NOFOLLOW|O_NONBLOCK keep a swap
// to a symlink or FIFO in between from being followed or hanging.
func sameContent(dirfd int, name string, data []byte) (bool, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() != int64(len(data)) {
		return false, err
	}
	got, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, data), nil
}

// symlink makes the container path link a symlink to target, unless it
// already is one: created in place when nothing is there, else at a temp
// name with symlinkat, then renamed into place. A regular file or other symlink at link is replaced; a directory,
// FIFO, socket or device is refused. The target string is never resolved by
// the hook. changed reports whether anything was written.
func (r *rootFS) symlink(target, link string) (changed bool, err error) {
	dir, base := path.Split(path.Clean("/" + link))
	if base == "" || base == "." || base == ".." {
		return false, fmt.Errorf("hook: link path %q has no file name", link)
	}
	dfd, err := r.cachedDir(dir)
	if err != nil {
		return false, err
	}
	// Fast path, the usual case: nothing there yet. symlinkat never follows
	// an existing final component; it fails with EEXIST instead.
	err = unix.Symlinkat(target, dfd, base)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("hook: create symlink %s -> %s in container root: %w", link, target, err)
	}
	t, err := fileType(dfd, base)
	if err != nil {
		return false, fmt.Errorf("hook: stat %s in container root: %w", link, err)
	}
	switch t {
	case unix.S_IFLNK:
		buf := make([]byte, len(target)+1)
		if n, err := unix.Readlinkat(dfd, base, buf); err == nil && n == len(target) && string(buf[:n]) == target {
			return false, nil
		}
	case 0, unix.S_IFREG:
	default:
		return false, refuse(link, t)
	}
	tmp := tempName(base)
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return false, fmt.Errorf("hook: create symlink %s -> %s in container root: %w", link, target, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return false, fmt.Errorf("hook: rename symlink into %s in container root: %w", link, err)
	}
	return true, nil
}

// readDirNames lists the container directory p; nil when it does not exist.
func (r *rootFS) readDirNames(p string) ([]string, error) {
	fd, err := r.openat2(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hook: open directory %s in container root: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("hook: list %s in container root: %w", p, err)
	}
	return names, nil
}

// exists reports whether the container path p exists (following symlinks
// inside the root only).
func (r *rootFS) exists(p string) bool {
	fd, err := r.openat2(p, unix.O_PATH)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// statType returns the type bits of the container path p, symlinks followed
// inside the root; 0 when it does not exist (or is a dangling symlink).
func (r *rootFS) statType(p string) (uint32, error) {
	fd, err := r.openat2(p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("hook: open %s in container root: %w", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("hook: stat %s in container root: %w", p, err)
	}
	return st.Mode & unix.S_IFMT, nil
}

// mtime returns the modification time (ns) of the regular file p, or -1.
func (r *rootFS) mtime(p string) int64 {
	fd, err := r.openat2(p, unix.O_PATH)
	if err != nil {
		return -1
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1
	}
	return st.Mtim.Nano()
}
