package simhost

import (
	"fmt"
	"strconv"
	"strings"
)

// NVML's numbers for the names the manifest uses.
var (
	nvmlArchitectures = map[string]int{"Kepler": 2, "Maxwell": 3, "Pascal": 4, "Volta": 5, "Turing": 6,
		"Ampere": 7, "Ada": 8, "Hopper": 9, "Blackwell": 10}
	nvmlBrands = map[string]int{"quadro": 1, "tesla": 2, "nvs": 3, "geforce": 5, "titan": 6, "nvidia": 14,
		"geforcertx": 15}
)

// NVMLManifest is the GPU table compiled into the simulated
// libnvidia-ml (test/csrc/libnvidia-ml.c, -DSIMGPU_MANIFEST): per GPU
// "minor;uuid;bus id;name;memory MiB;cc major;cc minor;arch;brand;pci
// device id;migs" joined by '|', each MIG device
// "gi:ci:gi cap minor:ci cap minor:memory MiB:slices:gi profile id:uuid"
// joined by ','. GPUs whose /dev node was omitted are listed too: NVML
// shows what the process can open, which the library decides at nvmlInit.
func (h *Host) NVMLManifest() (string, error) {
	var recs []string
	for _, g := range h.GPUs {
		maj, min, ok := strings.Cut(g.ComputeCapability, ".")
		a, err1 := strconv.Atoi(maj)
		b, err2 := strconv.Atoi(min)
		if !ok || err1 != nil || err2 != nil {
			return "", fmt.Errorf("simhost: GPU %d: compute capability %q is not MAJOR.MINOR", g.Index, g.ComputeCapability)
		}
		arch, ok := nvmlArchitectures[g.Architecture]
		if !ok {
			return "", fmt.Errorf("simhost: GPU %d: unknown architecture %q", g.Index, g.Architecture)
		}
		brand, ok := nvmlBrands[g.Brand]
		if !ok {
			return "", fmt.Errorf("simhost: GPU %d: unknown brand %q", g.Index, g.Brand)
		}
		var migs []string
		for _, m := range g.MIG {
			migs = append(migs, fmt.Sprintf("%d:%d:%d:%d:%d:%d:%d:%s", m.GI, m.CI, m.GICapMinor, m.CICapMinor,
				m.MemoryMiB, m.Slices, m.GIProfileID, m.UUID))
		}
		for _, f := range []string{g.UUID, g.PCIBusID, g.Model} {
			if strings.ContainsAny(f, "|;,:\"\\") && f != g.PCIBusID {
				return "", fmt.Errorf("simhost: GPU %d: %q cannot go in the NVML manifest", g.Index, f)
			}
		}
		recs = append(recs, fmt.Sprintf("%d;%s;%s;%s;%d;%d;%d;%d;%d;0x%08x;%s", g.Minor, g.UUID, g.PCIBusID, g.Model,
			g.MemoryMiB, a, b, arch, brand, g.PCIDeviceID, strings.Join(migs, ",")))
	}
	return strings.Join(recs, "|"), nil
}
