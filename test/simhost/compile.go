package simhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gpu-nri/gpu-nri/test/csrc"
)

// compiler builds the embedded C sources with gcc into a cache keyed by the
// hash of the sources, the flags and the gcc binary, so that each artifact
// is built once per machine (until the cache dir is removed).
type compiler struct {
	gcc   string
	cache string
}

func newCompiler(cacheDir string) (*compiler, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return nil, fmt.Errorf("simhost: gcc is needed to build the simulated driver: %w", err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("simhost: compiler cache: %w", err)
	}
	return &compiler{gcc: gcc, cache: cacheDir}, nil
}

// build compiles src (a file of package csrc) with args and returns the
// path of the cached output.
func (c *compiler) build(src string, args ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", c.gcc, src, strings.Join(args, "\x00"))
	entries, err := fs.ReadDir(csrc.Files, ".")
	if err != nil {
		return "", fmt.Errorf("simhost: embedded sources: %w", err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(csrc.Files, e.Name())
		if err != nil {
			return "", fmt.Errorf("simhost: embedded source %s: %w", e.Name(), err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", e.Name(), len(b))
		h.Write(b)
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]
	out := filepath.Join(c.cache, key+".out")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	work, err := os.MkdirTemp(c.cache, "build-")
	if err != nil {
		return "", fmt.Errorf("simhost: %w", err)
	}
	defer os.RemoveAll(work)
	for _, e := range entries {
		b, _ := fs.ReadFile(csrc.Files, e.Name())
		if err := os.WriteFile(filepath.Join(work, e.Name()), b, 0o644); err != nil {
			return "", fmt.Errorf("simhost: %w", err)
		}
	}
	tmp := filepath.Join(work, "a.out")
	cmdArgs := append([]string{"-Wall", "-O1", "-o", tmp, filepath.Join(work, src)}, args...)
	var stderr bytes.Buffer
	cmd := exec.Command(c.gcc, cmdArgs...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("simhost: gcc %s: %w: %s", strings.Join(cmdArgs, " "), err, strings.TrimSpace(stderr.String()))
	}
	// Rename is atomic: concurrent builders of the same key both succeed.
	if err := os.Rename(tmp, out); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("simhost: %w", err)
	}
	return out, nil
}

// copyFile copies a cached artifact to dst with mode perm.
func copyFile(src, dst string, perm os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	if err := os.WriteFile(dst, b, perm); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	return nil
}
