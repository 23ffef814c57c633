package simhost

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/internal/fsutil"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/ldcache"
)

// Build creates the simulated host under opts.Dir and returns its facts.
// Building twice into the same Dir replaces the generated files.
func Build(opts Options) (*Host, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	if o.RealNodes && os.Geteuid() != 0 {
		return nil, fmt.Errorf("simhost: RealNodes needs root (mknod)")
	}
	api, _ := cudaAPIVersion(o.CUDAVersion)
	h := &Host{
		Options:        o,
		DriverVersion:  o.DriverVersion,
		CUDAVersion:    o.CUDAVersion,
		CUDAAPIVersion: api,
		Config: config.Host{
			Root:            "/",
			DriverRoot:      filepath.Join(o.Dir, "driver"),
			DevRoot:         filepath.Join(o.Dir, "dev"),
			ProcRoot:        filepath.Join(o.Dir, "proc"),
			RefreshInterval: config.Default().Host.RefreshInterval,
		},
	}
	for _, d := range []string{h.Config.DriverRoot, h.Config.DevRoot, h.Config.ProcRoot} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("simhost: clearing %s: %w", d, err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("simhost: %w", err)
		}
	}
	cc, err := newCompiler(o.CacheDir)
	if err != nil {
		return nil, err
	}
	h.computeGPUs()
	steps := []func(*compiler) error{h.buildMergedUsr, h.buildCUDATest, h.buildLibraries, h.buildBinaries, h.buildFiles, h.buildNodes, h.buildProc}
	for _, step := range steps {
		if err := step(cc); err != nil {
			return nil, err
		}
	}
	if o.RealNodes {
		h.stater = realStater{}
	} else {
		fake := fakeStater{}
		for _, n := range h.Nodes {
			fake[n.Path] = inventory.NodeInfo{IsChar: true, Major: n.Major, Minor: n.Minor, Perm: n.Mode.Perm()}
		}
		h.stater = fake
	}
	return h, nil
}

func (h *Host) computeGPUs() {
	o := h.Options
	for i := range o.GPUs {
		g := GPU{
			Index: i, Minor: i, UUID: GPUUUID(i), PCIBusID: PCIBusID(i), Model: DefaultModel,
			Information: !o.omitted(fmt.Sprintf("gpu:%d-information", i)),
			Node:        !o.omitted(fmt.Sprintf("gpu:%d-node", i)),
			CardMinor:   i + 1, RenderMinor: 128 + i,
			MemoryMiB: DefaultMemoryMiB, ComputeCapability: DefaultComputeCapability,
			Architecture: DefaultArchitecture, Brand: DefaultBrand, PCIDeviceID: DefaultPCIDeviceID,
		}
		for m := range o.MIG[i] {
			gi, ci := m+1, 0
			giMinor, ciMinor := MIGCapMinors(i, gi, ci)
			g.MIG = append(g.MIG, MIG{GPU: i, Index: m, GI: gi, CI: ci, UUID: MIGUUID(i, gi, ci), GICapMinor: giMinor, CICapMinor: ciMinor,
				Profile: MIGProfile, Slices: 1, MemoryMiB: MIGMemoryMiB, GIProfileID: MIGGIProfileID})
		}
		h.GPUs = append(h.GPUs, g)
	}
}

func (h *Host) driverPath(rel string) string { return filepath.Join(h.Config.DriverRoot, rel) }

func (h *Host) debian() bool { return h.Options.Layout == LayoutDebian }

