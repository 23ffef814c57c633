package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

// BENCH_EXPERIMENT=nrifloor (scratch files only) measures what any NRI
// plugin pays to inject the same edits gpu-nri's hookless mode with
// injection.libraryDir injects, so that gpu-nri's own share of NRI's
// CreateContainer round trip can be told from NRI's and containerd's. It
// builds dirmount.go's xdir spec (10 driver mounts, the library directory,
// 5 device nodes, LD_LIBRARY_PATH) and adds a block "floor" in which
// test/e2e/cmd/nrifloor, the smallest NRI plugin that returns those edits
// (converted once at its start by pkg/nriadjust, no request parsing,
// policy, audit or metrics), is registered alone:
//   - xdir: the edits through containerd's own CDI, no plugin;
//   - fplain: a plain container with nrifloor registered (NRI's round trip
//     with nothing to adjust);
//   - fxdir: the xdir edits returned by nrifloor (the round trip and
//     containerd's application of the adjustment).
//
// Beside them the run's hooklessdir (gpu-nri, the same kind of edits) and
// lplain tell what gpu-nri adds to a minimal plugin.
const (
	floorBlock      = "floor"
	floorAnnotation = "nrifloor.example.com/gpu"
)

func floorVariants() []variant {
	return []variant{
		cdiVariant("xdir", dirmountKind, "the hookless libraryDir edits (10 mounts, the directory, 5 nodes) through containerd CDI, no plugin"),
		{key: "fplain", label: "experiment: runc, plain container, nrifloor (the smallest NRI plugin) registered", block: floorBlock},
		{key: "fxdir", label: "experiment: the same edits returned by nrifloor over NRI", block: floorBlock,
			podAnn: map[string]string{floorAnnotation: "0,2"}, gpu: true, loads: true},
	}
}

// buildFloor builds test/e2e/cmd/nrifloor as gpu-nri is built (static).
func buildFloor(repo, dir string) (string, error) {
	out := filepath.Join(dir, "bin", "nrifloor")
	return out, harness.GoBuild(repo, out, "./test/e2e/cmd/nrifloor")
}

// startFloor registers nrifloor with the bench's containerd, answering
// with the xdir spec's edits for GPUs 0 and 2.
func (b *bench) startFloor(ctx context.Context) (*harness.Plugin, error) {
	cfg := b.env.PluginConfig("hookless")
	cfg.Name = "nrifloor"
	cfg.Env = []string{"NRIFLOOR_SPEC=" + b.dm.xdirSpec, "NRIFLOOR_DEVICES=0,2", "NRIFLOOR_ANNOTATION=" + floorAnnotation}
	log := filepath.Join(b.env.Dir, "logs", "nrifloor.log")
	p, err := harness.StartPlugin(ctx, b.floorBin, filepath.Join(b.env.Dir, "etc", "nrifloor.yaml"), log, cfg)
	if err != nil {
		return nil, fmt.Errorf("nrifloor: %w (its log: %s)", err, log)
	}
	return p, nil
}
