package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/internal/fsutil"
)

// Fixed majors and minors of the NVIDIA character devices.
const (
	nvidiaMajor   = 195
	ctlMinor      = 255
	modesetMinor  = 254
	uvmMinor      = 0
	uvmToolsMinor = 1
	anyNumber     = -1
)

// statStater is the default NodeStater: stat(2).
type statStater struct{}

var _ NodeStater = statStater{}

// StatNode stats the file at viewPath (following symlinks).
func (statStater) StatNode(viewPath string) (NodeInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(viewPath, &st); err != nil {
		return NodeInfo{}, &fs.PathError{Op: "stat", Path: viewPath, Err: err}
	}
	major, minor := fsutil.DevNumbers(uint64(st.Rdev)) //nolint:unconvert // Rdev's type differs by arch
	return NodeInfo{
		IsChar:  st.Mode&unix.S_IFMT == unix.S_IFCHR,
		IsBlock: st.Mode&unix.S_IFMT == unix.S_IFBLK,
		Major:   major,
		Minor:   minor,
		Perm:    os.FileMode(st.Mode & 0o777),
		UID:     st.Uid,
		GID:     st.Gid,
	}, nil
}

// node reads the device node at the host path hostPath (which must be a
// character device with the given numbers, anyNumber for any) and names it
// containerPath in the container.
func (d *discovery) node(hostPath, containerPath string, major, minor int64) (DeviceNode, error) {
	info, err := d.o.stater.StatNode(d.view(hostPath))
	if err != nil {
		return DeviceNode{}, err
	}
	if !info.IsChar {
		return DeviceNode{}, fmt.Errorf("%s is not a character device", hostPath)
	}
	if major != anyNumber && info.Major != major {
		return DeviceNode{}, fmt.Errorf("%s has major %d, want %d", hostPath, info.Major, major)
	}
	if minor != anyNumber && info.Minor != minor {
		return DeviceNode{}, fmt.Errorf("%s has minor %d, want %d", hostPath, info.Minor, minor)
	}
	return DeviceNode{Path: containerPath, HostPath: hostPath, Type: "c",
		Major: info.Major, Minor: info.Minor, FileMode: info.Perm, UID: info.UID, GID: info.GID}, nil
}

// devNode reads <dev>/<rel>, named /dev/<rel> in the container.
func (d *discovery) devNode(rel string, major, minor int64) (DeviceNode, error) {
	return d.node(d.devPath(rel), filepath.Join("/dev", rel), major, minor)
}

// optionalNode is devNode returning nil (and a warning unless the node does
// not exist and quiet is set) when the node is unusable.
func (d *discovery) optionalNode(rel string, major, minor int64, what string) *DeviceNode {
	n, err := d.devNode(rel, major, minor)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			d.warnf("%s (%s) not found", d.devPath(rel), what)
		} else {
			d.warnf("%s (%s) ignored: %v", d.devPath(rel), what, err)
		}
		return nil
	}
	return &n
}

// frontendMajor is the major of /dev/nvidiaN and nvidiactl.
func (d *discovery) frontendMajor() int64 {
	for _, name := range []string{"nvidia-frontend", "nvidia"} {
		if m, ok := d.majors[name]; ok {
			return m
		}
	}
	return nvidiaMajor
}

func (d *discovery) controlNodes() {
	major := d.frontendMajor()
	d.inv.Ctl = d.optionalNode("nvidiactl", major, ctlMinor, "control device")
	d.inv.Modeset = d.optionalNode("nvidia-modeset", major, modesetMinor, "display capability")
	uvm, ok := d.majors["nvidia-uvm"]
	if !ok {
		d.warnf("no nvidia-uvm in %s: nvidia-uvm module not loaded, no %s",
			d.procPath("devices"), d.devPath("nvidia-uvm"))
		return
	}
	d.inv.UVM = d.optionalNode("nvidia-uvm", uvm, uvmMinor, "compute capability")
	d.inv.UVMTools = d.optionalNode("nvidia-uvm-tools", uvm, uvmToolsMinor, "compute capability")
}

func (d *discovery) gpuNodes() {
	major := d.frontendMajor()
	for i := range d.inv.GPUs {
		g := &d.inv.GPUs[i]
		rel := "nvidia" + strconv.Itoa(g.Minor)
		n, err := d.devNode(rel, major, int64(g.Minor))
		if err != nil {
			d.warnf("GPU %d (%s) is unusable: %v", g.Index, g.PCIBusID, err)
			continue
		}
		g.Node = n
	}
}

