//go:build !cgo

package nvmlfacts

import (
	"fmt"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// query runs the driver's nvidia-smi (no NVML binding without cgo).
func query(inv *inventory.Inventory, root string) (Facts, error) {
	smi, err := findSMI(inv, root)
	if err != nil {
		return Facts{}, err
	}
	run := smiRunner(inv, root, smi)
	q, err := run("-q")
	if err != nil {
		return Facts{}, err
	}
	caps, capErr := run("--query-gpu=uuid,compute_cap", "--format=csv,noheader")
	f, err := ParseSMI(q, caps)
	if err != nil {
		return Facts{}, fmt.Errorf("%s -q: %w", smi, err)
	}
	if capErr != nil {
		return f, fmt.Errorf("nvmlfacts: compute capability unknown: %w", capErr)
	}
	return f, nil
}
