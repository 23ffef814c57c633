package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
)

// driverFile resolves p (a path inside the driver root) to a File of the
// given capability: HostPath is the real file (symlinks resolved inside the
// driver root), Path is p itself. ok is false when there is no such regular
// file; other problems become warnings.
func (d *discovery) driverFile(p string, c Capability) (File, bool) {
	root := d.view(d.h.DriverRoot)
	_, rel, fi, err := resolveIn(root, p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.warnf("%s ignored: %v", filepath.Join(d.h.DriverRoot, p), err)
		}
		return File{}, false
	}
	if !fi.Mode().IsRegular() {
		d.warnf("%s ignored: not a regular file", filepath.Join(d.h.DriverRoot, rel))
		return File{}, false
	}
	return File{HostPath: filepath.Join(d.h.DriverRoot, rel), Path: path.Clean("/" + p),
		Capability: c, BaseCapability: c}, true
}

// binaries finds the driver's tools in usr/bin and usr/sbin under the driver
// root (first found wins). Path is where the tool was found.
func (d *discovery) binaries() {
	for _, b := range []struct {
		c     Capability
		names []string
	}{
		{Utility, []string{"nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nv-fabricmanager"}},
		{Compute, []string{"nvidia-cuda-mps-control", "nvidia-cuda-mps-server"}},
	} {
		for _, name := range b.names {
			for _, dir := range []string{"/usr/bin", "/usr/sbin"} {
				if f, ok := d.driverFile(path.Join(dir, name), b.c); ok {
					d.inv.Binaries[b.c] = append(d.inv.Binaries[b.c], f)
					break
				}
			}
		}
	}
}

// firmware finds the GSP firmware, (usr/)lib/firmware/nvidia/<version>/*.bin.
func (d *discovery) firmware() {
	root := d.view(d.h.DriverRoot)
	seen := map[string]bool{}
	for _, dir := range []string{"/lib/firmware/nvidia", "/usr/lib/firmware/nvidia"} {
		dir = path.Join(dir, d.inv.DriverVersion)
		names := sortedNamesIn(root, dir)
		for _, n := range names {
			if path.Ext(n) != ".bin" {
				continue
			}
			f, ok := d.driverFile(path.Join(dir, n), "")
			if !ok || seen[f.HostPath] {
				continue
			}
			seen[f.HostPath] = true
			d.inv.Firmware = append(d.inv.Firmware, f)
		}
	}
	if len(d.inv.Firmware) == 0 {
		d.warnf("no firmware for driver %s under %s", d.inv.DriverVersion,
			filepath.Join(d.h.DriverRoot, "lib/firmware/nvidia", d.inv.DriverVersion))
	}
}

// driverSocket is a socket of the driver's daemons; warn when its absence
// is worth a warning.
type driverSocket struct {
	p    string
	warn bool
}

// driverSockets are the sockets discovery looks for and the fingerprint
// watches.
func driverSockets() []driverSocket {
	return []driverSocket{
		{"/run/nvidia-persistenced/socket", true},
		{"/run/nvidia-fabricmanager/socket", false}, // NVSwitch systems only
	}
}

// socketRoots are where driver sockets are looked for, in order: the host,
// then the driver root.
func socketRoots(h config.Host) []string {
	if h.DriverRoot == "/" {
		return []string{"/"}
	}
	return []string{"/", h.DriverRoot}
}

// sockets finds the persistenced and fabricmanager sockets, on the host
// first, then under the driver root.
func (d *discovery) sockets() {
	for _, s := range driverSockets() {
		found := false
		for _, r := range socketRoots(d.h) {
			_, rel, fi, err := resolveIn(d.view(r), s.p)
			if err != nil || fi.Mode()&fs.ModeSocket == 0 {
				continue
			}
			d.inv.Sockets[Utility] = append(d.inv.Sockets[Utility], File{
				HostPath: filepath.Join(r, rel), Path: s.p, Capability: Utility, BaseCapability: Utility})
			found = true
			break
		}
		if !found && s.warn {
			d.warnf("no %s (nvidia-persistenced not running)", s.p)
		}
	}
}

