package inventory

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/gpu-nri/gpu-nri/pkg/ldcache"
)

// libraryCapability returns the capability of a driver library named by its
// base name (the file name before ".so").
func libraryCapability(name string) (Capability, bool) {
	switch name {
	case "libnvidia-ml", "libnvidia-cfg", "libnvidia-nscq":
		return Utility, true
	case "libcuda", "libcudadebugger", "libnvidia-opencl", "libnvidia-gpucomp",
		"libnvidia-ptxjitcompiler", "libnvidia-fatbinaryloader", "libnvidia-allocator",
		"libnvidia-compiler", "libnvidia-pkcs11", "libnvidia-pkcs11-openssl3",
		"libnvidia-nvvm", "libnvidia-nvvm70", "libnvidia-tileiras":
		return Compute, true
	case "libvdpau_nvidia", "libnvidia-encode", "libnvidia-opticalflow", "libnvcuvid":
		return Video, true
	case "libnvidia-eglcore", "libnvidia-glcore", "libnvidia-tls", "libnvidia-glsi",
		"libnvidia-fbc", "libnvidia-ifr", "libnvidia-rtcore", "libnvoptix",
		"libGLX_nvidia", "libEGL_nvidia", "libGLESv2_nvidia", "libGLESv1_CM_nvidia",
		"libnvidia-glvkspirv", "libnvidia-cbl", "libnvidia-vulkan-producer", "libnvidia-vksc-core",
		"libnvidia-wayland-client":
		return Graphics, true
	case "libnvidia-ngx":
		return NGX, true
	}
	if versionlessLibrary(name) {
		return Graphics, true
	}
	return "", false
}

// versionlessLibrary reports whether NVIDIA ships the library with its own
// version rather than the driver's (the EGL external platform libraries,
// e.g. libnvidia-egl-wayland.so.1.1.13, and the legacy NVVM,
// libnvidia-nvvm70.so.4, which NVIDIA's CDI spec mounts as
// libnvidia-nvvm70.so.*): any version of it counts.
func versionlessLibrary(name string) bool {
	switch name {
	case "libnvidia-egl-gbm", "libnvidia-egl-wayland", "libnvidia-egl-wayland2",
		"libnvidia-egl-xcb", "libnvidia-egl-xlib", "libnvidia-nvvm70":
		return true
	}
	return false
}

// libName returns the part of a library file name before ".so" ("libcuda"
// for "libcuda.so.1"), or "" when the name has no ".so".
func libName(file string) string {
	i := strings.Index(file, ".so")
	if i <= 0 || (len(file) > i+3 && file[i+3] != '.') {
		return ""
	}
	return file[:i]
}

// The directories searched for libraries when ld.so.cache is missing,
// relative to the driver root. Bitness is read from each file's ELF header,
// so a directory may hold either (/usr/lib is 32-bit on Red Hat, 64-bit on
// Arch).
func libDirs() []string {
	return append(LibraryDirs64(), "usr/lib/i386-linux-gnu", "usr/lib32", "lib/i386-linux-gnu", "lib32")
}

// LibraryDirs64 are the directories, relative to the driver root, where
// 64-bit driver libraries are looked for when ld.so.cache does not list
// them, in search order.
func LibraryDirs64() []string {
	return []string{
		"usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib64", "usr/lib",
		"lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "lib64",
	}
}

// vdpauDirs hold libvdpau_nvidia, which ld.so.cache never lists (it is
// loaded by libvdpau from its own directory).
func vdpauDirs() []string {
	return []string{
		"usr/lib/x86_64-linux-gnu/vdpau", "usr/lib/aarch64-linux-gnu/vdpau", "usr/lib64/vdpau",
		"usr/lib/vdpau", "usr/lib/i386-linux-gnu/vdpau", "usr/lib32/vdpau",
	}
}

// libSearch is the state of the library search.
type libSearch struct {
	d *discovery
	// root is where the plugin reads the driver root.
	root string
	// seen holds the driver-root-relative paths of real files already
	// handled (added or refused), so each is read and reported once.
	seen map[string]bool
	// others are the versions of driver libraries of another driver than
	// the loaded kernel module's (a userland upgraded without a reboot).
	others []string
}

// other records the version of file and reports true when it is
// <name>.so.<a driver version> of another driver than the loaded one.
func (s *libSearch) other(name, file string) bool {
	v, ok := strings.CutPrefix(file, name+".so.")
	if !ok || versionlessLibrary(name) || !isVersion(v) || v == s.d.inv.DriverVersion {
		return false
	}
	if !slices.Contains(s.others, v) {
		s.others = append(s.others, v)
	}
	return true
}

// libraries finds the driver libraries through <driverRoot>/etc/ld.so.cache,
// or by scanning the standard directories when the cache cannot be read.
// It returns the versions of driver libraries it saw of another driver than
// the loaded kernel module's, sorted.
func (d *discovery) libraries() []string {
	s := &libSearch{d: d, root: d.view(d.h.DriverRoot), seen: map[string]bool{}}
	// Resolved inside the driver root like every other file (it may be a link).
	cache, err := securejoin.SecureJoin(s.root, "etc/ld.so.cache")
	var entries []ldcache.Entry
	if err == nil {
		entries, err = ldcache.ReadFile(cache)
	}
	if err != nil {
		d.warnf("libraries found by scanning %s, not through ld.so.cache: %v",
			strings.Join(libDirs(), ", "), err)
		for _, dir := range libDirs() {
			s.scan(dir)
		}
	} else {
		for _, e := range entries {
			name := libName(e.Key)
			capability, ok := libraryCapability(name)
			if !ok || (!e.Is64() && !e.Is32()) {
				continue
			}
			bits := 64
			if e.Is32() {
				bits = 32
			}
			s.add(name, capability, bits, e.Value)
		}
	}
	for _, dir := range vdpauDirs() {
		s.scan(dir)
	}
	for c, files := range d.inv.Libraries {
		slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
		d.inv.Libraries[c] = files
	}
	for _, c := range []Capability{Utility, Compute} {
		if len(d.inv.Libraries[c]) == 0 {
			d.warnf("no %s libraries of driver %s found under %s", c, d.inv.DriverVersion, d.h.DriverRoot)
		}
	}
	slices.Sort(s.others)
	return s.others
}

