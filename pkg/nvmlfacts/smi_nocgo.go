//go:build !cgo

package nvmlfacts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// smiTimeout bounds each nvidia-smi run (it can take seconds without
// persistence mode).
const smiTimeout = 30 * time.Second

// smiDirs are where nvidia-smi is looked for, relative to the driver root.
func smiDirs() []string { return []string{"usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin"} }

// loaders are the dynamic loaders, relative to a root, tried to run the
// driver root's nvidia-smi with the driver root's own libraries.
func loaders() []string {
	return []string{"lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
		"lib/ld-linux-aarch64.so.1", "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"}
}

// query runs the driver's nvidia-smi (no NVML binding without cgo).
func query(inv *inventory.Inventory, root string) (Facts, error) {
	smi, err := findSMI(inv, root)
	if err != nil {
		return Facts{}, err
	}
	q, err := runSMI(root, smi, "-q")
	if err != nil {
		return Facts{}, err
	}
	caps, capErr := runSMI(root, smi, "--query-gpu=uuid,compute_cap", "--format=csv,noheader")
	f, err := ParseSMI(q, caps)
	if err != nil {
		return Facts{}, fmt.Errorf("%s -q: %w", smi, err)
	}
	if capErr != nil {
		return f, fmt.Errorf("nvmlfacts: compute capability unknown: %w", capErr)
	}
	return f, nil
}

func findSMI(inv *inventory.Inventory, root string) (string, error) {
	if inv != nil {
		for _, f := range inv.Binaries[inventory.Utility] {
			if filepath.Base(f.Path) == "nvidia-smi" {
				return filepath.Join(root, f.Path), nil
			}
		}
	}
	return findFile(root, smiDirs(), "nvidia-smi")
}

// runSMI runs nvidia-smi with a minimal environment. When the driver root
// has a dynamic loader, nvidia-smi runs through it with the driver root's
// library directories, so that it works from a plugin container whose own
// filesystem has no loader or libc.
func runSMI(root, smi string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), smiTimeout)
	defer cancel()
	var dirs []string
	for _, d := range inventory.LibraryDirs64() {
		dirs = append(dirs, filepath.Join(root, d))
	}
	libPath := strings.Join(dirs, ":")
	name, argv := smi, args
	for _, l := range loaders() {
		if p := filepath.Join(root, l); isFile(p) {
			name, argv = p, append([]string{"--library-path", libPath, smi}, args...)
			break
		}
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LD_LIBRARY_PATH=" + libPath}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("nvmlfacts: %s %s: %w: %s", smi, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