// symlink makes the link rel (relative to the driver root) pointing at
// target, written as given (absolute targets are absolute in the driver
// root's terms, as on the host).
func (h *Host) symlink(target, rel string) error {
	p := h.driverPath(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	if err := os.Symlink(target, p); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	return nil
}

// alternative makes rel reach target the Debian way: rel ->
// /etc/alternatives/name -> target, both links absolute.
func (h *Host) alternative(name, rel, target string) error {
	alt := filepath.Join("/etc/alternatives", name)
	if err := h.symlink(alt, rel); err != nil {
		return err
	}
	return h.symlink(target, alt)
}

// buildMergedUsr makes the Debian layout's merged /usr: /lib, /lib64, /bin
// and /sbin are relative links into /usr.
func (h *Host) buildMergedUsr(*compiler) error {
	if !h.debian() {
		return nil
	}
	for _, d := range []string{"lib", "lib64", "bin", "sbin"} {
		if err := os.MkdirAll(h.driverPath("/usr/"+d), 0o755); err != nil {
			return fmt.Errorf("simhost: %w", err)
		}
		if err := h.symlink("usr/"+d, "/"+d); err != nil {
			return err
		}
	}
	return nil
}

// debianCurrent is where Debian's packages put the driver's libraries.
func debianCurrent(libDir string) string { return filepath.Join(libDir, "nvidia/current") }

// libArgs are gcc's arguments for library l with SONAME soname (64-bit;
// the 32-bit build adds its own): libnvidia-ml gets the host's GPU table.
func (h *Host) libArgs(l libSpec, soname string) ([]string, error) {
	args := []string{"-shared", "-fPIC", "-Wl,-soname," + soname, "-DSIMGPU_LIBRARY=\"" + l.base + "\"",
		fmt.Sprintf("-DCUDA_API_VERSION=%d", h.CUDAAPIVersion), fmt.Sprintf("-DDRIVER_VERSION=\"%s\"", h.Options.DriverVersion)}
	if l.base == "libnvidia-ml" {
		m, err := h.NVMLManifest()
		if err != nil {
			return nil, err
		}
		args = append(args, "-DSIMGPU_MANIFEST=\""+m+"\"")
	}
	return args, nil
}

func (h *Host) buildLibraries(cc *compiler) error {
	o := h.Options
	ver := o.DriverVersion
	var cache []ldcache.Entry
	lib32Skip := ""
	for _, l := range libSpecs {
		if !o.hasCap(l.cap) || o.omitted("lib:"+l.base) {
			continue
		}
		soname := l.soname
		if strings.Contains(soname, "%v") {
			soname = fmt.Sprintf(soname, ver)
		}
		variants := []struct {
			dir   string
			lib32 bool
		}{{x8664LibDir, false}}
		if o.Lib32 && l.lib32 && o.hasCap(inventory.Compute) {
			variants = append(variants, struct {
				dir   string
				lib32 bool
			}{i386LibDir, true})
		}
		for _, v := range variants {
			args, err := h.libArgs(l, soname)
			if err != nil {
				return err
			}
			src := l.src
			flags := int32(ldcache.FlagELFLibc6 | ldcache.FlagX8664Lib64)
			if v.lib32 {
				if lib32Skip != "" {
					continue
				}
				// A 32-bit libc is rarely installed; generic.c needs none.
				src = "generic.c"
				args = append(args, "-m32", "-nostdlib")
				// ldconfig marks a library that needs no libc.so.6 as plain
				// ELF; real 32-bit NVIDIA libraries say libc6 (3).
				flags = ldcache.FlagELF
			}
			built, err := cc.build(src, args...)
			if err != nil {
				if v.lib32 {
					lib32Skip = fmt.Sprintf("32-bit libraries skipped: %v", err)
					h.Notes = append(h.Notes, lib32Skip)
					continue
				}
				return err
			}
			dir := v.dir
			if h.debian() {
				dir = debianCurrent(v.dir)
			}
			rel := filepath.Join(dir, l.base+".so."+l.fileVersion(ver))
			if err := copyFile(built, h.driverPath(rel), 0o755); err != nil {
				return err
			}
			cap := l.cap
			if v.lib32 {
				cap = inventory.Compat32
			}
			f := File{Capability: cap, Path: rel, HostPath: h.driverPath(rel), SONAME: soname, Lib32: v.lib32}
			cacheValue, target := rel, rel
			if soname != filepath.Base(rel) {
				f.Link = filepath.Join(dir, soname)
				if !o.omitted("soname-links") {
					if err := os.Symlink(filepath.Base(rel), h.driverPath(f.Link)); err != nil {
						return fmt.Errorf("simhost: %w", err)
					}
					// ldconfig records the SONAME link, not the file.
					cacheValue, target = f.Link, f.Link
				}
			}
			if h.debian() {
				// The usual name, through /etc/alternatives; ldconfig
				// (which does not read nvidia/current) records it.
				// libvdpau_nvidia exists only as vdpau/<SONAME>, which
				// ld.so.cache never lists.
				f.Alias = filepath.Join(v.dir, soname)
				if l.base == "libvdpau_nvidia" {
					f.Alias = filepath.Join(v.dir, "vdpau", soname)
				}
				alt := "nvidia--" + soname + "-" + filepath.Base(v.dir)
				if err := h.alternative(alt, f.Alias, target); err != nil {
					return err
				}
				cacheValue = f.Alias
			}
			h.Libraries = append(h.Libraries, f)
			if l.base == "libnvidia-allocator" && !v.lib32 {
				// GBM's NVIDIA backend, as NVIDIA's installer links it (on
				// Debian through the alternatives link of the allocator).
				// Without SONAME links there is none on the host, and
				// discovery puts it beside the allocator.
				gbm := filepath.Join(v.dir, "gbm/nvidia-drm_gbm.so")
				if o.omitted("soname-links") {
					gbm = filepath.Join(dir, "gbm/nvidia-drm_gbm.so")
				} else if err := h.symlink("../libnvidia-allocator.so.1", gbm); err != nil {
					return err
				}
				h.ConfigFiles = append(h.ConfigFiles, File{Capability: inventory.Graphics, Path: gbm, HostPath: f.HostPath})
			}
			if l.base != "libvdpau_nvidia" || !h.debian() {
				cache = append(cache, ldcache.Entry{Key: soname, Value: cacheValue, Flags: flags})
			}
		}
	}
	if o.omitted("ldcache") {
		return nil
	}
	h.LDCache = h.driverPath("/etc/ld.so.cache")
	if err := os.MkdirAll(filepath.Dir(h.LDCache), 0o755); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	if err := os.WriteFile(h.LDCache, ldcache.Write(cache), 0o644); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	return nil
}

func (h *Host) buildCUDATest(cc *compiler) error {
	built, err := cc.build("cudatest.c", "-ldl")
	if err != nil {
		return err
	}
	h.CUDATest = filepath.Join(h.Options.Dir, "bin", "cudatest")
	return copyFile(built, h.CUDATest, 0o755)
}

func (h *Host) buildBinaries(cc *compiler) error {
	o := h.Options
	for _, b := range binSpecs {
		if !o.hasCap(b.cap) || o.omitted("bin:"+b.name) {
			continue
		}
		src := "tool.c"
		args := []string{fmt.Sprintf("-DDRIVER_VERSION=\"%s\"", o.DriverVersion), fmt.Sprintf("-DTOOL_NAME=\"%s\"", b.name)}
		if b.name == "nvidia-smi" {
			src = "nvidia-smi.c"
			args = append(args, fmt.Sprintf("-DCUDA_VERSION_STRING=\"%s\"", o.CUDAVersion),
				fmt.Sprintf("-DSIM_PROC_ROOT=\"%s\"", h.Config.ProcRoot), fmt.Sprintf("-DSIM_MEMORY_MIB=%d", DefaultMemoryMiB),
				fmt.Sprintf("-DSIM_MIG_MEMORY_MIB=%d", MIGMemoryMiB))
		}
		built, err := cc.build(src, args...)
		if err != nil {
			return err
		}
		rel := filepath.Join("/usr/bin", b.name)
		real := rel
		if h.debian() && (b.name == "nvidia-smi" || b.name == "nvidia-debugdump") {
			real = filepath.Join("/usr/lib/nvidia/current", b.name)
		}
		if err := copyFile(built, h.driverPath(real), 0o755); err != nil {
			return err
		}
		f := File{Capability: b.cap, Path: rel, HostPath: h.driverPath(real)}
		if real != rel {
			f.Alias = rel
			if err := h.alternative(b.name, rel, real); err != nil {
				return err
			}
		}
		h.Binaries = append(h.Binaries, f)
		if b.name == "nvidia-smi" && h.debian() {
			if err := h.copyLoader(built); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyLoader copies this machine's dynamic loader and libc, which the
// compiled nvidia-smi needs, into the Debian layout's library directory,
// with /lib64/ld-linux-x86-64.so.2 an absolute link to it as on Debian.
// Machines whose loader is not x86_64 glibc's get a note instead.
func (h *Host) copyLoader(smi string) error {
	f, err := elf.Open(smi)
	if err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	defer f.Close()
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return fmt.Errorf("simhost: %s: PT_INTERP: %w", smi, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	libc, err := exec.Command("gcc", "-print-file-name=libc.so.6").Output()
	if filepath.Base(interp) != "ld-linux-x86-64.so.2" || err != nil || !filepath.IsAbs(strings.TrimSpace(string(libc))) {
		h.Notes = append(h.Notes, fmt.Sprintf("no loader copied into the Debian layout (loader %q, libc %q)", interp, strings.TrimSpace(string(libc))))
		return nil
	}
	for src, rel := range map[string]string{interp: x8664LibDir + "/ld-linux-x86-64.so.2", strings.TrimSpace(string(libc)): x8664LibDir + "/libc.so.6"} {
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return fmt.Errorf("simhost: %w", err)
		}
		if err := copyFile(real, h.driverPath(rel), 0o755); err != nil {
			return err
		}
	}
	return h.symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/usr/lib64/ld-linux-x86-64.so.2")
}

func (h *Host) writeDriverFile(rel, content string, perm os.FileMode) error {
	p := h.driverPath(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	return nil
}

// buildXorgModules installs the X.Org driver modules: nvidia_drv.so and
// libglxserver_nvidia.so.<ver> with its unversioned link in
// /usr/lib/xorg/modules/{drivers,extensions}, as NVIDIA's installer does;
// in the Debian layout the real files are in /usr/lib/nvidia/current and
// the X.Org directories hold only the usual names, through
// /etc/alternatives. Recorded in ConfigFiles (display) as discovery reports
// them: where found, the unversioned name as the same file.
func (h *Host) buildXorgModules(cc *compiler) error {
	ver := h.Options.DriverVersion
	glx := "libglxserver_nvidia.so." + ver
	for _, m := range []struct{ dir, file, soname, name string }{
		{"/usr/lib/xorg/modules/drivers", "nvidia_drv.so", "nvidia_drv.so", "nvidia_drv.so"},
		{"/usr/lib/xorg/modules/extensions", glx, glx, "libglxserver_nvidia.so"},
	} {
		built, err := cc.build("generic.c", "-shared", "-fPIC", "-Wl,-soname,"+m.soname, "-DSIMGPU_LIBRARY=\""+m.file+"\"")
		if err != nil {
			return err
		}
		real := filepath.Join(m.dir, m.file)
		if h.debian() {
			real = filepath.Join("/usr/lib/nvidia/current", m.file)
		}
		if err := copyFile(built, h.driverPath(real), 0o644); err != nil {
			return err
		}
		f := File{Capability: inventory.Display, Path: real, HostPath: h.driverPath(real)}
		switch {
		case h.debian():
			f.Path = filepath.Join(m.dir, m.name)
			f.Alias = f.Path
			if err := h.alternative("nvidia--"+m.name, f.Path, real); err != nil {
				return err
			}
		case m.name != m.file:
			if err := h.symlink(m.file, filepath.Join(m.dir, m.name)); err != nil {
				return err
			}
		}
		h.ConfigFiles = append(h.ConfigFiles, f)
		if m.name != m.file && !h.debian() {
			link := f
			link.Path = filepath.Join(m.dir, m.name)
			h.ConfigFiles = append(h.ConfigFiles, link)
		}
	}
	return nil
}

func (h *Host) buildFiles(cc *compiler) error {
	o := h.Options
	if !o.omitted("firmware") {
		fwDir := "/lib/firmware/nvidia"
		if h.debian() {
			fwDir = "/usr/lib/firmware/nvidia" // merged /usr
		}
		for _, fw := range []string{"gsp_ga10x.bin", "gsp_tu10x.bin"} {
			rel := filepath.Join(fwDir, o.DriverVersion, fw)
			if err := h.writeDriverFile(rel, "simulated GSP firmware "+fw+" "+o.DriverVersion+"\n", 0o644); err != nil {
				return err
			}
			h.Firmware = append(h.Firmware, File{Path: rel, HostPath: h.driverPath(rel)})
		}
	}
	if !o.omitted("config-files") {
		for _, c := range configSpecs() {
			if !o.hasCap(c.cap) {
				continue
			}
			if h.debian() && c.path == "/usr/share/X11/xorg.conf.d/10-nvidia.conf" {
				// Debian's xserver-xorg-video-nvidia names the OutputClass file so.
				c.path = "/usr/share/X11/xorg.conf.d/nvidia-drm-outputclass.conf"
			}
			if err := h.writeDriverFile(c.path, c.content, 0o644); err != nil {
				return err
			}
			h.ConfigFiles = append(h.ConfigFiles, File{Capability: c.cap, Path: c.path, HostPath: h.driverPath(c.path)})
		}
	}
	if o.hasCap(inventory.Display) && !o.omitted("config-files") {
		if err := h.buildXorgModules(cc); err != nil {
			return err
		}
	}
	if !o.omitted("persistenced") {
		rel := "/run/nvidia-persistenced/socket"
		if err := makeSocket(h.driverPath(rel)); err != nil {
			return err
		}
		h.Sockets = append(h.Sockets, File{Capability: inventory.Utility, Path: rel, HostPath: h.driverPath(rel)})
	}
	return nil
}

// makeSocket leaves a unix socket file at path (no one listens on it, as
// on a host where the daemon has stopped without cleaning up).
func makeSocket(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	addr := path
	if len(addr) > 100 {
		// sun_path is 108 bytes: bind through a short /proc/self/fd path.
		d, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("simhost: %w", err)
		}
		defer d.Close()
		addr = fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(path))
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return fmt.Errorf("simhost: socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		return fmt.Errorf("simhost: socket %s: %w", path, err)
	}
	return nil
}

func (h *Host) addNode(name string, major, minor int64, mode os.FileMode) error {
	p := filepath.Join(h.Config.DevRoot, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	if h.Options.RealNodes {
		if err := unix.Mknod(p, unix.S_IFCHR|uint32(mode.Perm()), int(unix.Mkdev(uint32(major), uint32(minor)))); err != nil {
			return fmt.Errorf("simhost: mknod %s %d:%d: %w", p, major, minor, err)
		}
	} else if err := os.WriteFile(p, nil, mode.Perm()); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	// Neither mknod nor WriteFile escape the umask.
	if err := os.Chmod(p, mode.Perm()); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	h.Nodes = append(h.Nodes, Node{Path: p, Name: name, Major: major, Minor: minor, Mode: mode.Perm()})
	return nil
}

func (h *Host) buildNodes(*compiler) error {
	o := h.Options
	type nd struct {
		name         string
		major, minor int64
		mode         os.FileMode
	}
	var nodes []nd
	for _, g := range h.GPUs {
		if g.Node {
			nodes = append(nodes, nd{fmt.Sprintf("nvidia%d", g.Minor), NvidiaMajor, int64(g.Minor), 0o666})
		}
	}
	if !o.omitted("nvidiactl") {
		nodes = append(nodes, nd{"nvidiactl", NvidiaMajor, CtlMinor, 0o666})
	}
	if !o.omitted("modeset") {
		nodes = append(nodes, nd{"nvidia-modeset", NvidiaMajor, ModesetMinor, 0o666})
	}
	if !o.omitted("uvm") {
		nodes = append(nodes, nd{"nvidia-uvm", o.UVMMajor, 0, 0o666}, nd{"nvidia-uvm-tools", o.UVMMajor, 1, 0o666})
	}
	if !o.omitted("mig-caps") {
		nodes = append(nodes, nd{"nvidia-caps/nvidia-cap1", o.CapsMajor, MIGConfigMinor, 0o400},
			nd{"nvidia-caps/nvidia-cap2", o.CapsMajor, MIGMonitorMinor, 0o444})
		for _, g := range h.GPUs {
			for _, m := range g.MIG {
				nodes = append(nodes, nd{fmt.Sprintf("nvidia-caps/nvidia-cap%d", m.GICapMinor), o.CapsMajor, int64(m.GICapMinor), 0o444},
					nd{fmt.Sprintf("nvidia-caps/nvidia-cap%d", m.CICapMinor), o.CapsMajor, int64(m.CICapMinor), 0o444})
			}
		}
	}
	if !o.omitted("dri") {
		for _, g := range h.GPUs {
			nodes = append(nodes, nd{fmt.Sprintf("dri/card%d", g.CardMinor), DRIMajor, int64(g.CardMinor), 0o660},
				nd{fmt.Sprintf("dri/renderD%d", g.RenderMinor), DRIMajor, int64(g.RenderMinor), 0o666})
		}
	}
	for _, n := range nodes {
		if err := h.addNode(n.name, n.major, n.minor, n.mode); err != nil {
			return err
		}
	}
	if !o.omitted("dri") {
		// The kernel's view: Dir/sys/bus/pci/devices/<bus>/drm/<node>/
		// (read where host.root is Dir, see RootedConfig).
		for _, g := range h.GPUs {
			for _, n := range []string{fmt.Sprintf("card%d", g.CardMinor), fmt.Sprintf("renderD%d", g.RenderMinor), fmt.Sprintf("card%d-DP-1", g.CardMinor)} {
				if err := os.MkdirAll(filepath.Join(o.Dir, "sys/bus/pci/devices", g.PCIBusID, "drm", n), 0o755); err != nil {
					return fmt.Errorf("simhost: %w", err)
				}
			}
		}
	}
	if !o.omitted("dri") && !o.omitted("dri-by-path") {
		// udev's by-path links tie each DRI node to its PCI device.
		byPath := filepath.Join(h.Config.DevRoot, "dri/by-path")
		if err := os.MkdirAll(byPath, 0o755); err != nil {
			return fmt.Errorf("simhost: %w", err)
		}
		for _, g := range h.GPUs {
			for suffix, target := range map[string]string{"card": fmt.Sprintf("card%d", g.CardMinor), "render": fmt.Sprintf("renderD%d", g.RenderMinor)} {
				link := filepath.Join(byPath, fmt.Sprintf("pci-%s-%s", g.PCIBusID, suffix))
				if err := os.Symlink("../"+target, link); err != nil {
					return fmt.Errorf("simhost: %w", err)
				}
			}
		}
	}
	return nil
}

func (h *Host) writeProc(rel, content string) error {
	p := filepath.Join(h.Config.ProcRoot, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o444); err != nil {
		return fmt.Errorf("simhost: %w", err)
	}
	return nil
}

// capFile is the format of /proc/driver/nvidia/capabilities/.../access.
func capFile(minor int, mode os.FileMode) string {
	return fmt.Sprintf("DeviceFileMinor: %d\nDeviceFileMode: %d\nDeviceFileModify: 1\n", minor, mode.Perm())
}

func (h *Host) buildProc(*compiler) error {
	o := h.Options
	files := map[string]string{}
	if !o.omitted("version") {
		files["driver/nvidia/version"] = fmt.Sprintf("NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Thu Feb 22 01:44:30 UTC 2024\n"+
			"GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n", o.DriverVersion)
	}
	files["driver/nvidia/params"] = "ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 1\nDeviceFileUID: 0\nDeviceFileGID: 0\nDeviceFileMode: 438\n"
	for _, g := range h.GPUs {
		if g.Information {
			files["driver/nvidia/gpus/"+g.PCIBusID+"/information"] = fmt.Sprintf(
				"Model: \t\t %s\nIRQ:   \t\t %d\nGPU UUID: \t %s\nVideo BIOS: \t 96.00.74.00.01\nBus Type: \t PCIe\n"+
					"DMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t %s\nDevice Minor: \t %d\nGPU Excluded:\t No\n",
				g.Model, 100+g.Index, g.UUID, g.PCIBusID, g.Minor)
		}
	}
	if !o.omitted("mig-caps") {
		files["driver/nvidia/capabilities/mig/config"] = capFile(MIGConfigMinor, 0o400)
		files["driver/nvidia/capabilities/mig/monitor"] = capFile(MIGMonitorMinor, 0o444)
		minors := "config 1\nmonitor 2\n"
		for _, g := range h.GPUs {
			for _, m := range g.MIG {
				files[fmt.Sprintf("driver/nvidia/capabilities/gpu%d/mig/gi%d/access", g.Minor, m.GI)] = capFile(m.GICapMinor, 0o444)
				files[fmt.Sprintf("driver/nvidia/capabilities/gpu%d/mig/gi%d/ci%d/access", g.Minor, m.GI, m.CI)] = capFile(m.CICapMinor, 0o444)
			}
			for gi := range 15 {
				gm, _ := MIGCapMinors(g.Minor, gi, 0)
				minors += fmt.Sprintf("gpu%d/gi%d/access %d\n", g.Minor, gi, gm)
				for ci := range 8 {
					_, cm := MIGCapMinors(g.Minor, gi, ci)
					minors += fmt.Sprintf("gpu%d/gi%d/ci%d/access %d\n", g.Minor, gi, ci, cm)
				}
			}
		}
		files["driver/nvidia-caps/mig-minors"] = minors
	}
	if !o.omitted("proc-devices") {
		lines := []string{"Character devices:", "  1 mem", "  4 /dev/vc/0", "  4 tty", "  5 /dev/tty", "  5 /dev/console",
			" 10 misc", " 13 input", fmt.Sprintf("%3d nvidia-frontend", NvidiaMajor), fmt.Sprintf("%3d drm", DRIMajor)}
		if !o.omitted("mig-caps") {
			lines = append(lines, fmt.Sprintf("%3d nvidia-caps", o.CapsMajor))
		}
		if !o.omitted("uvm") {
			lines = append(lines, fmt.Sprintf("%3d nvidia-uvm", o.UVMMajor))
		}
		lines = append(lines, "", "Block devices:", "  7 loop", "  8 sd", "254 virtblk", "")
		files["devices"] = strings.Join(lines, "\n")
	}
	for rel, content := range files {
		if err := h.writeProc(rel, content); err != nil {
			return err
		}
	}
	return nil
}

// fakeStater answers for simulated nodes that are regular files.
type fakeStater map[string]inventory.NodeInfo

func (f fakeStater) StatNode(viewPath string) (inventory.NodeInfo, error) {
	if info, ok := f[filepath.Clean(viewPath)]; ok {
		return info, nil
	}
	return inventory.NodeInfo{}, fmt.Errorf("simhost: no device node %s: %w", viewPath, fs.ErrNotExist)
}

// realStater stats real device nodes.
type realStater struct{}

func (realStater) StatNode(viewPath string) (inventory.NodeInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(viewPath, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return inventory.NodeInfo{}, fmt.Errorf("simhost: stat %s: %w", viewPath, fs.ErrNotExist)
		}
		return inventory.NodeInfo{}, fmt.Errorf("simhost: stat %s: %w", viewPath, err)
	}
	major, minor := fsutil.DevNumbers(uint64(st.Rdev)) //nolint:unconvert // Rdev's type differs by arch
	return inventory.NodeInfo{
		IsChar: st.Mode&unix.S_IFMT == unix.S_IFCHR,
		Major:  major, Minor: minor,
		Perm: os.FileMode(st.Mode & 0o777), UID: st.Uid, GID: st.Gid,
	}, nil
}