// scan adds the driver libraries in dir (relative to the driver root).
func (s *libSearch) scan(dir string) {
	names, err := readDirNames(filepath.Join(s.root, dir))
	if err != nil {
		return // absent directories are normal
	}
	slices.Sort(names)
	for _, n := range names {
		name := libName(n)
		capability, ok := libraryCapability(name)
		if !ok {
			continue
		}
		if !s.d.versionOK(name, n) && !s.sonameLink(dir, name, n) {
			if s.other(name, n) {
				s.d.skip("/"+filepath.Join(dir, n), "a library of driver "+strings.TrimPrefix(n, name+".so.")+", not "+s.d.inv.DriverVersion, false)
			}
			continue
		}
		s.add(name, capability, 0, "/"+filepath.Join(dir, n))
	}
}

// sonameLink reports whether file (in dir, relative to the driver root) is
// a symlink named like a SONAME, <name>.so.<digits>[.<digits>]: the only
// name some layouts give a library in a scanned directory (Debian's
// vdpau/libvdpau_nvidia.so.1 and, without ld.so.cache, every library, the
// real files being in nvidia/current). add then resolves it and keeps it
// only when the real file is of this driver's version.
func (s *libSearch) sonameLink(dir, name, file string) bool {
	v, ok := strings.CutPrefix(file, name+".so.")
	if !ok || v == "" || !isVersionish(v) {
		return false
	}
	fi, err := os.Lstat(filepath.Join(s.root, dir, file))
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

// isVersionish reports whether v is dot-separated decimal numbers ("1", "4", "1.1").
func isVersionish(v string) bool {
	for _, f := range strings.Split(v, ".") {
		if _, ok := parseUint(f); !ok {
			return false
		}
	}
	return true
}

// versionOK reports whether file (a base name) is a library of this driver:
// <name>.so.<driverVersion>, or <name>.so.<anything> for versionless ones.
func (d *discovery) versionOK(name, file string) bool {
	if versionlessLibrary(name) {
		return strings.HasPrefix(file, name+".so.")
	}
	return file == name+".so."+d.inv.DriverVersion
}

// add resolves p (a path inside the driver root) and records the library it
// names. bits is the cache's word on the word size (32 or 64); files found
// by scanning (bits 0) are classified by their ELF header.
func (s *libSearch) add(name string, capability Capability, bits int, p string) {
	d := s.d
	real, rel, fi, err := resolveIn(s.root, p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// A dangling link (ld.so.cache or a SONAME link naming a file
			// that is gone): not worth a warning, but doctor names it.
			d.skip(p, fmt.Sprintf("it does not exist (%v)", err), false)
		} else {
			d.skip(p, err.Error(), true)
		}
		return
	}
	if s.seen[rel] {
		return
	}
	s.seen[rel] = true
	if !fi.Mode().IsRegular() {
		d.skip(p, fmt.Sprintf("%s is not a regular file", "/"+rel), true)
		return
	}
	base := filepath.Base(rel)
	if libName(base) == name {
		s.other(name, base)
	}
	if libName(base) != name || !d.versionOK(name, base) {
		d.skip(p, fmt.Sprintf("it is %s, not version %s of the driver", "/"+rel, d.inv.DriverVersion), true)
		return
	}
	if bits == 0 {
		class, err := elfClass(real)
		if err != nil {
			d.skip("/"+rel, err.Error(), true)
			return
		}
		bits = 32 * class
	}
	lib32 := bits == 32
	soname, err := ldcache.ReadSONAME(real)
	if err != nil {
		d.warnf("library %s has no readable SONAME: %v", "/"+rel, err)
	}
	f := File{HostPath: filepath.Join(d.h.DriverRoot, rel), Path: "/" + rel, SONAME: soname,
		Capability: capability, BaseCapability: capability, Lib32: lib32}
	if lib32 {
		f.Capability = Compat32
	}
	d.inv.Libraries[f.Capability] = append(d.inv.Libraries[f.Capability], f)
}

// elfClass returns 1 for a 32-bit and 2 for a 64-bit ELF file.
func elfClass(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var ident [5]byte
	if _, err := io.ReadFull(f, ident[:]); err != nil || string(ident[:4]) != "\x7fELF" {
		return 0, fmt.Errorf("%s is not an ELF file", path)
	}
	if ident[4] != 1 && ident[4] != 2 {
		return 0, fmt.Errorf("%s: unknown ELF class %d", path, ident[4])
	}
	return int(ident[4]), nil
}

// resolveIn resolves p (a path inside root, symlinks followed as if root
// were "/", never leaving it) and returns the real path where the plugin
// reads it, its path relative to root, and its lstat.
func resolveIn(root, p string) (real, rel string, fi fs.FileInfo, err error) {
	real, err = securejoin.SecureJoin(root, p)
	if err != nil {
		return "", "", nil, fmt.Errorf("resolve %s in %s: %w", p, root, err)
	}
	rel, err = filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", "", nil, fmt.Errorf("resolve %s in %s: escapes the root", p, root)
	}
	fi, err = os.Lstat(real)
	if err != nil {
		return "", "", nil, err
	}
	return real, rel, fi, nil
}
