package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// benchFS is the filesystem the bench's whole directory (containerd's root
// and state, so every container's writable layer, the simulated host and
// the runtimes' state) lives on.
//
// By default it is a fresh ext4 with its journal, as mkfs.ext4 makes it and
// as every production node has it, on a loop device over a sparse file next
// to the directory. The reason is measured (docs/benchmarks-e2e.md,
// Analysis): this VM's root ext4 runs without a journal, and without one
// ext4 skips every inode deleted in the last 5-35 s when it allocates a new
// one (ialloc.c, find_inode_bit/recently_deleted). The bench deletes each
// sample's writable layer, so every mount point created in the next
// container's image walked past those inodes and a GPU container paid 20-30
// ms more than on a journaled ext4, growing with the churn before it.
// BENCH_FS=root keeps the directory on the machine's own filesystem.
type benchFS struct {
	dir, image, loop string
	desc             string
}

// mountBenchFS puts dir on a fresh journaled ext4 (see benchFS) unless
// BENCH_FS=root.
func mountBenchFS(dir string) (*benchFS, error) {
	f := &benchFS{dir: dir}
	switch v := os.Getenv("BENCH_FS"); v {
	case "root":
		f.desc = "the machine's own root filesystem (BENCH_FS=root): " + fsDescribe(dir)
		return f, os.MkdirAll(dir, 0o755)
	case "", "ext4":
	default:
		return nil, fmt.Errorf("BENCH_FS=%q: want ext4 (the default: a journaled ext4 on a loop device) or root", v)
	}
	for _, tool := range []string{"mkfs.ext4", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("the bench's journaled ext4 needs %s (or set BENCH_FS=root): %w", tool, err)
		}
	}
	_ = unix.Unmount(dir, unix.MNT_DETACH) // a run that was killed
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f.image = filepath.Clean(dir) + ".ext4"
	_ = os.Remove(f.image)
	if err := os.WriteFile(f.image, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(f.image, 16<<30); err != nil { // sparse
		return nil, f.cleanup(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", f.image).CombinedOutput(); err != nil {
		return nil, f.cleanup(fmt.Errorf("mkfs.ext4 %s: %w: %s", f.image, err, out))
	}
	out, err := exec.Command("losetup", "--direct-io=on", "-f", "--show", f.image).Output()
	if err != nil {
		return nil, f.cleanup(fmt.Errorf("losetup %s: %w", f.image, err))
	}
	f.loop = strings.TrimSpace(string(out))
	if err := unix.Mount(f.loop, dir, "ext4", 0, ""); err != nil {
		return nil, f.cleanup(fmt.Errorf("mount %s on %s: %w", f.loop, dir, err))
	}
	f.desc = "a fresh ext4 with its journal (mkfs.ext4 defaults) on a loop device (direct I/O) over a sparse file on the machine's root, " +
		fsDescribe(filepath.Dir(filepath.Clean(dir))) + " (BENCH_FS=root uses that instead; see the Analysis for why it is not the default)"
	return f, nil
}

// unmount undoes mountBenchFS (the directory's contents go with the image).
func (f *benchFS) unmount() error {
	if f == nil || f.image == "" {
		return nil
	}
	return f.cleanup(nil)
}

func (f *benchFS) cleanup(cause error) error {
	var errs []error
	if cause != nil {
		errs = append(errs, cause)
	}
	if f.loop != "" {
		if err := unix.Unmount(f.dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			errs = append(errs, fmt.Errorf("unmount %s: %w", f.dir, err))
		}
		if out, err := exec.Command("losetup", "-d", f.loop).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("losetup -d %s: %w: %s", f.loop, err, bytes.TrimSpace(out)))
		}
		f.loop = ""
	}
	if err := os.Remove(f.image); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("bench filesystem: %v", errs)
}

// fsDescribe names the filesystem under path and whether an ext4 one has a
// journal (from the mount table and /proc/fs/jbd2).
func fsDescribe(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "unknown"
	}
	dev := func(m *mountinfo.Info) (skip, stop bool) {
		found := m.Major == int(unix.Major(st.Dev)) && m.Minor == int(unix.Minor(st.Dev))
		return !found, found
	}
	ms, err := mountinfo.GetMounts(dev)
	if err != nil || len(ms) == 0 {
		return "unknown"
	}
	fstype, source := ms[0].FSType, ms[0].Source
	if fstype != "ext4" {
		return fstype + " (" + source + ")"
	}
	if _, err := os.Stat(filepath.Join("/proc/fs/jbd2", filepath.Base(source)+"-8")); err == nil {
		return "ext4 with a journal (" + source + ")"
	}
	return "ext4 WITHOUT a journal (" + source + ")"
}
