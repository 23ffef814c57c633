package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the programs built from the tree for a run.
type Binaries struct {
	GPUNRI string // static gpu-nri
	Hook   string // static gpu-nri-hook
	// CUDATestMusl is test/csrc/cudatest.c built with musl-gcc ("" when
	// musl-gcc is missing: the musl image is then not built).
	CUDATestMusl string
	// Preload is the hostile image's LD_PRELOAD payload: its constructor
	// appends to PreloadMarker, a host path that must never appear.
	Preload       string
	PreloadMarker string
}

// BuildBinaries builds gpu-nri and gpu-nri-hook (CGO_ENABLED=0), the musl
// cudatest and the preload payload into dir/bin and dir/build.
func BuildBinaries(repo, dir string) (Binaries, error) {
	bin, build := filepath.Join(dir, "bin"), filepath.Join(dir, "build")
	for _, d := range []string{bin, build} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Binaries{}, fmt.Errorf("harness: %w", err)
		}
	}
	b := Binaries{
		GPUNRI:        filepath.Join(bin, "gpu-nri"),
		Hook:          filepath.Join(bin, "gpu-nri-hook"),
		Preload:       filepath.Join(build, "x.so"),
		PreloadMarker: filepath.Join(dir, "preload-ran-on-host"),
	}
	for out, pkg := range map[string]string{b.GPUNRI: "./plugin/cmd/gpu-nri", b.Hook: "./plugin/cmd/gpu-nri-hook"} {
		if err := GoBuild(repo, out, pkg); err != nil {
			return Binaries{}, err
		}
	}
	src := filepath.Join(repo, "test", "csrc", "cudatest.c")
	if musl, err := exec.LookPath("musl-gcc"); err == nil {
		out := filepath.Join(build, "cudatest-musl")
		if err := run(musl, "-O2", "-o", out, src); err != nil {
			return Binaries{}, err
		}
		b.CUDATestMusl = out
	}
	preload := fmt.Sprintf(`#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void e2e_preload(void) {
  int fd = open(%q, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) { write(fd, "preload ran\n", 12); close(fd); }
}
`, b.PreloadMarker)
	csrc := filepath.Join(build, "preload.c")
	if err := os.WriteFile(csrc, []byte(preload), 0o644); err != nil {
		return Binaries{}, fmt.Errorf("harness: %w", err)
	}
	if err := run("gcc", "-O2", "-shared", "-fPIC", "-o", b.Preload, csrc); err != nil {
		return Binaries{}, err
	}
	return b, nil
}

// GoBuild builds the repository's package pkg (e.g. "./plugin/cmd/gpu-nri")
// into out as gpu-nri is built for the suites: static (CGO_ENABLED=0).
func GoBuild(repo, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("harness: go build %s: %w: %s", pkg, err, tail(string(b), 20))
	}
	return nil
}

func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("harness: %s %s: %w: %s", name, strings.Join(args, " "), err, tail(string(out), 10))
	}
	return nil
}
