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

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// rootFS is the container root, held as an O_PATH file descriptor. Every
// lookup below it resolves with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS), retried on the kernel's EAGAIN/EXDEV as pathrs-lite
// (github.com/cyphar/filepath-securejoin/pathrs-lite) retries it, and goes to
// pathrs-lite's own checked O_PATH walk where openat2 is missing: absolute
// symlinks and ".." in the image stay inside the root, and /proc magic links
// are refused. (openat2 is the resolution pathrs-lite's OpenatInRoot itself
// uses; calling it here skips only the procfs readlink pathrs-lite does to
// name the handle, about 15 % of the hook's time inside runc.) Files are read by
// reopening the O_PATH handle that was checked (pathrs.Reopen, through a
// private procfs), never by resolving the path a second time
// (CVE-2026-24260); a directory is listed through openat2 with O_DIRECTORY,
// which the kernel refuses for anything else before opening it.
//
// Hand-written, each because pathrs-lite lacks it: creating a file or a
// symlink and renaming it into place (writeFile, symlink: *at syscalls on a
// directory handle pathrs-lite returned), looking at a final component
// without following it (fileType, sameContent: pathrs-lite lookups always
// follow a final symlink), opening the root itself (openRoot: pathrs-lite
// takes a root handle) and the per-invocation directory cache (cachedDir).
type rootFS struct {
	root *os.File
	path string // for error messages and the ldconfig pivot only
	// dirs caches directory handles by container path for one invocation
	// (29 links in one directory: one lookup). pathrs-lite keeps no cache.
	dirs map[string]*os.File
	// noOpenat2 is set once openat2 failed as missing (ENOSYS, or EPERM
	// from a seccomp filter): every later lookup is pathrs-lite's walk.
	noOpenat2 bool
}

// openat2Retries bounds the retries of a scoped lookup the kernel answered
// with EAGAIN (a rename or mount somewhere during a ".." walk) or EXDEV
// (complete_walk's check that the result is in the root), as pathrs-lite's.
const openat2Retries = 128

// openInRoot resolves the container path p below the root with
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) and flags (O_CLOEXEC
// added). ok is false, and the caller must use pathrs-lite, when openat2 is
// not available.
func (r *rootFS) openInRoot(p string, flags int) (f *os.File, ok bool, err error) {
	if r.noOpenat2 {
		return nil, false, nil
	}
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for try := 0; ; try++ {
		fd, err := unix.Openat2(r.fd(), p, how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), p), true, nil
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
			r.noOpenat2 = true
			return nil, false, nil
		case (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EXDEV)) && try < openat2Retries:
			continue
		case errors.Is(err, unix.EINTR):
			continue
		}
		return nil, true, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
}

func openRoot(p string) (*rootFS, error) {
	f, err := os.OpenFile(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hook: open container root %s: %w", p, err)
	}
	return &rootFS{root: f, path: p, dirs: map[string]*os.File{}}, nil
}

// fd is the root's descriptor, for *at and mount syscalls.
func (r *rootFS) fd() int { return int(r.root.Fd()) }

func (r *rootFS) Close() error {
	errs := make([]error, 0, len(r.dirs)+1)
	for _, d := range r.dirs {
		errs = append(errs, d.Close())
	}
	return errors.Join(append(errs, r.root.Close())...)
}

// cachedDir is mkdirAll with the result kept open until Close; callers must
// not close it.
func (r *rootFS) cachedDir(p string) (*os.File, error) {
	p = path.Clean("/" + p)
	if d, ok := r.dirs[p]; ok {
		return d, nil
	}
	d, err := r.mkdirAll(p)
	if err != nil {
		return nil, err
	}
	r.dirs[p] = d
	return d, nil
}

// lookup returns an O_PATH handle of the container path p, a final symlink
// followed inside the root only.
func (r *rootFS) lookup(p string) (*os.File, error) {
	if f, ok, err := r.openInRoot(p, unix.O_PATH); ok {
		return f, err
	}
	return pathrs.OpenatInRoot(r.root, p)
}