// dri finds each GPU's card and render nodes through
// <dev>/dri/by-path/pci-<bus>-{card,render} (udev's links), or, on a host
// without udev's links, through /sys/bus/pci/devices/<bus>/drm (under
// host.root).
func (d *discovery) dri() {
	if len(d.inv.GPUs) == 0 {
		return
	}
	byPath := d.devPath("dri", "by-path")
	if _, err := os.Stat(d.view(byPath)); err != nil {
		if !d.sysDRI() {
			d.warnf("no DRI nodes: %s not found (no udev) and no GPU has DRI nodes in /sys/bus/pci/devices/<bus>/drm (nvidia-drm not loaded)", byPath)
		}
		return
	}
	for i := range d.inv.GPUs {
		g := &d.inv.GPUs[i]
		for _, kind := range []string{"card", "render"} {
			link := filepath.Join(byPath, "pci-"+g.PCIBusID+"-"+kind)
			target, err := os.Readlink(d.view(link))
			if err != nil {
				d.warnf("GPU %d (%s): no DRI %s node: %v", g.Index, g.PCIBusID, kind, err)
				continue
			}
			// udev's links are "../cardN"; anything else is not trusted.
			name := filepath.Base(target)
			if filepath.Clean(filepath.Join("dri", "by-path", target)) != filepath.Join("dri", name) ||
				!strings.HasPrefix(name, kind) {
				d.warnf("GPU %d (%s): %s points to %q, not a DRI %s node in %s; ignored",
					g.Index, g.PCIBusID, link, target, kind, d.devPath("dri"))
				continue
			}
			n, err := d.devNode(filepath.Join("dri", name), anyNumber, anyNumber)
			if err != nil {
				d.warnf("GPU %d (%s): DRI %s node ignored: %v", g.Index, g.PCIBusID, kind, err)
				continue
			}
			g.DRI = append(g.DRI, n)
		}
	}
}

// sysDRI finds each GPU's DRI nodes through the kernel's
// /sys/bus/pci/devices/<bus id>/drm/{cardN,renderDN}, the nodes being
// <dev>/dri/<name>. It reports whether any GPU has one.
func (d *discovery) sysDRI() bool {
	found := false
	for i := range d.inv.GPUs {
		g := &d.inv.GPUs[i]
		dir := filepath.Join("/sys/bus/pci/devices", g.PCIBusID, "drm")
		names, err := readDirNames(d.view(dir))
		if err != nil {
			continue
		}
		slices.Sort(names)
		for _, name := range names {
			num, isCard := strings.CutPrefix(name, "card")
			if !isCard {
				num, _ = strings.CutPrefix(name, "renderD")
			}
			if num == name || num == "" || strings.Trim(num, "0123456789") != "" {
				continue // not a node (e.g. card0-DP-1 connectors)
			}
			n, err := d.devNode(filepath.Join("dri", name), anyNumber, anyNumber)
			if err != nil {
				d.warnf("GPU %d (%s): DRI node %s (from %s) ignored: %v", g.Index, g.PCIBusID, name, dir, err)
				continue
			}
			g.DRI = append(g.DRI, n)
			found = true
		}
	}
	return found
}

// capAccess is a parsed capability access file.
type capAccess struct {
	minor int64
	mode  os.FileMode
}

// readCapAccess parses "DeviceFileMinor: N" / "DeviceFileMode: M" (decimal).
func (d *discovery) readCapAccess(hostPath string) (capAccess, error) {
	data, err := os.ReadFile(d.view(hostPath))
	if err != nil {
		return capAccess{}, err
	}
	c := capAccess{minor: -1, mode: 0o444}
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, ok := parseUint(strings.TrimSpace(v))
		switch strings.TrimSpace(k) {
		case "DeviceFileMinor":
			if !ok || n > 1<<20 {
				return capAccess{}, fmt.Errorf("%s: invalid DeviceFileMinor %q", hostPath, strings.TrimSpace(v))
			}
			c.minor = int64(n)
		case "DeviceFileMode":
			if ok && n <= 0o777 {
				c.mode = os.FileMode(n)
			}
		}
	}
	if c.minor < 0 {
		return capAccess{}, fmt.Errorf("%s: no DeviceFileMinor", hostPath)
	}
	return c, nil
}

// capNode returns /dev/nvidia-caps/nvidia-cap<minor> for the access file at
// hostPath. The host node is read when it exists; nvidia-modprobe creates
// these nodes on demand, so when it does not the node is described from
// procfs (major of "nvidia-caps", mode of the access file, root-owned).
func (d *discovery) capNode(accessHostPath string) (DeviceNode, error) {
	c, err := d.readCapAccess(accessHostPath)
	if err != nil {
		return DeviceNode{}, err
	}
	major, ok := d.majors["nvidia-caps"]
	if !ok {
		return DeviceNode{}, fmt.Errorf("no nvidia-caps major in %s", d.procPath("devices"))
	}
	rel := filepath.Join("nvidia-caps", "nvidia-cap"+strconv.FormatInt(c.minor, 10))
	n, err := d.devNode(rel, major, c.minor)
	if errors.Is(err, fs.ErrNotExist) {
		return DeviceNode{Path: filepath.Join("/dev", rel), HostPath: d.devPath(rel), Type: "c",
			Major: major, Minor: c.minor, FileMode: c.mode}, nil
	}
	return n, err
}

