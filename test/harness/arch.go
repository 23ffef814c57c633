package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Arch is the host's architecture in the spellings images and loaders use.
// It is the one place the suite derives paths like /lib/x86_64-linux-gnu.
type Arch struct {
	// GOARCH is Go's name ("amd64"); OCI image configs use it too.
	GOARCH string
	// Multiarch is Debian's multiarch tuple ("x86_64-linux-gnu").
	Multiarch string
	// Loader is glibc's dynamic loader file name ("ld-linux-x86-64.so.2").
	Loader string
	// LoaderDir is where PT_INTERP points ("/lib64" on x86_64, "/lib" on arm64).
	LoaderDir string
	// Musl is musl's machine name ("x86_64"): /lib/ld-musl-<Musl>.so.1.
	Musl string
}

// LibDir is the Debian library directory, e.g. /lib/x86_64-linux-gnu.
func (a Arch) LibDir() string { return "/lib/" + a.Multiarch }

// UsrLibDir is /usr/lib/<multiarch>.
func (a Arch) UsrLibDir() string { return "/usr/lib/" + a.Multiarch }

// LoaderPath is the PT_INTERP path, e.g. /lib64/ld-linux-x86-64.so.2.
func (a Arch) LoaderPath() string { return filepath.Join(a.LoaderDir, a.Loader) }

// MuslLoader is musl's loader file name, e.g. ld-musl-x86_64.so.1.
func (a Arch) MuslLoader() string { return "ld-musl-" + a.Musl + ".so.1" }

// HostArch maps runtime.GOARCH to the loader and library names and checks
// that the host's glibc is where that mapping says.
func HostArch() (Arch, error) {
	var a Arch
	switch runtime.GOARCH {
	case "amd64":
		a = Arch{GOARCH: "amd64", Multiarch: "x86_64-linux-gnu", Loader: "ld-linux-x86-64.so.2", LoaderDir: "/lib64", Musl: "x86_64"}
	case "arm64":
		a = Arch{GOARCH: "arm64", Multiarch: "aarch64-linux-gnu", Loader: "ld-linux-aarch64.so.1", LoaderDir: "/lib", Musl: "aarch64"}
	default:
		return Arch{}, fmt.Errorf("harness: architecture %s has no loader mapping (add it in test/harness/arch.go)", runtime.GOARCH)
	}
	for _, f := range []string{a.Loader, "libc.so.6"} {
		if _, err := os.Stat(filepath.Join(a.LibDir(), f)); err != nil {
			return Arch{}, fmt.Errorf("harness: host glibc not where %s expects it: %w", runtime.GOARCH, err)
		}
	}
	return a, nil
}
