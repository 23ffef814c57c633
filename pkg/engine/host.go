package engine

import (
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/nvmlfacts"
)

// ForHost builds the engine the daemon and the tools both use: device nodes
// read by stater (inventory.StatNodeStater() when nil) and third-party CDI
// devices from cfg.Injection.CDISpecDirs, read where the plugin sees the
// host (cfg.Host.View). autoRefresh keeps the CDI cache current (the daemon);
// one-shot tools pass false.
//
// cdiErr reports CDI specs that could not be loaded: broken third-party specs
// must not stop gpu-nri's own devices, so the engine still serves the valid
// ones and the caller decides how to report them.
func ForHost(cfg *config.Config, stater inventory.NodeStater, autoRefresh bool) (eng *Engine, cdiErr error, err error) {
	if stater == nil {
		stater = inventory.StatNodeStater()
	}
	opts := []Option{WithNodeStater(stater)}
	if len(cfg.Injection.CDISpecDirs) > 0 {
		dirs := make([]string, len(cfg.Injection.CDISpecDirs))
		for i, d := range cfg.Injection.CDISpecDirs {
			dirs[i] = cfg.Host.View(d)
		}
		cache, cerr := cdiapi.NewCache(cdiapi.WithSpecDirs(dirs...), cdiapi.WithAutoRefresh(autoRefresh))
		cdiErr = cerr
		if cache != nil {
			opts = append(opts, WithCDI(cache))
		}
	}
	eng, err = New(cfg, opts...)
	return eng, cdiErr, err
}

// InventoryOptions are the discovery options the daemon and the tools share
// for cfg: device nodes read by stater (the default stat(2) when nil), the
// MPS pipe directory, and, unless noFacts, the driver's own facts (CUDA
// version, brands, compute capabilities) from NVML or nvidia-smi.
func InventoryOptions(cfg *config.Config, stater inventory.NodeStater, noFacts bool) []inventory.Option {
	opts := []inventory.Option{inventory.WithMPSPipeDirectory(cfg.Injection.MPSPipeDirectory)}
	if stater != nil {
		opts = append(opts, inventory.WithNodeStater(stater))
	}
	if !noFacts {
		driverRoot := cfg.Host.View(cfg.Host.DriverRoot)
		opts = append(opts, inventory.WithGPUFacts(func(inv *inventory.Inventory) error {
			return nvmlfacts.Fill(inv, driverRoot)
		}))
	}
	return opts
}
