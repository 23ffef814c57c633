package nvmlfacts

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// ParseSMI reads the output of `nvidia-smi -q` (q) and of
// `nvidia-smi --query-gpu=uuid,compute_cap --format=csv,noheader` (caps,
// may be empty when the driver is too old to know compute_cap). It takes
// "CUDA Version" from the header and, per "GPU <pci bus id>" section, the
// first "GPU UUID" and "Product Brand", and the "Total" of its "FB Memory
// Usage" subsection ("Total : 81559 MiB", nvidia-smi(1): the total size of
// FB memory). Values that are not versions ("N/A", "Not Found") or sizes
// are left empty.
func ParseSMI(q, caps string) (Facts, error) {
	f := Facts{GPUs: map[string]GPUFacts{}}
	var uuid, brand, sub string
	var mem int64
	inGPU := false
	flush := func() {
		if uuid != "" {
			f.GPUs[uuid] = GPUFacts{Brand: NormalizeBrand(brand), MemoryMiB: mem}
		}
		uuid, brand, sub, mem = "", "", "", 0
	}
	sc := bufio.NewScanner(strings.NewReader(q))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		top := line != "" && line[0] != ' ' && line[0] != '\t'
		if top && strings.HasPrefix(line, "GPU ") && !strings.Contains(line, ":  ") && !strings.Contains(line, " : ") {
			flush()
			inGPU = true
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			if inGPU && !top {
				if indent(line) <= 4 { // a subsection heading of the GPU ("    FB Memory Usage")
					sub = strings.TrimSpace(line)
				}
			}
			continue
		}
		if inGPU && !top && indent(line) <= 4 {
			sub = ""
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case top && k == "CUDA Version":
			if validVersion(v) {
				f.CUDAVersion = v
			}
		case top:
			inGPU = false
			flush()
		case inGPU && k == "GPU UUID" && uuid == "":
			uuid = v
		case inGPU && k == "Product Brand" && brand == "":
			brand = v
		case inGPU && sub == "FB Memory Usage" && k == "Total" && mem == 0:
			mem = mebibytes(v)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return Facts{}, fmt.Errorf("nvmlfacts: reading nvidia-smi -q output: %w", err)
	}
	if len(f.GPUs) == 0 && f.CUDAVersion == "" {
		return Facts{}, fmt.Errorf("nvmlfacts: nvidia-smi -q output has no CUDA Version and no GPU section")
	}
	for _, line := range strings.Split(caps, "\n") {
		u, c, ok := strings.Cut(line, ",")
		if !ok {
			continue
		}
		u, c = strings.TrimSpace(u), strings.TrimSpace(c)
		if !validArch(c) {
			continue
		}
		g := f.GPUs[u]
		g.Arch = c
		f.GPUs[u] = g
	}
	return f, nil
}

// indent is the number of leading spaces of line (a tab counts as 8).
func indent(line string) int {
	n := 0
	for _, c := range line {
		switch c {
		case ' ':
			n++
		case '\t':
			n += 8
		default:
			return n
		}
	}
	return n
}

// mebibytes reads nvidia-smi's "81559 MiB" (0 when it is not that form).
func mebibytes(v string) int64 {
	num, unit, ok := strings.Cut(v, " ")
	if !ok || unit != "MiB" || !isDigits(num) {
		return 0
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
