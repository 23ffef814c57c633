package edits_test

import (
	"path/filepath"
	"testing"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/edits"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// BenchmarkBuild is edits.Build for GPUs 0 and 2 with compute and utility on
// the simulated 8-GPU host with the full library set (the same host as
// plugin's BenchmarkCreateContainer), per loader.
func BenchmarkBuild(b *testing.B) {
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(b.TempDir(), "host"), GPUs: 8})
	if err != nil {
		b.Fatal(err)
	}
	inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
	if err != nil {
		b.Fatal(err)
	}
	sel := edits.Selection{GPUs: []*inventory.GPU{&inv.GPUs[0], &inv.GPUs[2]},
		Capabilities: []inventory.Capability{inventory.Compute, inventory.Utility}}
	for _, loader := range config.Loaders() {
		cfg := config.Default()
		cfg.Injection.Loader = loader
		o := edits.OptionsFromConfig(cfg)
		b.Run(string(loader), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if e := edits.Build(inv, sel, o); len(e.Mounts) == 0 {
					b.Fatal("no mounts")
				}
			}
		})
		dir := sel
		dir.LibraryDir = &edits.BuiltDir{HostPath: "/run/gpu-nri/lib/x", Plan: edits.PlanDir(inv, sel.Capabilities)} // as the daemon keeps it
		b.Run(string(loader)+"-librarydir", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if e := edits.Build(inv, dir, o); len(e.Mounts) == 0 {
					b.Fatal("no mounts")
				}
			}
		})
	}
}
