package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// gpus reads every <proc>/driver/nvidia/gpus/<pci>/information, in PCI bus
// id order (the order nvidia-smi numbers GPUs in).
func (d *discovery) gpus() error {
	dir := d.procPath("driver", "nvidia", "gpus")
	names, err := readDirNames(d.view(dir))
	if errors.Is(err, fs.ErrNotExist) {
		d.warnf("%s does not exist: no GPUs", dir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("inventory: list GPUs: %w", err)
	}
	type found struct {
		gpu GPU
		key pciAddr
	}
	var all []found
	for _, name := range names {
		p := filepath.Join(dir, name, "information")
		data, err := os.ReadFile(d.view(p))
		if err != nil {
			return fmt.Errorf("inventory: read GPU information: %w", err)
		}
		g, err := parseGPUInformation(string(data))
		if err != nil {
			return fmt.Errorf("inventory: %s: %w", p, err)
		}
		if g.PCIBusID == "" {
			g.PCIBusID = name
		}
		a, ok := parsePCI(g.PCIBusID)
		if !ok {
			return fmt.Errorf("inventory: %s: invalid bus location %q", p, g.PCIBusID)
		}
		g.PCIBusID = a.String()
		all = append(all, found{g, a})
	}
	slices.SortFunc(all, func(a, b found) int { return a.key.compare(b.key) })
	seen := map[int]string{}
	for i, f := range all {
		if other, dup := seen[f.gpu.Minor]; dup {
			return fmt.Errorf("inventory: GPUs %s and %s both report device minor %d", other, f.gpu.PCIBusID, f.gpu.Minor)
		}
		seen[f.gpu.Minor] = f.gpu.PCIBusID
		f.gpu.Index = i
		d.inv.GPUs = append(d.inv.GPUs, f.gpu)
	}
	return nil
}

// parseGPUInformation reads the "Key: value" lines of a GPU's information
// file. "Device Minor" is required.
func parseGPUInformation(s string) (GPU, error) {
	g := GPU{Minor: -1}
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Model":
			g.Model = v
		case "GPU UUID":
			g.UUID = v
		case "Bus Location":
			g.PCIBusID = v
		case "Device Minor":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 253 {
				return GPU{}, fmt.Errorf("invalid Device Minor %q", v)
			}
			g.Minor = n
		}
	}
	if g.Minor < 0 {
		return GPU{}, errors.New(`no "Device Minor" line`)
	}
	return g, nil
}

// pciAddr is a PCI address domain:bus:device.function.
type pciAddr struct {
	domain       uint32
	bus, dev, fn uint8
}

// parsePCI accepts "0000:3b:00.0", "00000000:3B:00.0" and "3b:00.0".
func parsePCI(s string) (pciAddr, bool) {
	var a pciAddr
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) == 2 {
		parts = append([]string{"0"}, parts...)
	}
	if len(parts) != 3 {
		return a, false
	}
	devStr, fnStr, ok := strings.Cut(parts[2], ".")
	if !ok {
		return a, false
	}
	dom, err1 := strconv.ParseUint(parts[0], 16, 32)
	bus, err2 := strconv.ParseUint(parts[1], 16, 8)
	dev, err3 := strconv.ParseUint(devStr, 16, 8)
	fn, err4 := strconv.ParseUint(fnStr, 16, 8)
	if err := errors.Join(err1, err2, err3, err4); err != nil || len(parts[0]) > 8 ||
		len(parts[1]) > 2 || len(devStr) > 2 || len(fnStr) != 1 || dev > 0x1f || fn > 7 {
		return a, false
	}
	return pciAddr{uint32(dom), uint8(bus), uint8(dev), uint8(fn)}, true
}

// String is the lower-case domain:bus:device.function with a 4-digit
// domain (more digits when the domain needs them).
func (a pciAddr) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.domain, a.bus, a.dev, a.fn)
}

func (a pciAddr) compare(b pciAddr) int {
	return cmp.Or(cmp.Compare(a.domain, b.domain), cmp.Compare(a.bus, b.bus),
		cmp.Compare(a.dev, b.dev), cmp.Compare(a.fn, b.fn))
}

// NormalizePCIBusID returns the canonical form of a PCI bus id
// ("0000:3b:00.0" for "00000000:3B:00.0" or "3b:00.0") and whether it parsed.
func NormalizePCIBusID(id string) (string, bool) {
	a, ok := parsePCI(id)
	if !ok {
		return "", false
	}
	return a.String(), true
}
