package simhost

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Upgrade installs driver version (CUDA driver API cuda, e.g. "12.5") on
// h's host the way a driver package upgrade followed by a reboot leaves a
// node: every driver file (libraries, binaries, firmware, ld.so.cache) is
// of the new version and /proc/driver/nvidia/version names it, while the
// GPUs, their device nodes and the rest of /proc stay as they are. The new
// driver root is built beside the old one and swapped in with two renames,
// so a reader sees the old or the new file set, or briefly none; anything
// at the top of the old driver root that Build did not make (a link a test
// added) is carried over. It returns the upgraded host; h still describes
// the old one.
func (h *Host) Upgrade(version, cuda string) (*Host, error) {
	o := h.Options
	o.DriverVersion, o.CUDAVersion = version, cuda
	o, err := o.resolved()
	if err != nil {
		return nil, err
	}
	if o.omitted("version") {
		return nil, fmt.Errorf("simhost: upgrade: the host has no /proc driver version to change")
	}
	api, err := cudaAPIVersion(o.CUDAVersion)
	if err != nil {
		return nil, fmt.Errorf("simhost: upgrade: %w", err)
	}
	root := h.Config.DriverRoot
	stage, old := root+".upgrade", root+".old"
	for _, d := range []string{stage, old} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("simhost: upgrade: %w", err)
		}
	}
	nh := &Host{Options: o, Config: h.Config, DriverVersion: o.DriverVersion, CUDAVersion: o.CUDAVersion,
		CUDAAPIVersion: api, CUDATest: h.CUDATest, Nodes: h.Nodes, stater: h.stater}
	nh.Config.DriverRoot = stage
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return nil, fmt.Errorf("simhost: upgrade: %w", err)
	}
	cc, err := newCompiler(o.CacheDir)
	if err != nil {
		return nil, err
	}
	nh.computeGPUs()
	for _, step := range []func(*compiler) error{nh.buildMergedUsr, nh.buildLibraries, nh.buildBinaries, nh.buildFiles} {
		if err := step(cc); err != nil {
			return nil, err
		}
	}
	tops, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("simhost: upgrade: %w", err)
	}
	for _, e := range tops {
		if _, err := os.Lstat(filepath.Join(stage, e.Name())); os.IsNotExist(err) {
			if err := os.Rename(filepath.Join(root, e.Name()), filepath.Join(stage, e.Name())); err != nil {
				return nil, fmt.Errorf("simhost: upgrade: %w", err)
			}
		}
	}
	vf := filepath.Join(h.Config.ProcRoot, "driver/nvidia/version")
	b, err := os.ReadFile(vf)
	if err != nil {
		return nil, fmt.Errorf("simhost: upgrade: %w", err)
	}
	if err := os.Rename(root, old); err != nil {
		return nil, fmt.Errorf("simhost: upgrade: %w", err)
	}
	if err := os.Rename(stage, root); err != nil {
		return nil, fmt.Errorf("simhost: upgrade: %w", err)
	}
	if err := os.WriteFile(vf, []byte(strings.ReplaceAll(string(b), "  "+h.DriverVersion+"  ", "  "+o.DriverVersion+"  ")), 0o644); err != nil {
		return nil, fmt.Errorf("simhost: upgrade: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return nil, fmt.Errorf("simhost: upgrade: %w", err)
	}
	nh.Config.DriverRoot = root
	rebase := func(fs []File) {
		for i := range fs {
			fs[i].HostPath = filepath.Join(root, strings.TrimPrefix(fs[i].HostPath, stage))
		}
	}
	rebase(nh.Libraries)
	rebase(nh.Binaries)
	rebase(nh.ConfigFiles)
	rebase(nh.Firmware)
	rebase(nh.Sockets)
	if nh.LDCache != "" {
		nh.LDCache = filepath.Join(root, strings.TrimPrefix(nh.LDCache, stage))
	}
	return nh, nil
}
