package edits

import (
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	cdi "tags.cncf.io/container-device-interface/specs-go"
)

// Selection is what a container gets, already authorized and resolved
// against the inventory.
type Selection struct {
	// GPUs are whole GPUs.
	GPUs []*inventory.GPU
	// MIGs are MIG devices (their parent GPU's node comes with them).
	MIGs []*inventory.MIGDevice
	// Capabilities select driver files.
	Capabilities []inventory.Capability
	// MIGConfig and MIGMonitor add the MIG config/monitor cap nodes.
	MIGConfig, MIGMonitor bool
	// IMEXChannels to inject; IMEXAll for every channel on the host.
	IMEXChannels []int
	IMEXAll      bool
	// Extra device groups by inventory.Extra key (gds, mofed, nvswitch, gdrcopy).
	Extra []string
	// ImageLibraryPath is the container's LD_LIBRARY_PATH (empty when unknown,
	// as in a CDI spec): the hookless fallback layout puts its directory first.
	ImageLibraryPath string
	// LibraryDir is a directory built for PlanDir(inv, Capabilities)
	// (pkg/libdir); nil: every library is mounted file by file. Its plan's
	// libraries then arrive as one mount at LibraryDirPath.
	LibraryDir *BuiltDir
}

// Options shape the edits.
type Options struct {
	// Loader is config.LoaderHook or config.LoaderHookless.
	Loader config.Loader
	// HookPath is the host path of the gpu-nri binary.
	HookPath string
	// Ldconfig is the host path of ldconfig.
	Ldconfig string
	// HookTimeout in seconds.
	HookTimeout int
	// CUDACompat passes --cuda-compat to the hook.
	CUDACompat bool
	// HideParams passes --hide-params to the hook (hook mode only).
	HideParams bool
	// AdditionalGIDs adds the group of nodes that are not world read-writable.
	AdditionalGIDs bool
	// HooklessLayout is where hookless mode mounts the libraries.
	HooklessLayout hookproto.Layout
}

// OptionsFromConfig derives Options from the configuration.
func OptionsFromConfig(c *config.Config) Options {
	return Options{
		Loader:         c.Injection.Loader,
		HookPath:       c.Injection.HookPath,
		Ldconfig:       c.Injection.LdconfigPath,
		HookTimeout:    c.Injection.HookTimeout,
		CUDACompat:     c.Injection.CUDACompat,
		HideParams:     c.Injection.DisableDeviceNodeModification,
		AdditionalGIDs: c.Injection.AdditionalGIDs,
		HooklessLayout: c.Injection.HooklessLayout,
	}
}

// Mount options of driver files and sockets (fresh slices: Build's mounts
// share one per Build, never one across builds).
func fileMountOptions() []string { return []string{"ro", "nosuid", "nodev", "rbind", "rprivate"} }
func socketMountOptions() []string {
	return []string{"ro", "nosuid", "nodev", "noexec", "rbind", "rprivate"}
}

// mpsMountOptions: the MPS pipe directory is where clients talk to the MPS
// control daemon: read-write, as NVIDIA mounts it, but never executable.
func mpsMountOptions() []string { return []string{"nosuid", "nodev", "noexec", "rbind", "rprivate"} }

