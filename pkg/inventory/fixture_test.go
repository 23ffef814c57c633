package inventory_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/ldcache"
)

// fakeHost is a minimal fake host tree: a host root under a temp dir with
// the driver installed at "/", procfs at /proc, nodes at /dev (plain files
// described by a fake NodeStater).
type fakeHost struct {
	t     testing.TB
	dir   string
	host  config.Host
	nodes *fakeStater
}

// fakeStater answers StatNode from a map keyed by view path. It is safe for
// concurrent use (a Watcher may read while a test rebuilds the host).
type fakeStater struct {
	mu    sync.RWMutex
	nodes map[string]inventory.NodeInfo
}

func (s *fakeStater) set(p string, n inventory.NodeInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[p] = n
}

func (s *fakeStater) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.nodes)
}

func (s *fakeStater) StatNode(p string) (inventory.NodeInfo, error) {
	s.mu.RLock()
	n, ok := s.nodes[p]
	s.mu.RUnlock()
	if ok {
		return n, nil
	}
	if _, err := os.Lstat(p); err == nil {
		return inventory.NodeInfo{}, nil // a plain file: not a character device
	}
	return inventory.NodeInfo{}, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
}

type fixture struct {
	gpus    int
	version string
	mig     map[int]int // GPU index -> MIG devices (one GI + one CI each)
	lib32   bool
	omit    map[string]bool // "ldcache", "uvm", "firmware", "dri", "driver"
}

// pciOf returns GPU i's bus id: deliberately not in minor order, with hex
// letters (1a, 2a, ...) so that letter case matters to lookups.
func pciOf(i int) string { return fmt.Sprintf("0000:%02x:00.0", 0x1a+i*0x10) }

func minorOf(i, n int) int { return n - 1 - i }

func uuidOf(i int) string { return fmt.Sprintf("GPU-%08d-aaaa-bbbb-cccc-dddddddddddd", i) }

func newFakeHost(t testing.TB, f fixture) *fakeHost {
	dir := t.TempDir()
	h := &fakeHost{t: t, dir: dir, nodes: &fakeStater{nodes: map[string]inventory.NodeInfo{}},
		host: config.Host{Root: dir, DriverRoot: "/", DevRoot: "/dev", ProcRoot: "/proc"}}
	h.build(f)
	return h
}

