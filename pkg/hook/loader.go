//go:build linux

package hook

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// glibcLoader is the PT_INTERP path of glibc programs for this architecture.
func glibcLoader() string {
	if runtime.GOARCH == "arm64" {
		return "/lib/ld-linux-aarch64.so.1"
	}
	return "/lib64/ld-linux-x86-64.so.2"
}

// muslPathFile returns /etc/ld-musl-<arch>.path when the image has a musl
// loader (/lib/ld-musl-<arch>.so.1), else "".
func muslPathFile(root *rootFS) (string, error) {
	names, err := root.readDirNames("/lib")
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	for _, n := range names {
		if arch, ok := strings.CutPrefix(n, "ld-musl-"); ok {
			if arch, ok = strings.CutSuffix(arch, ".so.1"); ok && arch != "" && !strings.ContainsAny(arch, "/.") {
				return "/etc/ld-musl-" + arch + ".path", nil
			}
		}
	}
	return "", nil
}

// muslDefaultPath is musl's search path when no path file exists.
func muslDefaultPath() []string { return []string{"/lib", "/usr/local/lib", "/usr/lib"} }

// muslPaths returns the path file content: folders first, then the image's
// own entries (or musl's defaults when it had no file), without duplicates.
func muslPaths(root *rootFS, file string, folders []string) (string, error) {
	old, ok, err := root.readFile(file, maxTextSize)
	if err != nil {
		return "", err
	}
	rest := muslDefaultPath()
	if ok {
		rest = strings.FieldsFunc(string(old), func(r rune) bool { return r == '\n' || r == ':' })
	}
	out := slices.Clone(folders)
	for _, p := range rest {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return lines(out), nil
}

// compatFolders returns [CompatDir] when the image ships CUDA forward
// compatibility libraries (CompatDir/libcuda.so.<version>) whose major
// version is newer than the host driver's; nil otherwise. Only the file
// names are read: the directory is handed to ldconfig, which runs in the
// container's own root, never mounted or opened on the host's behalf.
func compatFolders(root *rootFS, driverVersion string) ([]string, error) {
	host, ok := major(driverVersion)
	if !ok {
		return nil, nil
	}
	names, err := root.readDirNames(CompatDir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if v, ok := strings.CutPrefix(n, "libcuda.so."); ok {
			if m, ok := major(v); ok && m > host {
				return []string{CompatDir}, nil
			}
		}
	}
	return nil, nil
}

func major(version string) (int, bool) {
	m, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(m)
	return n, err == nil && n > 0
}
