package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/config"
)

// ComputeFingerprint summarises, with a few reads and stats, the host state
// an Inventory depends on: the driver version file, the size and mtime of
// <driverRoot>/etc/ld.so.cache, the nvidia lines of <proc>/devices, the
// nvidia* names in <dev> and the names in <dev>/dri, the GPU directories in
// <proc>/driver/nvidia/gpus, the MIG capability tree (gpuN/mig/giX/ciY) and
// whether the persistenced and fabricmanager sockets exist. Equal
// fingerprints mean nothing Discover depends on has visibly changed. Files
// that are absent are part of the state, not errors; only unreadable ones
// (permissions, I/O) are errors.
func ComputeFingerprint(h config.Host) (string, error) {
	h = normalizeHost(h)
	f := fingerprinter{sum: sha256.New()}
	f.proc(h)
	f.files(h)
	return f.result()
}

// ProcFingerprint is the part of ComputeFingerprint read from procfs: the
// driver version file, the nvidia lines of <proc>/devices, the GPU
// directories and the MIG capability tree. inotify does not fire for procfs,
// so a Watcher polls this part at a short interval; it costs a few reads and
// directory listings (see docs/benchmarks.md).
func ProcFingerprint(h config.Host) (string, error) {
	h = normalizeHost(h)
	f := fingerprinter{sum: sha256.New()}
	f.proc(h)
	return f.result()
}

// proc hashes the procfs inputs.
func (f *fingerprinter) proc(h config.Host) {
	proc := func(elem ...string) string {
		return h.View(filepath.Join(append([]string{h.ProcRoot}, elem...)...))
	}
	f.file("version", proc("driver", "nvidia", "version"), nil)
	f.file("devices", proc("devices"), func(line string) bool { return strings.Contains(line, "nvidia") })
	f.names("gpus", proc("driver", "nvidia", "gpus"), nil)
	capsDir := proc("driver", "nvidia", "capabilities")
	gpuDirs := f.names("caps", capsDir, func(n string) bool { return strings.HasPrefix(n, "gpu") })
	for _, g := range gpuDirs {
		migDir := filepath.Join(capsDir, g, "mig")
		for _, gi := range f.names(g, migDir, func(n string) bool { return strings.HasPrefix(n, "gi") }) {
			f.names(g+"/"+gi, filepath.Join(migDir, gi), func(n string) bool { return strings.HasPrefix(n, "ci") })
		}
	}
}

// files hashes the inputs outside procfs.
func (f *fingerprinter) files(h config.Host) {
	f.stat("ldcache", h.View(filepath.Join(h.DriverRoot, "etc", "ld.so.cache")))
	f.names("dev", h.View(h.DevRoot), func(n string) bool { return strings.HasPrefix(n, "nvidia") })
	f.names("dri", h.View(filepath.Join(h.DevRoot, "dri")), nil)
	for _, r := range socketRoots(h) {
		for _, s := range driverSockets() {
			f.exists(h.View(filepath.Join(r, s.p)))
		}
	}
}

func (f *fingerprinter) result() (string, error) {
	if err := errors.Join(f.errs...); err != nil {
		return "", fmt.Errorf("inventory: fingerprint: %w", err)
	}
	return hex.EncodeToString(f.sum.Sum(nil)[:16]), nil
}

type fingerprinter struct {
	sum  hash.Hash
	errs []error
}

func (f *fingerprinter) write(parts ...string) {
	for _, p := range parts {
		f.sum.Write([]byte(p))
		f.sum.Write([]byte{0})
	}
	f.sum.Write([]byte{'\n'})
}

// absent records a missing path; it returns false for other errors, which
// are collected.
func (f *fingerprinter) absent(tag string, err error) bool {
	if notExist(err) {
		f.write(tag, "absent")
		return true
	}
	f.errs = append(f.errs, err)
	return false
}

// file hashes the content of path (only the lines keep accepts, when set).
func (f *fingerprinter) file(tag, path string, keep func(string) bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		f.absent(tag, err)
		return
	}
	if keep == nil {
		f.write(tag, string(data))
		return
	}
	f.write(tag)
	for line := range strings.Lines(string(data)) {
		if keep(line) {
			f.write(line)
		}
	}
}

func (f *fingerprinter) stat(tag, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		f.absent(tag, err)
		return
	}
	f.write(tag, strconv.FormatInt(fi.Size(), 10), strconv.FormatInt(fi.ModTime().UnixNano(), 10))
}

func (f *fingerprinter) exists(path string) {
	_, err := os.Lstat(path)
	if err != nil {
		f.absent(path, err)
		return
	}
	f.write(path, "present")
}

// names hashes the sorted names in dir that keep accepts (all when nil) and
// returns them.
func (f *fingerprinter) names(tag, dir string, keep func(string) bool) []string {
	all, err := readDirNames(dir)
	if err != nil {
		f.absent(tag, err)
		return nil
	}
	names := all[:0]
	for _, n := range all {
		if keep == nil || keep(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	f.write(append([]string{tag}, names...)...)
	return names
}

// notExist reports whether err means the path is not there (a missing
// component or a file where a directory was expected).
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR)
}
