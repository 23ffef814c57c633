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

// parsePCI accepts "0000:3b:00.0", "00000000:3B:00.0" and "3b:00.0" (hex
// digits of either case; 1 to 8 domain digits, exactly 2 bus and 2 device
// digits and one function digit, as the driver writes them). It does not
// allocate.
func parsePCI(s string) (pciAddr, bool) {
	var a pciAddr
	s = strings.TrimSpace(s)
	dom := "0"
	if strings.Count(s, ":") == 2 {
		i := strings.IndexByte(s, ':')
		dom, s = s[:i], s[i+1:]
	}
	bus, rest, ok1 := strings.Cut(s, ":")
	dev, fn, ok2 := strings.Cut(rest, ".")
	d, okD := parseHex(dom, 1, 8)
	b, okB := parseHex(bus, 2, 2)
	v, okV := parseHex(dev, 2, 2)
	f, okF := parseHex(fn, 1, 1)
	if !ok1 || !ok2 || !okD || !okB || !okV || !okF || v > 0x1f || f > 7 {
		return a, false
	}
	return pciAddr{uint32(d), uint8(b), uint8(v), uint8(f)}, true
}

// parseHex parses min to max hex digits.
func parseHex(s string, min, max int) (uint64, bool) {
	if len(s) < min || len(s) > max {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, true
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
