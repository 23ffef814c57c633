package realdriver

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/gpu-nri/gpu-nri/pkg/ldcache"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// Package is one extracted driver userland (a directory test/nvidia-debs.sh
// made, e.g. .cache/tools/nvidia-debs/driver-535.261.03).
type Package struct {
	// Dir holds root/ (the extracted files) and control/<deb>/ (each
	// package's control files).
	Dir string
	// Version is the driver version, e.g. "535.261.03".
	Version string
}

// Open checks dir (complete once its .done file exists) and reads the
// driver version from its name (driver-<version>).
func Open(dir string) (Package, error) {
	if _, err := os.Stat(filepath.Join(dir, ".done")); err != nil {
		return Package{}, fmt.Errorf("realdriver: %s is not a complete extraction (run bash test/nvidia-debs.sh driver): %w", dir, err)
	}
	v, ok := strings.CutPrefix(filepath.Base(dir), "driver-")
	if !ok {
		return Package{}, fmt.Errorf("realdriver: %s: want a driver-<version> directory", dir)
	}
	return Package{Dir: dir, Version: v}, nil
}

func (p Package) root() string { return filepath.Join(p.Dir, "root") }

// postinst is nvidia-alternative's postinst.
func (p Package) postinst() (string, error) {
	m, err := filepath.Glob(filepath.Join(p.Dir, "control", "nvidia-alternative_*", "postinst"))
	if err != nil || len(m) != 1 {
		return "", fmt.Errorf("realdriver: %s: want one control/nvidia-alternative_*/postinst, found %d", p.Dir, len(m))
	}
	return m[0], nil
}

// Link is a symbolic link: Path (relative to the driver root, absolute in
// its terms) points at Target, written as given.
type Link struct {
	Path   string
	Target string
}

// Alternative is one link update-alternatives manages: Link ->
// /etc/alternatives/Name -> Source.
type Alternative struct {
	Link, Name, Source string
}

var (
	slaveRe      = regexp.MustCompile(`^\s*\$\(add_slave\s+(\S+)\s+(\S+)\s+(\S+)\)\s*$`)
	multiSlaveRe = regexp.MustCompile(`^\s*\$\(add_multiarch_slave\s+(\S+)\s+("[^"]*"|\S+)\s+(\S+)\s+(\S+)\s+("[^"]*"|\S+)\)\s*$`)
	tripletsRe   = regexp.MustCompile(`^TRIPLETS="([^"]*)"`)
)