// mig reads the MIG capabilities under <proc>/driver/nvidia/capabilities.
func (d *discovery) mig() {
	capsDir := d.procPath("driver", "nvidia", "capabilities")
	if _, err := os.Stat(d.view(capsDir)); err != nil {
		return // driver without capability support: no MIG
	}
	for _, c := range []struct {
		name string
		dst  **DeviceNode
	}{{"config", &d.inv.MIGConfig}, {"monitor", &d.inv.MIGMonitor}} {
		p := filepath.Join(capsDir, "mig", c.name)
		if _, err := os.Stat(d.view(p)); err != nil {
			continue
		}
		n, err := d.capNode(p)
		if err != nil {
			d.warnf("MIG %s capability ignored: %v", c.name, err)
			continue
		}
		*c.dst = &n
	}
	for i := range d.inv.GPUs {
		g := &d.inv.GPUs[i]
		migDir := filepath.Join(capsDir, "gpu"+strconv.Itoa(g.Minor), "mig")
		gis, err := numberedEntries(d.view(migDir), "gi")
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			d.warnf("GPU %d: MIG devices unknown: %v", g.Index, err)
			continue
		}
		for _, gi := range gis {
			giDir := filepath.Join(migDir, "gi"+strconv.Itoa(gi))
			cis, err := numberedEntries(d.view(giDir), "ci")
			if err != nil {
				d.warnf("GPU %d: MIG GPU instance %d ignored: %v", g.Index, gi, err)
				continue
			}
			if len(cis) == 0 {
				continue // a GPU instance without compute instances is no device
			}
			giNode, err := d.capNode(filepath.Join(giDir, "access"))
			if err != nil {
				d.warnf("GPU %d: MIG GPU instance %d ignored: %v", g.Index, gi, err)
				continue
			}
			for _, ci := range cis {
				ciNode, err := d.capNode(filepath.Join(giDir, "ci"+strconv.Itoa(ci), "access"))
				if err != nil {
					d.warnf("GPU %d: MIG device gi%d/ci%d ignored: %v", g.Index, gi, ci, err)
					continue
				}
				g.MIG = append(g.MIG, MIGDevice{GPU: g.Index, Index: len(g.MIG), GI: gi, CI: ci,
					Caps: []DeviceNode{giNode, ciNode}})
			}
		}
	}
}

// numberedEntries returns N of every entry "<prefix>N" in dir, ascending.
func numberedEntries(dir, prefix string) ([]int, error) {
	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	var ns []int
	for _, name := range names {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			if n, ok := parseUint(rest); ok && n < 1<<20 {
				ns = append(ns, int(n))
			}
		}
	}
	slices.Sort(ns)
	return ns, nil
}

// imex reads <dev>/nvidia-caps-imex-channels/channelN.
func (d *discovery) imex() {
	const dir = "nvidia-caps-imex-channels"
	chans, err := numberedEntries(d.view(d.devPath(dir)), "channel")
	if err != nil {
		return // no IMEX channels on this host
	}
	major, ok := d.majors[dir]
	if !ok {
		major = anyNumber
	}
	for _, ch := range chans {
		rel := filepath.Join(dir, "channel"+strconv.Itoa(ch))
		n, err := d.devNode(rel, major, int64(ch))
		if err != nil {
			d.warnf("IMEX channel %d ignored: %v", ch, err)
			continue
		}
		d.inv.IMEXChannels[ch] = n
	}
}

// extra reads the optional device groups gds, mofed, nvswitch and gdrcopy.
func (d *discovery) extra() {
	add := func(group string, rels []string) {
		slices.SortFunc(rels, naturalCompare)
		for _, rel := range rels {
			n, err := d.devNode(rel, anyNumber, anyNumber)
			if err != nil {
				d.warnf("%s device ignored: %v", group, err)
				continue
			}
			d.inv.Extra[group] = append(d.inv.Extra[group], n)
		}
	}
	var gds, nvswitch, gdr []string
	for _, name := range d.devNames {
		switch {
		case strings.HasPrefix(name, "nvidia-fs"):
			gds = append(gds, name)
		case name == "nvidia-nvswitchctl" || strings.HasPrefix(name, "nvidia-nvswitch"):
			nvswitch = append(nvswitch, name)
		case name == "gdrdrv":
			gdr = append(gdr, name)
		}
	}
	var mofed []string
	if names, err := readDirNames(d.view(d.devPath("infiniband"))); err == nil {
		for _, name := range names {
			if strings.HasPrefix(name, "uverbs") || name == "rdma_cm" {
				mofed = append(mofed, filepath.Join("infiniband", name))
			}
		}
	}
	add("gds", gds)
	add("mofed", mofed)
	add("nvswitch", nvswitch)
	add("gdrcopy", gdr)
}

// naturalCompare orders names by their non-numeric prefix, then by their
// trailing number: nvidia-fs2 before nvidia-fs10.
func naturalCompare(a, b string) int {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	return cmp.Or(strings.Compare(pa, pb), cmp.Compare(na, nb), strings.Compare(a, b))
}

func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, ok := parseUint(s[i:])
	if !ok || n > 1<<30 {
		return s, -1
	}
	return s[:i], int(n)
}