// configFiles finds the graphics, display and compute configuration files
// under etc, then usr/share, of the driver root; for each file name the
// first found wins.
func (d *discovery) configFiles() {
	root := d.view(d.h.DriverRoot)
	for _, cf := range []struct {
		c       Capability
		pattern string // relative to etc or usr/share; the base may be a glob
	}{
		{Graphics, "glvnd/egl_vendor.d/10_nvidia.json"},
		{Graphics, "egl/egl_external_platform.d/*nvidia*.json"},
		{Graphics, "vulkan/icd.d/nvidia_icd*.json"},
		{Graphics, "vulkan/implicit_layer.d/nvidia_layers.json"},
		{Graphics, "nvidia/nvoptix.bin"},
		{Display, "X11/xorg.conf.d/10-nvidia.conf"},
		{Display, "X11/xorg.conf.d/nvidia-drm-outputclass.conf"},
		{Compute, "OpenCL/vendors/nvidia.icd"},
	} {
		seen := map[string]bool{}
		for _, base := range []string{"/etc", "/usr/share"} {
			dir := path.Join(base, path.Dir(cf.pattern))
			names := sortedNamesIn(root, dir)
			for _, n := range names {
				if ok, _ := path.Match(path.Base(cf.pattern), n); !ok || seen[n] {
					continue
				}
				if f, ok := d.driverFile(path.Join(dir, n), cf.c); ok {
					seen[n] = true
					d.inv.ConfigFiles[cf.c] = append(d.inv.ConfigFiles[cf.c], f)
				}
			}
		}
	}
}

// xorgDirs are the X.Org module directories, in NVIDIA's search order: under
// each directory of the driver's libraries first, then the usual ones.
func xorgDirs(libDirs []string) []string {
	var out []string
	sub := []string{"xorg/modules/drivers", "xorg/modules/extensions", "xorg/modules/updates/drivers", "xorg/modules/updates/extensions"}
	for _, d := range libDirs {
		out = append(out, path.Join(d, "nvidia/xorg"))
		for _, s := range sub {
			out = append(out, path.Join(d, s))
		}
	}
	for _, d := range []string{"/usr/lib", "/usr/lib64"} {
		for _, s := range sub {
			out = append(out, path.Join(d, s))
		}
	}
	for _, d := range []string{"/usr/X11R6/lib", "/usr/X11R6/lib64"} {
		for _, s := range sub {
			out = append(out, path.Join(d, strings.TrimPrefix(s, "xorg/")))
		}
	}
	return out
}

// xorgModules finds, for display, the X.Org driver modules NVIDIA injects:
// nvidia_drv.so and libglxserver_nvidia.so.<driver version>, the first of
// each in xorgDirs, at the path where it was found (so that a ModulePath of
// the injected xorg.conf.d file stays valid). The unversioned
// libglxserver_nvidia.so the X server loads is the same file mounted a
// second time beside it (NVIDIA's hook makes it a link). On Debian only the
// unversioned name is in the X.Org directories (an /etc/alternatives link
// to /usr/lib/nvidia/current/libglxserver_nvidia.so.<version>); it counts
// when it resolves to this driver's version.
func (d *discovery) xorgModules() {
	var libDirs []string
	for _, f := range d.inv.Libraries[Compute] {
		if dir := path.Dir(f.Path); !f.Lib32 && !slices.Contains(libDirs, dir) {
			libDirs = append(libDirs, dir)
		}
	}
	glx := "libglxserver_nvidia.so"
	versioned := glx + "." + d.inv.DriverVersion
	for _, names := range [][]string{{"nvidia_drv.so"}, {versioned, glx}} {
	search:
		for _, dir := range xorgDirs(libDirs) {
			for _, n := range names {
				f, ok := d.driverFile(path.Join(dir, n), Display)
				if !ok {
					continue
				}
				if n == glx && path.Base(f.HostPath) != versioned {
					d.skip(f.Path, fmt.Sprintf("it is %s, not version %s of the driver", path.Base(f.HostPath), d.inv.DriverVersion), true)
					continue
				}
				d.inv.ConfigFiles[Display] = append(d.inv.ConfigFiles[Display], f)
				if len(names) > 1 { // libglxserver_nvidia
					link := f
					link.Path = path.Join(dir, glx)
					if link.Path != f.Path {
						d.inv.ConfigFiles[Display] = append(d.inv.ConfigFiles[Display], link)
					}
				}
				break search
			}
		}
	}
}