// Alternatives reads the "nvidia" alternative's links from the postinst at
// path, as its trigger computes them for the files under root: the master
// link /usr/lib/nvidia/nvidia -> /usr/lib/nvidia/current and every
// add_slave / add_multiarch_slave call on its own line (the kernel-module
// slaves included: their sources are absent without the module package, so
// they drop out), kept when the source is a file in root and the link's
// directory exists there, the script's own test. The slave that needs
// /usr/include/nvml.h (assigned on its own, not listed) is not read.
func Alternatives(path, root string) ([]Alternative, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("realdriver: %w", err)
	}
	defer f.Close()
	var triplets []string
	var out []Alternative
	add := func(link, name, source string) {
		if !isFile(root, source) || !isDir(root, filepath.Dir(link)) {
			return
		}
		out = append(out, Alternative{Link: link, Name: "nvidia--" + name, Source: source})
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := tripletsRe.FindStringSubmatch(line); m != nil {
			triplets = strings.Fields(m[1])
			continue
		}
		if m := slaveRe.FindStringSubmatch(line); m != nil {
			add(m[1], m[2], m[3])
			continue
		}
		if m := multiSlaveRe.FindStringSubmatch(line); m != nil {
			if len(triplets) == 0 {
				return nil, fmt.Errorf("realdriver: %s: add_multiarch_slave before TRIPLETS", path)
			}
			tdir, tsub, file, sdir, ssub := m[1], strings.Trim(m[2], `"`), m[3], m[4], strings.Trim(m[5], `"`)
			for _, t := range triplets {
				suffix := strings.TrimSuffix(t, "/")
				if suffix != "" {
					suffix = "-" + strings.TrimPrefix(suffix, "/")
				}
				add(tdir+t+tsub+file, file+suffix, sdir+t+ssub+file)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("realdriver: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("realdriver: %s: no alternatives found for %s", path, root)
	}
	master := Alternative{Link: "/usr/lib/nvidia/nvidia", Name: "nvidia", Source: "/usr/lib/nvidia/current"}
	return append([]Alternative{master}, out...), nil
}

func resolve(root, rel string) (string, bool) {
	p, err := securejoin.SecureJoin(root, rel)
	return p, err == nil
}

func isFile(root, rel string) bool {
	p, ok := resolve(root, rel)
	if !ok {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func isDir(root, rel string) bool {
	p, ok := resolve(root, rel)
	if !ok {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// systemDirs are directories a Debian system with nvidia-driver's
// dependencies has before the driver is installed (libvdpau1 makes vdpau/,
// libgbm1 gbm/, man-db the man sections, base-files the rest); the
// alternatives' conditions test them.
var systemDirs = []string{"/usr/bin", "/usr/sbin", "/etc/modprobe.d", "/etc/nvidia", "/usr/lib/nvidia",
	"/usr/lib/x86_64-linux-gnu/vdpau", "/usr/lib/x86_64-linux-gnu/gbm", "/usr/share/man/man1", "/usr/share/nvidia"}

// skipped are package paths that are not part of the driver a host runs.
func skipped(rel string) bool {
	for _, p := range []string{"/usr/share/doc/", "/usr/share/bug/", "/usr/share/lintian/"} {
		if strings.HasPrefix(rel, p) {
			return true
		}
	}
	return false
}

// runPath maps a Debian package path to where NVIDIA's .run installer puts
// the same file ("" keeps it where it is).
func runPath(rel string) string {
	const cur = "/usr/lib/x86_64-linux-gnu/nvidia/current/"
	if name, ok := strings.CutPrefix(rel, cur); ok {
		switch {
		case strings.HasPrefix(name, "libvdpau_nvidia.so"):
			return "/usr/lib/x86_64-linux-gnu/vdpau/" + name
		case name == "nvidia-drm_gbm.so":
			return "/usr/lib/x86_64-linux-gnu/gbm/" + name
		case name == "nvoptix.bin":
			return "/usr/share/nvidia/" + name
		}
		return "/usr/lib/x86_64-linux-gnu/" + name
	}
	if name, ok := strings.CutPrefix(rel, "/usr/lib/nvidia/current/"); ok {
		switch {
		case strings.HasSuffix(name, ".1.gz"):
			return "/usr/share/man/man1/" + name
		case name == "nvidia_drv.so":
			return "/usr/lib/xorg/modules/drivers/" + name
		case strings.HasPrefix(name, "libglxserver_nvidia.so"):
			return "/usr/lib/xorg/modules/extensions/" + name
		case name == "nvidia.ids":
			return "/usr/share/nvidia/" + name
		}
		return "/usr/bin/" + name
	}
	if fw, ok := strings.CutPrefix(rel, "/usr/lib/firmware/"); ok { // trixie's merged-/usr packages
		return "/lib/firmware/" + fw
	}
	switch rel {
	case "/usr/sbin/nvidia-cuda-mps-server":
		return "/usr/bin/nvidia-cuda-mps-server"
	case "/etc/nvidia/current/nvidia-drm-outputclass.conf":
		return "/usr/share/X11/xorg.conf.d/10-nvidia.conf"
	}
	return ""
}

// Installed is what Install created under a driver root (paths relative
// to it), for Uninstall.
type Installed struct {
	Version string
	Layout  string
	// Paths are the files and links created, in creation order.
	Paths []string
	// Alternatives are the Debian layout's alternatives links.
	Alternatives []Alternative
}

// Install puts p's files into driverRoot in layout (simhost.LayoutDebian or
// simhost.LayoutNVIDIA). Files are hard links to the extraction when both
// are on one file system (copies otherwise): tests never write to them.
// Then it writes /etc/ld.so.cache as ldconfig would.
func Install(p Package, driverRoot, layout string) (*Installed, error) {
	if layout != simhost.LayoutDebian && layout != simhost.LayoutNVIDIA {
		return nil, fmt.Errorf("realdriver: unknown layout %q", layout)
	}
	in := &Installed{Version: p.Version, Layout: layout}
	for _, d := range systemDirs {
		if err := os.MkdirAll(filepath.Join(driverRoot, d), 0o755); err != nil {
			return nil, fmt.Errorf("realdriver: %w", err)
		}
	}
	src := p.root()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(path, src+"/"))
		if skipped(rel) {
			return nil
		}
		dst := rel
		if layout == simhost.LayoutNVIDIA {
			if r := runPath(rel); r != "" {
				dst = r
			}
		}
		return in.place(path, driverRoot, dst, d)
	})
	if err != nil {
		return nil, fmt.Errorf("realdriver: installing %s: %w", p.Dir, err)
	}
	if layout == simhost.LayoutDebian {
		pi, err := p.postinst()
		if err != nil {
			return nil, err
		}
		alts, err := Alternatives(pi, driverRoot)
		if err != nil {
			return nil, err
		}
		for _, a := range alts {
			alt := "/etc/alternatives/" + a.Name
			if err := in.link(driverRoot, a.Source, alt); err != nil {
				return nil, err
			}
			if err := in.link(driverRoot, alt, a.Link); err != nil {
				return nil, err
			}
		}
		in.Alternatives = alts
	}
	if err := in.writeLDCache(driverRoot); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *Installed) place(src, driverRoot, rel string, d fs.DirEntry) error {
	dst := filepath.Join(driverRoot, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if d.Type()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
	} else if err := os.Link(src, dst); err != nil {
		b, rerr := os.ReadFile(src)
		if rerr != nil {
			return rerr
		}
		st, serr := os.Stat(src)
		if serr != nil {
			return serr
		}
		if err := os.WriteFile(dst, b, st.Mode().Perm()); err != nil {
			return err
		}
	}
	in.Paths = append(in.Paths, rel)
	return nil
}

func (in *Installed) link(driverRoot, target, rel string) error {
	dst := filepath.Join(driverRoot, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("realdriver: %w", err)
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("realdriver: %w", err)
	}
	if err := os.Symlink(target, dst); err != nil {
		return fmt.Errorf("realdriver: %w", err)
	}
	in.Paths = append(in.Paths, rel)
	return nil
}

// trustedDirs are the directories ldconfig scans on Debian (x86-64).
var trustedDirs = []string{"/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib", "/lib"}

// writeLDCache writes /etc/ld.so.cache listing every name in the trusted
// directories that is its library's SONAME (what ldconfig records: the
// SONAME links, followed inside the driver root).
func (in *Installed) writeLDCache(driverRoot string) error {
	var entries []ldcache.Entry
	seen := map[string]bool{}
	for _, dir := range trustedDirs {
		real, ok := resolve(driverRoot, dir)
		if !ok {
			continue
		}
		des, err := os.ReadDir(real)
		if err != nil {
			continue
		}
		for _, de := range des {
			name := de.Name()
			if !strings.Contains(name, ".so") {
				continue
			}
			rel := filepath.Join(dir, name)
			p, ok := resolve(driverRoot, rel)
			if !ok {
				continue
			}
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				continue
			}
			so, err := ldcache.ReadSONAME(p)
			if err != nil || so != name {
				continue
			}
			key := so + "\x00" + p
			if seen[key] {
				continue // /lib/x86_64-linux-gnu is /usr/lib/x86_64-linux-gnu on merged /usr
			}
			seen[key] = true
			entries = append(entries, ldcache.Entry{Key: so, Value: rel, Flags: int32(ldcache.FlagELFLibc6 | ldcache.FlagX8664Lib64)})
		}
	}
	if len(entries) == 0 {
		return errors.New("realdriver: no library for ld.so.cache")
	}
	cache := filepath.Join(driverRoot, "etc/ld.so.cache")
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return fmt.Errorf("realdriver: %w", err)
	}
	if err := os.WriteFile(cache, ldcache.Write(entries), 0o644); err != nil {
		return fmt.Errorf("realdriver: %w", err)
	}
	return nil
}

// Uninstall removes what in created (alternatives links included), then
// the directories that became empty, as dpkg --purge does; the ld.so.cache
// stays (ldconfig rewrites it on the next Install).
func Uninstall(in *Installed, driverRoot string) error {
	dirs := map[string]bool{}
	for _, rel := range in.Paths {
		if err := os.Remove(filepath.Join(driverRoot, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("realdriver: %w", err)
		}
		for d := filepath.Dir(rel); d != "/" && d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	keep := slices.Clone(systemDirs)
	list := make([]string, 0, len(dirs))
	for d := range dirs {
		list = append(list, d)
	}
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	for _, d := range list {
		if slices.Contains(keep, d) {
			continue
		}
		_ = os.Remove(filepath.Join(driverRoot, d)) // only when empty
	}
	return nil
}

// RemoveSimulated removes test/simhost's simulated driver files (libraries,
// their links and aliases, binaries, config files, firmware, the
// /etc/alternatives links and ld.so.cache) from h's driver root, leaving
// its merged /usr, loader and libc, /dev and /proc.
func RemoveSimulated(h *simhost.Host) error {
	root := h.Config.DriverRoot
	var rels []string
	for _, group := range [][]simhost.File{h.Libraries, h.Binaries, h.ConfigFiles, h.Firmware} {
		for _, f := range group {
			rels = append(rels, f.Path, f.Link, f.Alias)
			if r, ok := strings.CutPrefix(f.HostPath, root); ok {
				rels = append(rels, r) // a Debian binary's real file
			}
		}
	}
	for _, rel := range rels {
		if rel == "" {
			continue
		}
		if err := os.Remove(filepath.Join(root, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("realdriver: %w", err)
		}
	}
	for _, rel := range []string{"/etc/alternatives", "/etc/ld.so.cache"} {
		if err := os.RemoveAll(filepath.Join(root, rel)); err != nil {
			return fmt.Errorf("realdriver: %w", err)
		}
	}
	return nil
}

// Upgrade replaces old (installed in driverRoot) with p the way dpkg
// upgrades packages: p's files are unpacked over the old ones (each
// replaced in place), then the old files p does not have are removed and
// the directories that became empty with them. Directories both versions
// use (nvidia/current, ...) stay, as under dpkg.
func Upgrade(old *Installed, p Package, driverRoot string) (*Installed, error) {
	in, err := Install(p, driverRoot, old.Layout)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	for _, rel := range in.Paths {
		kept[rel] = true
	}
	var gone []string
	for _, rel := range old.Paths {
		if !kept[rel] {
			gone = append(gone, rel)
		}
	}
	if err := Uninstall(&Installed{Paths: gone}, driverRoot); err != nil {
		return nil, err
	}
	return in, nil
}
