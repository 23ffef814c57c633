package hookproto

import (
	"fmt"
	"path"
	"runtime"
	"strings"
)

// Layout says which directories of the image hookless mode mounts the
// libraries into (injection.hooklessLayout). glibc's loader looks in
// /etc/ld.so.cache first, then in its built-in system directories, so a
// library present there under its SONAME is found with no cache entry and no
// environment.
type Layout string

// The layouts; Layouts lists them.
const (
	// LayoutAuto: both LayoutDebian's and LayoutRHEL's directories, for
	// images of unknown family (the other family's mounts are never searched).
	LayoutAuto Layout = "auto"
	// LayoutDebian: Debian/Ubuntu, /usr/lib/<multiarch triplet>.
	LayoutDebian Layout = "debian"
	// LayoutRHEL: RHEL/Fedora/SUSE/Amazon Linux, /usr/lib64.
	LayoutRHEL Layout = "rhel"
	// LayoutFallback: HooklessDir only; found through LD_LIBRARY_PATH
	// (HooklessLibraryPath), which CUDA base images already set.
	LayoutFallback Layout = "fallback"
)

// Layouts returns every layout, in the order documentation lists them. It is
// the one list: ParseLayout and the configuration's validation use it.
func Layouts() []Layout { return []Layout{LayoutAuto, LayoutDebian, LayoutRHEL, LayoutFallback} }

// ParseLayout returns the layout named s, or an error naming the layouts.
func ParseLayout(s string) (Layout, error) {
	for _, l := range Layouts() {
		if string(l) == s {
			return l, nil
		}
	}
	names := make([]string, 0, len(Layouts()))
	for _, l := range Layouts() {
		names = append(names, string(l))
	}
	return "", fmt.Errorf("hookless layout %q: want one of %s", s, strings.Join(names, ", "))
}

// HooklessDir is the directory of LayoutFallback, the one CUDA images put in
// LD_LIBRARY_PATH (/usr/local/nvidia/lib:/usr/local/nvidia/lib64). The other
// layouts do not mount it: their directories are searched by the loader
// anyway, and each file there cost a mount (and a new file in the image).
const HooklessDir = "/usr/local/nvidia/lib64"

// HooklessLib is one injected library.
type HooklessLib struct {
	// Path is the host path of the library file (mount source).
	Path string
	// SONAME is its DT_SONAME, e.g. libcuda.so.1. Libraries without one
	// cannot be found by name and are skipped.
	SONAME string
}

// MountPlan is one read-only bind mount of a host file into the container.
type MountPlan struct {
	Source, Destination string
}

// HooklessMounts is the hookless mode's rule: every library is mounted under
// its SONAME and its AliasNames (libcuda.so, ...) in each directory of the
// layout (LayoutFallback: HooklessDir only). Destinations are unique (first library wins) and
// in a stable order: directory, then input order. An unknown layout gives
// nil.
func HooklessMounts(libs []HooklessLib, layout Layout) []MountPlan {
	return hooklessMounts(libs, layout.dirs(runtime.GOARCH))
}

func hooklessMounts(libs []HooklessLib, dirs []string) []MountPlan {
	var plan []MountPlan
	seen := map[string]bool{}
	for _, d := range dirs {
		for _, l := range libs {
			if l.SONAME == "" || l.Path == "" || strings.Contains(l.SONAME, "/") {
				continue
			}
			for _, n := range append([]string{l.SONAME}, AliasNames(l.SONAME)...) {
				dst := path.Join(d, n)
				if !seen[dst] {
					seen[dst] = true
					plan = append(plan, MountPlan{Source: l.Path, Destination: dst})
				}
			}
		}
	}
	return plan
}

// dirs returns the directories of l on goarch; nil for an unknown layout
// or architecture.
func (l Layout) dirs(goarch string) []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[goarch]
	debian := "/usr/lib/" + triplet
	switch {
	case triplet == "":
		return nil
	case l == LayoutDebian:
		return []string{debian}
	case l == LayoutRHEL:
		return []string{"/usr/lib64"}
	case l == LayoutAuto:
		return []string{debian, "/usr/lib64"}
	case l == LayoutFallback:
		return []string{HooklessDir}
	}
	return nil
}

// AliasNames returns the extra names a driver library is opened by besides
// its SONAME, as NVIDIA's create-symlinks hook makes them: the development
// name of libcuda (dlopen("libcuda.so") by PyTorch, Triton, JAX) and of the
// optical flow library, and the GLVND indirect GLX name.
func AliasNames(soname string) []string {
	switch soname {
	case "libcuda.so.1":
		return []string{"libcuda.so"}
	case "libnvidia-opticalflow.so.1":
		return []string{"libnvidia-opticalflow.so"}
	case "libGLX_nvidia.so.0":
		return []string{"libGLX_indirect.so.0"}
	}
	return nil
}

// CacheNames returns the ld.so.cache entries ldconfig makes for the library
// at the container path lib with DT_SONAME soname, given the links Links
// makes: its folder joined with the SONAME (the file name when it has
// none), and the alias links ldconfig lists too, the development names
// (ending in ".so" and a prefix of the SONAME, e.g. libcuda.so; not
// libGLX_indirect.so.0). pkg/hook's TestMergedCacheMatchesLdconfig checks
// this rule against the real ldconfig.
func CacheNames(lib, soname string, lib32 bool) []Soname {
	if soname == "" || strings.Contains(soname, "/") {
		return []Soname{{Path: lib, Lib32: lib32}}
	}
	dir := path.Dir(lib)
	out := []Soname{{Path: path.Join(dir, soname), Lib32: lib32}}
	for _, alias := range AliasNames(soname) {
		if strings.HasSuffix(alias, ".so") && strings.HasPrefix(soname, alias) {
			out = append(out, Soname{Path: path.Join(dir, alias), Lib32: lib32})
		}
	}
	return out
}

// HooklessLibraryPath returns the LD_LIBRARY_PATH value for the hookless
// fallback: dir first, then the image's value (current) unchanged; current
// itself when it already lists dir. It never adds an empty element (which
// the loader reads as the working directory).
func HooklessLibraryPath(current, dir string) string {
	for _, p := range strings.Split(current, ":") {
		if path.Clean(p) == dir {
			return current
		}
	}
	if current == "" {
		return dir
	}
	return dir + ":" + current
}
