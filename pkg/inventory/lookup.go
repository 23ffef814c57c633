package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// migRef locates a MIG device: GPUs[gpu].MIG[mig].
type migRef struct{ gpu, mig int }

// New makes inv ready for lookups and returns it: it checks that GPUs are
// in index order (GPUs[i].Index == i, as Discover enumerates them) and
// builds the lookup maps. Discover calls it last; an Inventory built by
// hand (tests, tools) must go through it too: the lookups of an Inventory
// New did not build find nothing.
func New(inv *Inventory) (*Inventory, error) {
	for i := range inv.GPUs {
		if inv.GPUs[i].Index != i {
			return nil, fmt.Errorf("inventory: GPU at position %d has index %d: GPUs must be in index order", i, inv.GPUs[i].Index)
		}
	}
	inv.buildIndex()
	return inv, nil
}

// buildIndex makes the lookup maps.
func (inv *Inventory) buildIndex() {
	inv.byUUID = make(map[string]int, len(inv.GPUs))
	inv.byPCI = make(map[pciAddr]int, len(inv.GPUs))
	inv.migByUUID = map[string]migRef{}
	for i, g := range inv.GPUs {
		if k, ok := uuidKey("GPU-", g.UUID); ok {
			inv.byUUID[strings.ToLower(k)] = i
		}
		if a, ok := parsePCI(g.PCIBusID); ok {
			inv.byPCI[a] = i
		}
		for j, m := range g.MIG {
			if k, ok := uuidKey("MIG-", m.UUID); ok {
				inv.migByUUID[strings.ToLower(k)] = migRef{i, j}
			}
		}
	}
}

// uuidKey returns the part of id after prefix (matched in any case).
func uuidKey(prefix, id string) (string, bool) {
	id = strings.TrimSpace(id)
	if len(id) <= len(prefix) || !strings.EqualFold(id[:len(prefix)], prefix) {
		return "", false
	}
	return id[len(prefix):], true
}

// The lookups below do no file system work. The pointers they return point
// into the Inventory, which callers must not modify.

// GPUByIndex returns the GPU with enumeration index i.
func (inv *Inventory) GPUByIndex(i int) (*GPU, bool) {
	if i < 0 || i >= len(inv.GPUs) { // New checked that position is index
		return nil, false
	}
	return &inv.GPUs[i], true
}

// GPUByUUID returns the GPU with UUID "GPU-<uuid>" (any letter case).
func (inv *Inventory) GPUByUUID(uuid string) (*GPU, bool) {
	key, ok := uuidKey("GPU-", uuid)
	if !ok {
		return nil, false
	}
	i, ok := inv.byUUID[strings.ToLower(key)] // no copy when already lower-case
	if !ok {
		return nil, false
	}
	return &inv.GPUs[i], true
}

// GPUByPCI returns the GPU at a PCI bus id, given as "0000:3b:00.0",
// "00000000:3B:00.0" or "3b:00.0".
func (inv *Inventory) GPUByPCI(id string) (*GPU, bool) {
	key, ok := parsePCI(id)
	if !ok {
		return nil, false
	}
	i, ok := inv.byPCI[key]
	if !ok {
		return nil, false
	}
	return &inv.GPUs[i], true
}

// MIGByIndex returns MIG device mig of GPU gpu ("<gpu>:<mig>").
func (inv *Inventory) MIGByIndex(gpu, mig int) (*MIGDevice, bool) {
	g, ok := inv.GPUByIndex(gpu)
	if !ok || mig < 0 || mig >= len(g.MIG) {
		return nil, false
	}
	return &g.MIG[mig], true
}

// MIGByUUID returns the MIG device named "MIG-<uuid>" (any letter case,
// known only when WithGPUFacts filled MIG UUIDs) or, in the form older
// drivers used, "MIG-GPU-<gpu uuid>/<gi>/<ci>".
func (inv *Inventory) MIGByUUID(uuid string) (*MIGDevice, bool) {
	key, ok := uuidKey("MIG-", uuid)
	if !ok {
		return nil, false
	}
	if rest, ok := uuidKey("GPU-", key); ok {
		return inv.migByLegacyID(rest)
	}
	r, ok := inv.migByUUID[strings.ToLower(key)]
	if !ok {
		return nil, false
	}
	return &inv.GPUs[r.gpu].MIG[r.mig], true
}

// migByLegacyID finds "<gpu uuid without GPU->/<gi>/<ci>".
func (inv *Inventory) migByLegacyID(s string) (*MIGDevice, bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return nil, false
	}
	gi, err1 := strconv.Atoi(parts[1])
	ci, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil {
		return nil, false
	}
	g, ok := inv.GPUByUUID("GPU-" + parts[0])
	if !ok {
		return nil, false
	}
	for j := range g.MIG {
		if g.MIG[j].GI == gi && g.MIG[j].CI == ci {
			return &g.MIG[j], true
		}
	}
	return nil, false
}