// gbmBackend gives graphics GBM's NVIDIA backend, gbm/nvidia-drm_gbm.so,
// which NVIDIA's installer links to ../libnvidia-allocator.so.1 and NVIDIA's
// CDI hook creates (without it GBM, and EGL on Wayland, find no NVIDIA
// backend): at the host's own path when a library directory has one that
// resolves to this driver's allocator (Debian's libraries are elsewhere,
// but GBM looks in <libdir>/gbm), else beside the allocator. It is mounted
// as the allocator file itself, so it needs neither the hook nor compute.
func (d *discovery) gbmBackend() {
	i := slices.IndexFunc(d.inv.Libraries[Compute], func(f File) bool {
		return !f.Lib32 && libName(path.Base(f.Path)) == "libnvidia-allocator"
	})
	if i < 0 {
		return
	}
	alloc := d.inv.Libraries[Compute][i]
	p := path.Join(path.Dir(alloc.Path), "gbm/nvidia-drm_gbm.so")
	for _, dir := range LibraryDirs64() {
		cand := path.Join("/", dir, "gbm/nvidia-drm_gbm.so")
		f, ok := d.driverFile(cand, Graphics)
		if !ok {
			continue
		}
		if f.HostPath == alloc.HostPath {
			p = cand
			break
		}
		d.skip(cand, fmt.Sprintf("it is %s, not this driver's libnvidia-allocator", f.HostPath), true)
	}
	d.inv.ConfigFiles[Graphics] = append(d.inv.ConfigFiles[Graphics],
		File{HostPath: alloc.HostPath, Path: p, Capability: Graphics, BaseCapability: Graphics})
}

// extraFiles finds the host files of the extra device groups (GPUDirect
// Storage: the udev database cuFile reads and its configuration) and the
// MPS pipe directory. All are on the host root, not the driver root.
func (d *discovery) extraFiles() {
	for _, f := range []struct {
		group, p string
		dir      bool
	}{
		{"gds", "/run/udev", true},
		{"gds", "/etc/cufile.json", false},
	} {
		_, rel, fi, err := resolveIn(d.view("/"), f.p)
		if err != nil || fi.IsDir() != f.dir || (!f.dir && !fi.Mode().IsRegular()) {
			continue
		}
		d.inv.ExtraFiles[f.group] = append(d.inv.ExtraFiles[f.group], File{HostPath: filepath.Join("/", rel), Path: f.p})
	}
	if d.o.mpsDir != "" {
		_, rel, fi, err := resolveIn(d.view("/"), d.o.mpsDir)
		if err == nil && fi.IsDir() {
			d.inv.MPSPipeDir = &File{HostPath: filepath.Join("/", rel), Path: d.o.mpsDir, Capability: Compute, BaseCapability: Compute}
		}
	}
}

// sortedNamesIn resolves dir inside root (never leaving it) and returns its
// entries, sorted; none when it is missing or unreadable.
func sortedNamesIn(root, dir string) []string {
	real, _, _, err := resolveIn(root, dir)
	if err != nil {
		return nil
	}
	names, err := readDirNames(real)
	if err != nil {
		return nil
	}
	slices.Sort(names)
	return names
}