func (h *fakeHost) write(p, content string) {
	full := filepath.Join(h.dir, p)
	require.NoError(h.t, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(h.t, os.WriteFile(full, []byte(content), 0o644))
}

func (h *fakeHost) symlink(target, p string) {
	full := filepath.Join(h.dir, p)
	require.NoError(h.t, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(h.t, os.Symlink(target, full))
}

func (h *fakeHost) node(p string, major, minor int64) {
	h.write(p, "")
	h.nodes.set(filepath.Join(h.dir, p), inventory.NodeInfo{IsChar: true, Major: major, Minor: minor, Perm: 0o666})
}

// build writes the tree. It can be called again after clearing the
// directory to simulate an upgrade.
func (h *fakeHost) build(f fixture) {
	if f.omit == nil {
		f.omit = map[string]bool{}
	}
	if !f.omit["driver"] {
		h.write("proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  "+f.version+
			"  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
	}
	devices := "Character devices:\n  1 mem\n195 nvidia-frontend\n"
	if !f.omit["uvm"] {
		devices += "508 nvidia-uvm\n"
	}
	devices += "509 nvidia-caps\n510 nvidia-caps-imex-channels\n\nBlock devices:\n  7 loop\n508 blkext\n"
	h.write("proc/devices", devices)
	h.node("dev/nvidiactl", 195, 255)
	h.node("dev/nvidia-modeset", 195, 254)
	if !f.omit["uvm"] {
		h.node("dev/nvidia-uvm", 508, 0)
		h.node("dev/nvidia-uvm-tools", 508, 1)
	}
	h.write("proc/driver/nvidia/capabilities/mig/config", "DeviceFileMinor: 1\nDeviceFileMode: 256\nDeviceFileModify: 1\n")
	h.write("proc/driver/nvidia/capabilities/mig/monitor", "DeviceFileMinor: 2\nDeviceFileMode: 292\nDeviceFileModify: 1\n")
	h.node("dev/nvidia-caps/nvidia-cap1", 509, 1)
	// nvidia-cap2 deliberately absent: described from procfs.
	for i := range f.gpus {
		minor := minorOf(i, f.gpus)
		pci := pciOf(i)
		h.write("proc/driver/nvidia/gpus/"+pci+"/information", fmt.Sprintf(
			"Model: \t\t NVIDIA H200\nIRQ:   \t\t 42\nGPU UUID: \t %s\nVideo BIOS: \t ??.??.??.??.??\n"+
				"Bus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\n"+
				"Bus Location: \t %s\nDevice Minor: \t %d\nGPU Excluded:\t No\n", uuidOf(i), pci, minor))
		h.node(fmt.Sprintf("dev/nvidia%d", minor), 195, int64(minor))
		if !f.omit["dri"] {
			h.node(fmt.Sprintf("dev/dri/card%d", i+1), 226, int64(i+1))
			h.node(fmt.Sprintf("dev/dri/renderD%d", 128+i), 226, int64(128+i))
			h.symlink(fmt.Sprintf("../card%d", i+1), "dev/dri/by-path/pci-"+pci+"-card")
			h.symlink(fmt.Sprintf("../renderD%d", 128+i), "dev/dri/by-path/pci-"+pci+"-render")
		}
		capMinor := 100 + 10*i
		for m := range f.mig[i] {
			gi := fmt.Sprintf("proc/driver/nvidia/capabilities/gpu%d/mig/gi%d", minor, m+1)
			h.write(gi+"/access", fmt.Sprintf("DeviceFileMinor: %d\nDeviceFileMode: 292\n", capMinor))
			h.write(gi+"/ci0/access", fmt.Sprintf("DeviceFileMinor: %d\nDeviceFileMode: 292\n", capMinor+1))
			h.node(fmt.Sprintf("dev/nvidia-caps/nvidia-cap%d", capMinor), 509, int64(capMinor))
			h.node(fmt.Sprintf("dev/nvidia-caps/nvidia-cap%d", capMinor+1), 509, int64(capMinor+1))
			capMinor += 2
		}
	}
	h.node("dev/nvidia-caps-imex-channels/channel0", 510, 0)
	h.node("dev/nvidia-caps-imex-channels/channel1", 510, 1)
	h.node("dev/nvidia-fs0", 240, 0)
	h.node("dev/nvidia-fs10", 240, 10)
	h.node("dev/nvidia-fs2", 240, 2)
	h.node("dev/infiniband/uverbs0", 231, 192)
	h.node("dev/infiniband/rdma_cm", 10, 58)
	h.node("dev/nvidia-nvswitchctl", 241, 255)
	h.node("dev/nvidia-nvswitch0", 241, 0)
	h.node("dev/gdrdrv", 242, 0)
	h.write("dev/null", "") // not a device: must not show up anywhere

	// Libraries: the driver's, plus a leftover of another version.
	var entries []ldcache.Entry
	addLib := func(dir, name, ver string, bits int, soMajor string) {
		file := name + ".so." + ver
		h.write(filepath.Join(dir, file), string(elfSO(bits, name+".so."+soMajor)))
		h.symlink(file, filepath.Join(dir, name+".so."+soMajor))
		flags := int32(ldcache.FlagELFLibc6 | ldcache.FlagX8664Lib64)
		if bits == 32 {
			flags = ldcache.FlagELFLibc6
		}
		entries = append(entries, ldcache.Entry{Key: name + ".so." + soMajor, Value: "/" + filepath.Join(dir, name+".so."+soMajor), Flags: flags})
	}
	for _, name := range []string{"libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler", "libGLX_nvidia", "libnvidia-encode", "libnvidia-ngx"} {
		addLib("usr/lib/x86_64-linux-gnu", name, f.version, 64, "1")
		if f.lib32 && name != "libnvidia-ngx" {
			addLib("usr/lib/i386-linux-gnu", name, f.version, 32, "1")
		}
	}
	addLib("usr/lib/x86_64-linux-gnu", "libnvidia-egl-wayland", "1.1.13", 64, "1")
	// A stale library of an older driver, still in the cache.
	addLib("usr/lib/x86_64-linux-gnu", "libnvidia-cfg", "470.1.2", 64, "1")
	// Not a driver library.
	addLib("usr/lib/x86_64-linux-gnu", "libfoo", f.version, 64, "1")
	h.write("usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so."+f.version, string(elfSO(64, "libvdpau_nvidia.so.1")))
	if !f.omit["ldcache"] {
		h.write("etc/ld.so.cache", string(ldcache.Write(entries)))
	}

	for _, b := range []string{"usr/bin/nvidia-smi", "usr/bin/nvidia-cuda-mps-control", "usr/sbin/nvidia-persistenced"} {
		h.write(b, "#!/bin/sh\n")
	}
	if !f.omit["firmware"] {
		h.write("lib/firmware/nvidia/"+f.version+"/gsp_ga10x.bin", "fw")
		h.write("lib/firmware/nvidia/"+f.version+"/gsp_tu10x.bin", "fw")
	}
	h.write("lib/firmware/nvidia/470.1.2/gsp_old.bin", "fw")
	h.write("usr/share/glvnd/egl_vendor.d/10_nvidia.json", "{}")
	h.write("usr/share/vulkan/icd.d/nvidia_icd.json", "{}")
	h.write("etc/vulkan/icd.d/nvidia_icd.json", "{}") // etc wins
	h.write("usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json", "{}")
	h.write("usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json", "{}")
	h.write("usr/share/egl/egl_external_platform.d/10_mesa.json", "{}")
	h.write("etc/OpenCL/vendors/nvidia.icd", "libnvidia-opencl.so.1")
	h.write("usr/share/X11/xorg.conf.d/10-nvidia.conf", "")
}

// elfSO returns a minimal ELF shared object (no code) whose dynamic section
// has DT_SONAME soname.
func elfSO(bits int, soname string) []byte {
	dynstr := append([]byte{0}, append([]byte(soname), 0)...)
	shstr := []byte("\x00.dynstr\x00.dynamic\x00.shstrtab\x00")
	var dyn bytes.Buffer
	le := binary.LittleEndian
	if bits == 64 {
		must(binary.Write(&dyn, le, []elf.Dyn64{{Tag: int64(elf.DT_SONAME), Val: 1}, {Tag: int64(elf.DT_NULL)}}))
	} else {
		must(binary.Write(&dyn, le, []elf.Dyn32{{Tag: int32(elf.DT_SONAME), Val: 1}, {Tag: int32(elf.DT_NULL)}}))
	}
	var hdrLen int
	if bits == 64 {
		hdrLen = 64
	} else {
		hdrLen = 52
	}
	offStr := hdrLen
	offDyn := offStr + len(dynstr)
	offShstr := offDyn + dyn.Len()
	offSh := offShstr + len(shstr)
	var out bytes.Buffer
	ident := [16]byte{0x7f, 'E', 'L', 'F', 2, 1, 1}
	if bits == 64 {
		must(binary.Write(&out, le, elf.Header64{Ident: ident, Type: uint16(elf.ET_DYN), Machine: uint16(elf.EM_X86_64),
			Version: 1, Shoff: uint64(offSh), Ehsize: 64, Phentsize: 56, Shentsize: 64, Shnum: 4, Shstrndx: 3}))
	} else {
		ident[4] = 1
		must(binary.Write(&out, le, elf.Header32{Ident: ident, Type: uint16(elf.ET_DYN), Machine: uint16(elf.EM_386),
			Version: 1, Shoff: uint32(offSh), Ehsize: 52, Phentsize: 32, Shentsize: 40, Shnum: 4, Shstrndx: 3}))
	}
	out.Write(dynstr)
	out.Write(dyn.Bytes())
	out.Write(shstr)
	type sec struct {
		name, typ, link  uint32
		off, size, entsz int
	}
	entsz := 16
	if bits == 32 {
		entsz = 8
	}
	for _, s := range []sec{{}, {1, uint32(elf.SHT_STRTAB), 0, offStr, len(dynstr), 0},
		{9, uint32(elf.SHT_DYNAMIC), 1, offDyn, dyn.Len(), entsz}, {18, uint32(elf.SHT_STRTAB), 0, offShstr, len(shstr), 0}} {
		if bits == 64 {
			must(binary.Write(&out, le, elf.Section64{Name: s.name, Type: s.typ, Off: uint64(s.off), Size: uint64(s.size),
				Link: s.link, Entsize: uint64(s.entsz)}))
		} else {
			must(binary.Write(&out, le, elf.Section32{Name: s.name, Type: s.typ, Off: uint32(s.off), Size: uint32(s.size),
				Link: s.link, Entsize: uint32(s.entsz)}))
		}
	}
	return out.Bytes()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// paths returns the Path of each file.
func paths(files []inventory.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func hasWarning(inv *inventory.Inventory, sub string) bool {
	for _, w := range inv.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}
