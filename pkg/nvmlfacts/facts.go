package nvmlfacts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// Facts are what the driver reports about the host.
type Facts struct {
	// CUDAVersion is the CUDA driver API version, e.g. "12.4" ("" unknown).
	CUDAVersion string
	// GPUs maps a GPU's UUID (as the driver writes it) to its facts.
	GPUs map[string]GPUFacts
}

// GPUFacts are one GPU's facts.
type GPUFacts struct {
	// Brand is the lower-case product brand without spaces, as NVIDIA's
	// requirement checks name it: "tesla", "geforce", "nvidia",
	// "quadrortx", ... ("" unknown).
	Brand string
	// Arch is the CUDA compute capability "major.minor" ("" unknown).
	Arch string
	// MemoryMiB is the total framebuffer memory in MiB (0 unknown).
	MemoryMiB int64
}

// Fill asks the driver under driverRootView (the path where the plugin sees
// the driver root, i.e. filepath.Join(host.root, host.driverRoot)) for the
// CUDA driver API version and each GPU's brand and compute capability, and
// writes them into inv, matching GPUs by UUID; when inv lists MIG devices it
// also learns their UUIDs from nvidia-smi (see ParseMIG), matching each by
// its parent GPU's UUID and its GPU and compute instance ids. Run it while building an
// inventory (at refresh), never per container: it loads NVML (cgo builds)
// or runs nvidia-smi (CGO_ENABLED=0 builds). It is not safe to call
// concurrently with itself.
//
// Fill writes whatever it learned even when it returns an error; the error
// (errors joined) says what could not be learned and why. Properties left
// empty make requirements that need them unverifiable (see package policy).
func Fill(inv *inventory.Inventory, driverRootView string) error {
	f, err := query(inv, driverRootView)
	err = errors.Join(err, Apply(inv, f))
	if hasMIG(inv) {
		migs, migErr := queryMIG(inv, driverRootView)
		if migErr == nil || len(migs) > 0 {
			migErr = errors.Join(migErr, applyMIG(inv, migs))
		}
		err = errors.Join(err, migErr)
	}
	return err
}

// Apply writes f into inv: CUDAVersion when known, and Brand and Arch of
// each GPU whose UUID f knows (compared case-insensitively). It returns an
// error naming the GPUs of inv the driver did not report.
func Apply(inv *inventory.Inventory, f Facts) error {
	if f.CUDAVersion != "" {
		inv.CUDAVersion = f.CUDAVersion
	}
	byUUID := make(map[string]GPUFacts, len(f.GPUs))
	for u, g := range f.GPUs {
		byUUID[strings.ToLower(u)] = g
	}
	var missing []string
	for i := range inv.GPUs {
		g, ok := byUUID[strings.ToLower(inv.GPUs[i].UUID)]
		if !ok {
			missing = append(missing, fmt.Sprintf("GPU %d (%s)", inv.GPUs[i].Index, inv.GPUs[i].UUID))
			continue
		}
		if g.Brand != "" {
			inv.GPUs[i].Brand = g.Brand
		}
		if g.Arch != "" {
			inv.GPUs[i].Arch = g.Arch
		}
		if g.MemoryMiB > 0 {
			inv.GPUs[i].MemoryMiB = g.MemoryMiB
		}
	}
	if len(missing) > 0 && len(f.GPUs) > 0 {
		return fmt.Errorf("nvmlfacts: the driver reported no brand or compute capability for %s", strings.Join(missing, ", "))
	}
	return nil
}

// cudaVersion turns NVML's CUDA driver version integer (12040) into "12.4".
func cudaVersion(v int) string {
	return fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
}

// NormalizeBrand turns a brand as NVML or nvidia-smi names it ("Quadro RTX",
// "GeForce", "NVIDIA Virtual Compute Server") into the lower-case name
// without spaces that NVIDIA_REQUIRE_* brand= conditions use ("quadrortx",
// "geforce", "nvidiavcs"). Unknown brands are lower-cased with spaces
// removed; "", "unknown", "N/A" and "[N/A]" give "".
func NormalizeBrand(s string) string {
	b := strings.ToLower(strings.Join(strings.Fields(s), ""))
	switch b {
	case "", "unknown", "n/a", "[n/a]":
		return ""
	case "nvidiavirtualapplications":
		return "nvidiavapps"
	case "nvidiavirtualpc":
		return "nvidiavpc"
	case "nvidiavirtualcomputeserver":
		return "nvidiavcs"
	case "nvidiartxvirtualworkstation", "nvidiavirtualworkstation":
		return "nvidiavws"
	}
	return b
}

// validArch reports whether s looks like a compute capability "9.0".
func validArch(s string) bool {
	maj, min, ok := strings.Cut(s, ".")
	return ok && isDigits(maj) && isDigits(min)
}

// validVersion reports whether s is dot-separated decimal numbers.
func validVersion(s string) bool {
	for _, f := range strings.Split(s, ".") {
		if !isDigits(f) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// findNVML returns the view path of the 64-bit libnvidia-ml.so.1 of the
// driver: the one in the inventory when discovery found it, else the first
// in the usual library directories under the driver root.
func findNVML(inv *inventory.Inventory, root string) (string, error) {
	if inv != nil {
		for _, f := range inv.Libraries[inventory.Utility] {
			if !f.Lib32 && (f.SONAME == "libnvidia-ml.so.1" || strings.HasPrefix(filepath.Base(f.Path), "libnvidia-ml.so.")) {
				if p, err := resolveFile(root, f.Path); err == nil {
					return p, nil
				}
			}
		}
	}
	return findFile(root, inventory.LibraryDirs64(), "libnvidia-ml.so.1")
}

// findFile returns the first regular file dir/name under root, for each of
// dirs in order, symlinks resolved inside root.
func findFile(root string, dirs []string, name string) (string, error) {
	for _, d := range dirs {
		if p, err := resolveFile(root, filepath.Join(d, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("nvmlfacts: no %s under driver root %s (looked in %s): %w", name, root, strings.Join(dirs, ", "), os.ErrNotExist)
}

// resolveFile resolves p inside root as if root were "/" (absolute
// symlinks such as Debian's /etc/alternatives links stay inside root) and
// returns where the plugin reads it, when it is a regular file.
func resolveFile(root, p string) (string, error) {
	real, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return "", fmt.Errorf("nvmlfacts: resolve %s in %s: %w", p, root, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("nvmlfacts: %s (%s in %s): %w", real, p, root, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("nvmlfacts: %s (%s in %s) is not a regular file", real, p, root)
	}
	return real, nil
}