// hookEnv is the explicit environment of every hook gpu-nri adds: the hook
// never inherits the image's environment (CVE-2025-23266).
func hookEnv() []string { return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"} }

// VisibleDevicesAfter is what NVIDIA_VISIBLE_DEVICES is rewritten to once
// gpu-nri has injected, so that no other layer injects a second time.
const VisibleDevicesAfter = "void"

// Build returns the container edits for sel on inv. It is deterministic and
// does no I/O.
func Build(inv *inventory.Inventory, sel Selection, o Options) *cdi.ContainerEdits {
	b := builder{inv: inv, o: o, seenNode: map[string]bool{}, seenMount: map[string]bool{}, gids: map[uint32]bool{}}
	caps := map[inventory.Capability]bool{}
	for _, c := range sel.Capabilities {
		caps[c] = true
	}

	// Device nodes: control, GPUs, MIG caps, extras.
	b.node(inv.Ctl)
	if caps[inventory.Compute] {
		b.node(inv.UVM)
		b.node(inv.UVMTools)
	}
	if caps[inventory.Display] {
		b.node(inv.Modeset)
	}
	dri := caps[inventory.Graphics] || caps[inventory.Display]
	for _, g := range sel.GPUs {
		b.node(&g.Node)
		if dri {
			for i := range g.DRI {
				b.node(&g.DRI[i])
			}
		}
	}
	for _, m := range sel.MIGs {
		if g, ok := inv.GPUByIndex(m.GPU); ok {
			b.node(&g.Node)
		}
		for i := range m.Caps {
			b.node(&m.Caps[i])
		}
	}
	if sel.MIGConfig {
		b.node(inv.MIGConfig)
	}
	if sel.MIGMonitor {
		b.node(inv.MIGMonitor)
	}
	if sel.IMEXAll {
		ids := make([]int, 0, len(inv.IMEXChannels))
		for id := range inv.IMEXChannels {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		sel.IMEXChannels = ids
	}
	for _, id := range sel.IMEXChannels {
		if n, ok := inv.IMEXChannels[id]; ok {
			b.node(&n)
		}
	}
	for _, k := range sel.Extra {
		for i := range inv.Extra[k] {
			b.node(&inv.Extra[k][i])
		}
	}

	// Files of the requested capabilities, in config.AllCapabilities order.
	fileOpts := fileMountOptions()
	var libs, dirLibs []inventory.File // mounted file by file; in the library directory
	var inDir map[string]string
	if d := sel.LibraryDir; d != nil && len(d.Plan.Files) > 0 {
		inDir = d.Plan.in
		b.seenMount[LibraryDirPath] = true
		b.e.Mounts = append(b.e.Mounts, &cdi.Mount{HostPath: d.HostPath, ContainerPath: LibraryDirPath,
			Options: fileOpts, Type: "bind"})
	}
	for _, c := range config.AllCapabilities() {
		if !caps[c] {
			continue
		}
		for _, f := range inv.Libraries[c] {
			if p, ok := inDir[f.Path]; ok {
				if !b.seenMount[f.Path] {
					b.seenMount[f.Path] = true
					f.Path = p
					dirLibs = append(dirLibs, f)
				}
			} else if b.mount(f, fileOpts) {
				libs = append(libs, f)
			}
		}
		for _, f := range inv.Binaries[c] {
			b.mount(f, fileOpts)
		}
		for _, f := range inv.ConfigFiles[c] {
			b.mount(f, fileOpts)
		}
		for _, f := range inv.Sockets[c] {
			b.mount(f, socketMountOptions())
		}
	}
	for _, f := range inv.Firmware {
		b.mount(f, fileOpts)
	}
	for _, k := range sel.Extra {
		for _, f := range inv.ExtraFiles[k] {
			b.mount(f, fileOpts)
		}
	}
	if caps[inventory.Compute] && inv.MPSPipeDir != nil {
		b.mount(*inv.MPSPipeDir, mpsMountOptions())
	}

	b.e.Env = []string{"NVIDIA_VISIBLE_DEVICES=" + VisibleDevicesAfter}
	switch o.Loader {
	case config.LoaderHookless:
		// With the library directory, the libraries outside it (subdirectories,
		// 32-bit) keep their own mounts; the fallback layout's SONAME copies
		// would land inside the read-only directory, so there are none.
		if len(dirLibs) == 0 || o.HooklessLayout != hookproto.LayoutFallback {
			for _, m := range hooklessMounts(libs, o.HooklessLayout, fileOpts) {
				if !b.seenMount[m.ContainerPath] {
					b.seenMount[m.ContainerPath] = true
					b.e.Mounts = append(b.e.Mounts, m)
				}
			}
		}
		if o.HooklessLayout == hookproto.LayoutFallback || len(dirLibs) > 0 {
			b.e.Env = append(b.e.Env, "LD_LIBRARY_PATH="+hookproto.HooklessLibraryPath(sel.ImageLibraryPath, hookproto.HooklessDir))
		}
	default:
		if len(libs)+len(dirLibs) > 0 {
			// The directory has its links already (and is read-only).
			b.e.Hooks = append(b.e.Hooks, loaderHook(append(dirLibs, libs...), Links(libs), inv.DriverVersion, o))
		}
	}
	for g := range b.gids {
		b.e.AdditionalGIDs = append(b.e.AdditionalGIDs, g)
	}
	slices.Sort(b.e.AdditionalGIDs)
	return &b.e
}

type builder struct {
	inv       *inventory.Inventory
	o         Options
	e         cdi.ContainerEdits
	seenNode  map[string]bool
	seenMount map[string]bool
	gids      map[uint32]bool
}

func (b *builder) node(n *inventory.DeviceNode) {
	if n == nil || b.seenNode[n.Path] {
		return
	}
	b.seenNode[n.Path] = true
	mode := n.FileMode
	major, minor := n.Major, n.Minor
	uid, gid := n.UID, n.GID
	b.e.DeviceNodes = append(b.e.DeviceNodes, &cdi.DeviceNode{
		Path:        n.Path,
		HostPath:    n.HostPath,
		Type:        "c",
		Major:       major,
		Minor:       minor,
		FileMode:    &mode,
		Permissions: "rw",
		UID:         &uid,
		GID:         &gid,
	})
	if b.o.AdditionalGIDs && n.GID != 0 && n.FileMode.Perm()&0o006 != 0o006 {
		b.gids[n.GID] = true
	}
}

func (b *builder) mount(f inventory.File, opts []string) bool {
	if b.seenMount[f.Path] {
		return false
	}
	b.seenMount[f.Path] = true
	b.e.Mounts = append(b.e.Mounts, &cdi.Mount{
		HostPath:      f.HostPath,
		ContainerPath: f.Path,
		Options:       opts,
		Type:          "bind",
	})
	return true
}

// Links returns the symbolic links that make libs loadable by SONAME (and
// by the alias names of hookproto.AliasNames), in container paths.
func Links(libs []inventory.File) []hookproto.Link {
	var out []hookproto.Link
	seen := map[string]bool{}
	add := func(target, link string) {
		if !seen[link] {
			seen[link] = true
			out = append(out, hookproto.Link{Target: target, Link: link})
		}
	}
	for _, f := range libs {
		dir, base := path.Split(f.Path)
		if f.SONAME == "" || strings.Contains(f.SONAME, "/") {
			continue
		}
		if f.SONAME != base {
			add(base, dir+f.SONAME)
		}
		for _, alias := range hookproto.AliasNames(f.SONAME) {
			add(f.SONAME, dir+alias)
		}
	}
	return out
}

// sonames returns the ld.so.cache entries of libs (hookproto.CacheNames),
// once per path.
func sonames(libs []inventory.File) []hookproto.Soname {
	var out []hookproto.Soname
	seen := map[string]bool{}
	for _, f := range libs {
		for _, so := range hookproto.CacheNames(f.Path, f.SONAME, f.Lib32) {
			if !seen[so.Path] {
				seen[so.Path] = true
				out = append(out, so)
			}
		}
	}
	return out
}

// folders returns the distinct library directories, 64-bit first.
func folders(libs []inventory.File) []string {
	var out []string
	seen := map[string]bool{}
	for _, lib32 := range []bool{false, true} {
		for _, f := range libs {
			if f.Lib32 != lib32 {
				continue
			}
			d := path.Dir(f.Path)
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}

func loaderHook(libs []inventory.File, links []hookproto.Link, driverVersion string, o Options) *cdi.Hook {
	ho := hookproto.Options{
		Ldconfig:      o.Ldconfig,
		Folders:       folders(libs),
		Links:         links,
		Sonames:       sonames(libs),
		DriverVersion: driverVersion,
		CUDACompat:    o.CUDACompat,
		HideParams:    o.HideParams,
	}
	timeout := o.HookTimeout
	return &cdi.Hook{
		HookName: "createContainer",
		Path:     o.HookPath,
		Args:     ho.Args("gpu-nri"),
		Env:      hookEnv(),
		Timeout:  &timeout,
	}
}

// hooklessMounts mounts every 64-bit library again under its SONAME and
// alias names in the default loader directories of the layout
// (hookproto.HooklessMounts), so that dlopen by SONAME works without an
// ld.so.cache entry and without a hook.
func hooklessMounts(libs []inventory.File, layout hookproto.Layout, opts []string) []*cdi.Mount {
	in := make([]hookproto.HooklessLib, 0, len(libs))
	for _, f := range libs {
		if !f.Lib32 {
			in = append(in, hookproto.HooklessLib{Path: f.HostPath, SONAME: f.SONAME})
		}
	}
	plan := hookproto.HooklessMounts(in, layout)
	out := make([]*cdi.Mount, len(plan))
	for i, m := range plan {
		out[i] = &cdi.Mount{HostPath: m.Source, ContainerPath: m.Destination, Options: opts, Type: "bind"}
	}
	return out
}
