package engine

import (
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
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
