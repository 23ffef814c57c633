package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Tools are the binaries the suites run. Containerd, Ctr, Shim and Crictl
// come from .cache/tools/bin (test/tools.sh builds them, cached by
// version); Runc is Debian's; Crun is optional ("" when test/tools.sh could
// not build it). Crio and Pinns (CRI-O v1.34.0, test/tools.sh) and Debian's
// Conmon and Podman are "" when missing: only the suites that run CRI-O
// need them, and those fail (never skip) without them.
type Tools struct {
	Bin        string // the .cache/tools/bin directory
	Containerd string
	Ctr        string
	Shim       string
	Crictl     string
	Runc       string
	Crun       string
	Crio       string
	Pinns      string
	Conmon     string
	Podman     string
}

// RepoRoot finds the repository root (the directory holding go.mod) from
// the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Bootstrap runs test/tools.sh (TOOLS=e2e: apt packages when root and
// missing, containerd, ctr, shim, crictl, crun and CRI-O cached under
// .cache/tools) and returns the tools it made. The shell script stays the
// one bootstrap; this only reads its result.
func Bootstrap(repo string) (Tools, error) {
	cmd := exec.Command("bash", filepath.Join(repo, "test", "tools.sh"))
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "TOOLS=e2e", "WITH_PODMAN=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Tools{}, fmt.Errorf("harness: test/tools.sh: %w: %s", err, tail(stderr.String(), 20))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return ToolsAt(lines[len(lines)-1])
}

// ToolsAt returns the tools in bin (a .cache/tools/bin directory) and checks
// the required ones exist. E2E_CRUN names another crun binary.
func ToolsAt(bin string) (Tools, error) {
	t := Tools{
		Bin:        bin,
		Containerd: filepath.Join(bin, "containerd"),
		Ctr:        filepath.Join(bin, "ctr"),
		Shim:       filepath.Join(bin, "containerd-shim-runc-v2"),
		Crictl:     filepath.Join(bin, "crictl"),
	}
	var errs []error
	for _, p := range []string{t.Containerd, t.Ctr, t.Shim} {
		if err := executable(p); err != nil {
			errs = append(errs, err)
		}
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		errs = append(errs, fmt.Errorf("runc not installed (apt-get install runc): %w", err))
	}
	t.Runc = runc
	if c := os.Getenv("E2E_CRUN"); c != "" {
		t.Crun = c
	} else if executable(filepath.Join(bin, "crun")) == nil {
		t.Crun = filepath.Join(bin, "crun")
	}
	if executable(filepath.Join(bin, "crio")) == nil && executable(filepath.Join(bin, "pinns")) == nil {
		t.Crio, t.Pinns = filepath.Join(bin, "crio"), filepath.Join(bin, "pinns")
	}
	t.Conmon, _ = exec.LookPath("conmon")
	t.Podman, _ = exec.LookPath("podman")
	if err := errors.Join(errs...); err != nil {
		return Tools{}, fmt.Errorf("harness: tools in %s: %w", bin, err)
	}
	return t, nil
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RequireRoot is what root-only tests call first.
func RequireRoot(t interface{ Skip(args ...any) }) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it runs containerd, runc and mknod; run it as root, e.g. 'sudo make test-e2e'")
	}
}
