package nvmlfacts

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// MIGFacts are what the driver reports about one MIG device.
type MIGFacts struct {
	// GPUUUID is the parent GPU's UUID ("GPU-...").
	GPUUUID string
	// GI and CI are the GPU instance and compute instance ids, the
	// gi<GI>/ci<CI> of /proc/driver/nvidia/capabilities/gpu<minor>/mig.
	GI, CI int
	// UUID is the MIG device's UUID as the driver prints it ("MIG-<uuid>",
	// or "MIG-GPU-<gpu uuid>/<gi>/<ci>" from drivers before R470).
	UUID string
	// Profile is the MIG profile name -L prints before "Device"
	// ("1g.10gb"; "" when -L prints none).
	Profile string
	// MemoryMiB is the MIG device's total memory in MiB, the total of its
	// Memory-Usage cell in the plain output's "MIG devices:" table (0 when
	// the table was not read or the cell is not "<used>MiB / <total>MiB").
	MemoryMiB int64
}

// smiListGPU and smiListMIG match the lines of `nvidia-smi -L`:
//
//	GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-...)
//	  MIG 1g.5gb      Device  0: (UUID: MIG-c6d4f1ef-...)
func smiListGPU() *regexp.Regexp {
	return regexp.MustCompile(`^GPU (\d+): .*\(UUID: (GPU-[^)\s]+)\)$`)
}

func smiListMIG() *regexp.Regexp {
	return regexp.MustCompile(`^\s+MIG\s+(?:(\S+)\s+)?Device\s+(\d+): \(UUID: (MIG-[^)\s]+)\)$`)
}

// migKey is a MIG device as nvidia-smi numbers it: GPU index (nvidia-smi's,
// PCI bus id order) and MIG device index on that GPU (NVML's
// nvmlDeviceGetMigDeviceHandleByIndex order, not necessarily GI order).
type migKey struct{ gpu, dev int }

// ParseMIG reads the output of `nvidia-smi -L` (list) and of plain
// `nvidia-smi` (table; may be empty when every MIG UUID in list is of the
// legacy form "MIG-GPU-<uuid>/<gi>/<ci>", which names its ids itself) and
// returns every MIG device with its parent GPU's UUID, its GPU and compute
// instance ids and its UUID.
//
// -L names a MIG device only by "Device N", its NVML index on the GPU, and
// that order need not be GI order (NVML orders by placement). The plain
// output's "MIG devices:" table has one row per MIG device starting with
// "| GPU  GI  CI  MIG |" (GPU index, GI id, CI id, MIG device index): the
// two are joined on (GPU index, MIG device index), so each UUID is tied to
// its GI and CI ids, never to a position. The same row's Memory-Usage cell
// ("12MiB / 9728MiB", used / total) gives the device's memory.
func ParseMIG(list, table string) ([]MIGFacts, error) {
	gpuRe, migRe := smiListGPU(), smiListMIG()
	gpus := map[int]string{}
	type listed struct {
		key           migKey
		uuid, profile string
	}
	var migs []listed
	gpu := -1
	for _, line := range strings.Split(list, "\n") {
		line = strings.TrimRight(line, " \t\r")
		if m := gpuRe.FindStringSubmatch(line); m != nil {
			gpu, _ = strconv.Atoi(m[1])
			gpus[gpu] = m[2]
			continue
		}
		if m := migRe.FindStringSubmatch(line); m != nil {
			if gpu < 0 {
				return nil, fmt.Errorf("nvmlfacts: nvidia-smi -L: MIG line before any GPU line: %q", line)
			}
			dev, _ := strconv.Atoi(m[2])
			migs = append(migs, listed{migKey{gpu, dev}, m[3], m[1]})
		}
	}
	ids, err := parseMIGTable(table)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	var out []MIGFacts
	for _, l := range migs {
		f := MIGFacts{GPUUUID: gpus[l.key.gpu], UUID: l.uuid, Profile: l.profile}
		if gu, gi, ci, ok := legacyMIG(l.uuid); ok {
			f.GPUUUID, f.GI, f.CI = gu, gi, ci
		} else if id, ok := ids[l.key]; ok {
			f.GI, f.CI, f.MemoryMiB = id.gi, id.ci, id.memMiB
		} else {
			errs = append(errs, fmt.Errorf("nvmlfacts: MIG device %d of GPU %d (%s): not in nvidia-smi's MIG devices table, GPU and compute instance unknown", l.key.dev, l.key.gpu, l.uuid))
			continue
		}
		out = append(out, f)
	}
	return out, errors.Join(errs...)
}

