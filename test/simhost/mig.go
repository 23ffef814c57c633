package simhost

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// SetMIG changes GPU gpu's MIG configuration on the built host the way an
// administrator does on a running node: n == 0 leaves MIG mode (`nvidia-smi
// mig -dci`, `-dgi`, then `nvidia-smi -i <gpu> -mig 0`), n > 0 is MIG mode
// with n one-slice GPU instances of one compute instance each (as Build
// makes them). What changes is what the driver changes:
//   - the MIG state under <proc>/driver/nvidia/capabilities/gpu<minor>/mig
//     (the gi<X>/ci<Y> entries the inventory and nvidia-smi read);
//   - the access nodes of new instances in <dev>/nvidia-caps (those of
//     destroyed instances stay, as nvidia-modprobe leaves them);
//   - libnvidia-ml's GPU table (rebuilt and swapped in with a rename), so
//     NVML reports the new MIG mode and devices.
//
// It returns the changed host; h still describes the old one.
func (h *Host) SetMIG(gpu, n int) (*Host, error) {
	o := h.Options
	o.MIG = maps.Clone(o.MIG)
	if o.MIG == nil {
		o.MIG = map[int]int{}
	}
	if n == 0 {
		delete(o.MIG, gpu)
	} else {
		o.MIG[gpu] = n
	}
	if gpu < 0 || gpu >= o.GPUs {
		return nil, fmt.Errorf("simhost: set MIG: no GPU %d (the host has %d)", gpu, o.GPUs)
	}
	o, err := o.resolved()
	if err != nil {
		return nil, err
	}
	if o.omitted("mig-caps") {
		return nil, fmt.Errorf("simhost: set MIG: the host has no MIG capabilities (mig-caps omitted)")
	}
	nh := *h
	nh.Options, nh.GPUs, nh.Nodes = o, nil, slices.Clone(h.Nodes)
	nh.Libraries = slices.Clone(h.Libraries)
	nh.computeGPUs()
	g := nh.GPUs[gpu]

	migDir := filepath.Join(h.Config.ProcRoot, "driver/nvidia/capabilities", fmt.Sprintf("gpu%d", g.Minor), "mig")
	entries, err := os.ReadDir(migDir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("simhost: set MIG: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "gi") {
			if err := os.RemoveAll(filepath.Join(migDir, e.Name())); err != nil {
				return nil, fmt.Errorf("simhost: set MIG: %w", err)
			}
		}
	}
	for _, m := range g.MIG {
		for _, minor := range []int{m.GICapMinor, m.CICapMinor} {
			name := fmt.Sprintf("nvidia-caps/nvidia-cap%d", minor)
			if _, ok := nh.Node(name); !ok {
				if err := nh.addNode(name, o.CapsMajor, int64(minor), 0o444); err != nil {
					return nil, err
				}
			}
		}
		rel := fmt.Sprintf("driver/nvidia/capabilities/gpu%d/mig/gi%d", g.Minor, m.GI)
		if err := nh.writeProc(rel+fmt.Sprintf("/ci%d/access", m.CI), capFile(m.CICapMinor, 0o444)); err != nil {
			return nil, err
		}
		if err := nh.writeProc(rel+"/access", capFile(m.GICapMinor, 0o444)); err != nil {
			return nil, err
		}
	}
	if !o.RealNodes {
		fake := fakeStater{}
		for _, nd := range nh.Nodes {
			fake[nd.Path] = inventory.NodeInfo{IsChar: true, Major: nd.Major, Minor: nd.Minor, Perm: nd.Mode.Perm()}
		}
		nh.stater = fake
	}
	if err := nh.rebuildNVML(); err != nil {
		return nil, err
	}
	return &nh, nil
}

// rebuildNVML compiles libnvidia-ml again with h's GPU table and renames
// it over the installed one (a reader sees the old or the new library).
func (h *Host) rebuildNVML() error {
	i := slices.IndexFunc(h.Libraries, func(f File) bool { return f.SONAME == "libnvidia-ml.so.1" && !f.Lib32 })
	if i < 0 {
		return nil // the host has no NVML
	}
	cc, err := newCompiler(h.Options.CacheDir)
	if err != nil {
		return err
	}
	spec := libSpecs[slices.IndexFunc(libSpecs, func(l libSpec) bool { return l.base == "libnvidia-ml" })]
	args, err := h.libArgs(spec, "libnvidia-ml.so.1")
	if err != nil {
		return err
	}
	built, err := cc.build(spec.src, args...)
	if err != nil {
		return err
	}
	dst := h.Libraries[i].HostPath
	if err := copyFile(built, dst+".new", 0o755); err != nil {
		return err
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	return nil
}