// mkdirAll opens the container directory p, creating missing components
// (mode 0755) with pathrs.MkdirAllHandle: a symlink in the way is followed
// inside the root only, and a dangling one is refused (ENOTDIR), never used to
// create something elsewhere.
func (r *rootFS) mkdirAll(p string) (*os.File, error) {
	p = path.Clean("/" + p)
	// The usual case, a directory the image has: one openat2. Anything else
	// (missing, a file or a dangling symlink in the way) is pathrs-lite's.
	if d, ok, err := r.openInRoot(p, unix.O_PATH|unix.O_DIRECTORY); ok && err == nil {
		return d, nil
	}
	d, err := pathrs.MkdirAllHandle(r.root, p, 0o755)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		// A file, a dangling symlink or a magic link where a directory
		// belongs: the image's doing.
		return nil, fmt.Errorf("hook: open directory %s in container root: %w: %w", p, err, ErrHostileRoot)
	}
	if err != nil {
		return nil, fmt.Errorf("hook: open directory %s in container root: %w", p, err)
	}
	return d, nil
}

// stat is fstat of a handle.
func stat(h *os.File) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(int(h.Fd()), &st)
	return st, err
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
	h, err := r.lookup(p)
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("hook: open %s in container root: %w", p, err)
	}
	defer h.Close()
	st, err := stat(h)
	if err != nil {
		return nil, false, fmt.Errorf("hook: stat %s in container root: %w", p, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG {
		return nil, false, refuse(p, t)
	}
	if data, err = readHandle(h, p, int(limit)); err != nil {
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
	d, err := r.cachedDir(dir)
	if err != nil {
		return false, err
	}
	dfd := int(d.Fd())
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
	d, err := r.cachedDir(dir)
	if err != nil {
		return false, err
	}
	dfd := int(d.Fd())
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

// readDirNames lists the container directory p; nil when it does not exist
// or is not a directory.
func (r *rootFS) readDirNames(p string) ([]string, error) {
	// O_DIRECTORY: the kernel answers ENOTDIR for a FIFO or device before
	// it would open it (fs/namei.c do_open), so nothing but a directory is
	// ever opened here.
	f, ok, err := r.openInRoot(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if !ok {
		f, err = r.reopenDir(p)
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || (err == nil && f == nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hook: open directory %s in container root: %w", p, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("hook: list %s in container root: %w", p, err)
	}
	return names, nil
}

// reopenDir is readDirNames' open where openat2 is missing: pathrs-lite's
// walk, the type checked on the O_PATH handle, then pathrs.Reopen. A nil file
// and nil error: p is not a directory.
func (r *rootFS) reopenDir(p string) (*os.File, error) {
	h, err := pathrs.OpenatInRoot(r.root, p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if st, err := stat(h); err != nil {
		return nil, fmt.Errorf("hook: stat %s in container root: %w", p, err)
	} else if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, nil
	}
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY)
}

// exists reports whether the container path p exists (following symlinks
// inside the root only).
func (r *rootFS) exists(p string) bool {
	h, err := r.lookup(p)
	if err != nil {
		return false
	}
	_ = h.Close()
	return true
}

// statType returns the type bits of the container path p, symlinks followed
// inside the root; 0 when it does not exist (or is a dangling symlink).
func (r *rootFS) statType(p string) (uint32, error) {
	h, err := r.lookup(p)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("hook: open %s in container root: %w", p, err)
	}
	defer h.Close()
	st, err := stat(h)
	if err != nil {
		return 0, fmt.Errorf("hook: stat %s in container root: %w", p, err)
	}
	return st.Mode & unix.S_IFMT, nil
}

// mtime returns the modification time (ns) of the regular file p, or -1.
func (r *rootFS) mtime(p string) int64 {
	st, ok := r.statIn(p)
	if !ok || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1
	}
	return st.Mtim.Nano()
}

// mtimeAny returns the modification time (ns) of the container path p of
// any type (symlinks followed inside the root), or -1.
func (r *rootFS) mtimeAny(p string) int64 {
	st, ok := r.statIn(p)
	if !ok {
		return -1
	}
	return st.Mtim.Nano()
}

// statIn stats the container path p (symlinks followed inside the root).
func (r *rootFS) statIn(p string) (unix.Stat_t, bool) {
	h, err := r.lookup(p)
	if err != nil {
		return unix.Stat_t{}, false
	}
	defer h.Close()
	st, err := stat(h)
	return st, err == nil
}