// parseMIGTable reads the "MIG devices:" table of plain nvidia-smi output:
// rows whose first cell is four numbers "GPU GI CI MIG-device", e.g.
//
//	| GPU  GI  CI  MIG |         Memory-Usage |        Vol|      Shared           |
//	|  0    1   0   0  |     11MiB / 20224MiB | 42      0 |  3   0    2    0    0 |
//
// (the row below, with an empty first cell, is BAR1 usage). It returns
// (GPU index, MIG device index) -> the GI and CI ids and the total memory.
func parseMIGTable(table string) (map[migKey]migRow, error) {
	ids := map[migKey]migRow{}
	in := false
	for _, line := range strings.Split(table, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.Contains(line, "MIG devices:"):
			in = true
			continue
		case strings.Contains(line, "Processes:"):
			in = false
		}
		if !in || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		fs := strings.Fields(cells[1])
		if len(fs) != 4 {
			continue
		}
		var n [4]int
		ok := true
		for i, s := range fs {
			if !isDigits(s) {
				ok = false
				break
			}
			n[i], _ = strconv.Atoi(s)
		}
		if !ok {
			continue
		}
		k := migKey{n[0], n[3]}
		if _, dup := ids[k]; dup {
			return nil, fmt.Errorf("nvidia-smi MIG devices table: GPU %d MIG device %d listed twice", n[0], n[3])
		}
		ids[k] = migRow{gi: n[1], ci: n[2], memMiB: totalMiB(cells[2])}
	}
	return ids, nil
}

// migRow is one MIG device row of the table.
type migRow struct {
	gi, ci int
	memMiB int64
}

// totalMiB reads the total of a "<used>MiB / <total>MiB" cell (0 otherwise).
func totalMiB(cell string) int64 {
	_, total, ok := strings.Cut(cell, "/")
	if !ok {
		return 0
	}
	n, ok := strings.CutSuffix(strings.TrimSpace(total), "MiB")
	if !ok || !isDigits(n) {
		return 0
	}
	v, _ := strconv.ParseInt(n, 10, 64)
	return v
}

// legacyMIG splits "MIG-GPU-<uuid>/<gi>/<ci>" (drivers before R470).
func legacyMIG(uuid string) (gpu string, gi, ci int, ok bool) {
	rest, found := strings.CutPrefix(uuid, "MIG-")
	if !found || !strings.HasPrefix(strings.ToUpper(rest), "GPU-") {
		return "", 0, 0, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !isDigits(parts[1]) || !isDigits(parts[2]) {
		return "", 0, 0, false
	}
	gi, _ = strconv.Atoi(parts[1])
	ci, _ = strconv.Atoi(parts[2])
	return parts[0], gi, ci, true
}

// hasMIG reports whether inv lists any MIG device.
func hasMIG(inv *inventory.Inventory) bool {
	if inv == nil {
		return false
	}
	for _, g := range inv.GPUs {
		if len(g.MIG) > 0 {
			return true
		}
	}
	return false
}

// queryMIG runs the driver root's nvidia-smi for the MIG devices' UUIDs
// (`nvidia-smi -L`) and GPU and compute instance ids (plain `nvidia-smi`,
// only when -L prints a UUID of the current form, which does not name its
// ids), in both builds: the cgo build's NVML binding is not asked, so that
// one parser serves both.
func queryMIG(inv *inventory.Inventory, root string) ([]MIGFacts, error) {
	smi, err := findSMI(inv, root)
	if err != nil {
		return nil, fmt.Errorf("nvmlfacts: MIG UUIDs unknown: %w", err)
	}
	run := smiRunner(inv, root, smi)
	list, err := run("-L")
	if err != nil {
		return nil, fmt.Errorf("nvmlfacts: MIG UUIDs unknown: %w", err)
	}
	table := ""
	if needsTable(list) {
		if table, err = run(); err != nil {
			return nil, fmt.Errorf("nvmlfacts: MIG UUIDs unknown: %w", err)
		}
	}
	return ParseMIG(list, table)
}

// needsTable reports whether some MIG line of `nvidia-smi -L` has a UUID
// that does not name its GPU and compute instance ids.
func needsTable(list string) bool {
	re := smiListMIG()
	for _, line := range strings.Split(list, "\n") {
		if m := re.FindStringSubmatch(strings.TrimRight(line, " \t\r")); m != nil {
			if _, _, _, ok := legacyMIG(m[2]); !ok {
				return true
			}
		}
	}
	return false
}

// applyMIG writes the UUIDs (and profiles and memory) of migs into the MIG devices of inv, matching
// the parent GPU by UUID (case-insensitively) and the device by its GI and
// CI ids. It returns an error naming the MIG devices of inv left without a
// UUID.
func applyMIG(inv *inventory.Inventory, migs []MIGFacts) error {
	type id struct {
		gpu    string
		gi, ci int
	}
	byID := make(map[id]MIGFacts, len(migs))
	for _, m := range migs {
		byID[id{strings.ToLower(m.GPUUUID), m.GI, m.CI}] = m
	}
	var missing []string
	for i := range inv.GPUs {
		g := &inv.GPUs[i]
		for j := range g.MIG {
			m := &g.MIG[j]
			u, ok := byID[id{strings.ToLower(g.UUID), m.GI, m.CI}]
			if !ok {
				missing = append(missing, fmt.Sprintf("%d:%d (gi%d/ci%d)", g.Index, m.Index, m.GI, m.CI))
				continue
			}
			m.UUID, m.Profile, m.MemoryMiB = u.UUID, u.Profile, u.MemoryMiB
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("nvmlfacts: nvidia-smi reported no UUID for MIG device %s", strings.Join(missing, ", "))
	}
	return nil
}
