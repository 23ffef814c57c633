package nvmlfacts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

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

// findSMI returns where the plugin reads the driver root's nvidia-smi,
// resolved inside root: on Debian /usr/bin/nvidia-smi is an absolute link
// through /etc/alternatives, which must not be followed out of the root.
func findSMI(inv *inventory.Inventory, root string) (string, error) {
	if inv != nil {
		for _, f := range inv.Binaries[inventory.Utility] {
			if filepath.Base(f.Path) == "nvidia-smi" {
				return resolveFile(root, f.Path)
			}
		}
	}
	return findFile(root, smiDirs(), "nvidia-smi")
}

// smiRunner returns a function that runs nvidia-smi (a path already
// resolved inside root) with a minimal environment. When the driver root
// has a dynamic loader (resolved inside root), nvidia-smi runs through it
// with the driver root's library directories, so that it works from a
// plugin container whose own filesystem has no loader or libc.
func smiRunner(inv *inventory.Inventory, root, smi string) func(args ...string) (string, error) {
	libPath := strings.Join(libraryPath(inv, root), ":")
	loader := ""
	for _, l := range loaders() {
		if p, err := resolveFile(root, l); err == nil {
			loader = p
			break
		}
	}
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), smiTimeout)
		defer cancel()
		name, argv := smi, args
		if loader != "" {
			name, argv = loader, append([]string{"--library-path", libPath, smi}, args...)
		}
		cmd := exec.CommandContext(ctx, name, argv...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LD_LIBRARY_PATH=" + libPath}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			// nvidia-smi prints its failure ("NVIDIA-SMI has failed because it
			// couldn't communicate with the NVIDIA driver") on stdout.
			msg := strings.TrimSpace(errb.String())
			if msg == "" {
				msg = firstLine(out.String())
			}
			return "", fmt.Errorf("nvmlfacts: %s %s: %w: %s", smi, strings.Join(args, " "), err, msg)
		}
		return out.String(), nil
	}
}

// libraryPath lists, where the plugin reads them, the directories that
// hold the inventory's 64-bit driver libraries (Debian keeps them in
// usr/lib/x86_64-linux-gnu/nvidia/current, reached from the usual names
// only through absolute links), then the standard library directories
// (for libc), each resolved inside root and listed once.
func libraryPath(inv *inventory.Inventory, root string) []string {
	var dirs []string
	add := func(d string) {
		p, err := securejoin.SecureJoin(root, d)
		if err != nil || slices.Contains(dirs, p) {
			return
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			dirs = append(dirs, p)
		}
	}
	if inv != nil {
		for _, files := range inv.Libraries {
			for _, f := range files {
				if !f.Lib32 {
					add(filepath.Dir(f.Path))
				}
			}
		}
		slices.Sort(dirs) // map order
	}
	for _, d := range inventory.LibraryDirs64() {
		add(d)
	}
	return dirs
}

// firstLine is s's first non-empty line, trimmed, at most 200 bytes.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200]
			}
			return l
		}
	}
	return ""
}
