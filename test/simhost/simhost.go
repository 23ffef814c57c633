package simhost

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// Defaults.
const (
	DefaultGPUs          = 4
	DefaultDriverVersion = "550.54.14"
	DefaultCUDAVersion   = "12.4"
	DefaultUVMMajor      = 511
	DefaultCapsMajor     = 234
	DefaultModel         = "NVIDIA H100 80GB HBM3"
	// The default GPU's NVML facts (an H100 SXM5 80GB as NVML reports it).
	DefaultMemoryMiB         = 81559
	DefaultComputeCapability = "9.0"
	DefaultArchitecture      = "Hopper"
	DefaultBrand             = "nvidia"
	DefaultPCIDeviceID       = 0x233010de // device 0x2330, vendor 0x10de
	// MIGProfile is the profile of every simulated MIG device (one slice,
	// one GPU instance with one compute instance), MIGMemoryMiB its memory
	// and MIGGIProfileID the H100's id of NVML's 1-slice GPU instance
	// profile.
	MIGProfile      = "1g.10gb"
	MIGMemoryMiB    = 9984
	MIGGIProfileID  = 19
	NvidiaMajor     = 195 // nvidia-frontend: /dev/nvidiaN, nvidiactl, nvidia-modeset
	DRIMajor        = 226
	CtlMinor        = 255
	ModesetMinor    = 254
	MIGConfigMinor  = 1
	MIGMonitorMinor = 2
	x8664LibDir     = "/usr/lib/x86_64-linux-gnu"
	i386LibDir      = "/usr/lib/i386-linux-gnu"
)

// Driver layouts (Options.Layout).
const (
	// LayoutNVIDIA is what NVIDIA's .run installer and its own packages
	// do: every file straight in /usr/lib/x86_64-linux-gnu and /usr/bin.
	LayoutNVIDIA = "nvidia"
	// LayoutDebian is Debian's packaged driver (nvidia-driver from
	// non-free): libraries in /usr/lib/x86_64-linux-gnu/nvidia/current with
	// their SONAME links there, the usual names reached through absolute
	// links via /etc/alternatives
	// (/usr/lib/x86_64-linux-gnu/libcuda.so.1 ->
	// /etc/alternatives/nvidia--libcuda.so.1-x86_64-linux-gnu ->
	// /usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1), vdpau only
	// as vdpau/libvdpau_nvidia.so.1, nvidia-smi in /usr/lib/nvidia/current
	// (/usr/bin/nvidia-smi -> /etc/alternatives/nvidia-smi ->
	// /usr/lib/nvidia/current/nvidia-smi), merged /usr (/lib -> usr/lib)
	// with the loader at /lib64/ld-linux-x86-64.so.2 ->
	// /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 and this machine's loader
	// and libc copied in, as a host's own would be.
	LayoutDebian = "debian"
)

// Layouts lists the values Options.Layout takes ("" is LayoutNVIDIA).
func Layouts() []string { return []string{LayoutNVIDIA, LayoutDebian} }

// Options describe the simulated host.
type Options struct {
	// Dir is where the host is built (made absolute; created if missing).
	Dir string `json:"dir"`
	// GPUs is the number of GPUs: 0 means DefaultGPUs, negative means none.
	GPUs int `json:"gpus"`
	// DriverVersion defaults to DefaultDriverVersion.
	DriverVersion string `json:"driverVersion"`
	// CUDAVersion ("12.4") defaults to DefaultCUDAVersion.
	CUDAVersion string `json:"cudaVersion"`
	// MIG maps a GPU index to its number of MIG devices (one GPU instance
	// with one compute instance each).
	MIG map[int]int `json:"mig,omitempty"`
	// RealNodes makes real character devices with mknod (root only);
	// otherwise nodes are empty regular files and Host.Stater answers
	// their numbers.
	RealNodes bool `json:"realNodes"`
	// Capabilities limits the libraries, binaries and config files to
	// these capabilities (default: all).
	Capabilities []inventory.Capability `json:"capabilities,omitempty"`
	// Lib32 adds 32-bit copies of the compute libraries under
	// /usr/lib/i386-linux-gnu (compat32), when gcc -m32 can build them.
	Lib32 bool `json:"lib32"`
	// UVMMajor is the dynamic major of nvidia-uvm (default 511).
	UVMMajor int64 `json:"uvmMajor"`
	// CapsMajor is the dynamic major of nvidia-caps (default 234).
	CapsMajor int64 `json:"capsMajor"`
	// Omit leaves pieces out; see Omissions.
	Omit []string `json:"omit,omitempty"`
	// CacheDir caches compiled C artifacts across builds (default
	// $TMPDIR/gpu-nri-simhost-cache).
	CacheDir string `json:"cacheDir"`
	// Layout is how the driver's files are laid out: LayoutNVIDIA
	// (default) or LayoutDebian.
	Layout string `json:"layout,omitempty"`
}

// Omissions lists the pieces Options.Omit can name; "gpu:N-information",
// "gpu:N-node", "lib:NAME" (e.g. lib:libnvidia-ml) and "bin:NAME" take a
// GPU index or a library/binary base name.
func Omissions() []string {
	return []string{"ldcache", "soname-links", "uvm", "modeset", "nvidiactl", "firmware",
		"persistenced", "dri", "dri-by-path", "version", "proc-devices", "mig-caps", "config-files",
		"gpu:N-information", "gpu:N-node", "lib:NAME", "bin:NAME"}
}

// Node is a device node the host has.
type Node struct {
	// Path is the absolute path where it was created (under Dir/dev).
	Path string `json:"path"`
	// Name is the path relative to the dev root, e.g. "nvidia0".
	Name  string      `json:"name"`
	Major int64       `json:"major"`
	Minor int64       `json:"minor"`
	Mode  os.FileMode `json:"mode"`
}

// MIG is a simulated MIG device.
type MIG struct {
	GPU   int    `json:"gpu"`
	Index int    `json:"index"`
	GI    int    `json:"gi"`
	CI    int    `json:"ci"`
	UUID  string `json:"uuid"`
	// GICapMinor and CICapMinor are the nvidia-caps minors of its access
	// nodes (/dev/nvidia-caps/nvidia-cap<minor>).
	GICapMinor int `json:"giCapMinor"`
	CICapMinor int `json:"ciCapMinor"`
	// Profile ("1g.10gb"), Slices, MemoryMiB and GIProfileID (NVML's
	// per-device GPU instance profile id) are what NVML reports.
	Profile     string `json:"profile"`
	Slices      int    `json:"slices"`
	MemoryMiB   int    `json:"memoryMiB"`
	GIProfileID int    `json:"giProfileID"`
}

// GPU is a simulated GPU.
type GPU struct {
	Index    int    `json:"index"`
	Minor    int    `json:"minor"`
	UUID     string `json:"uuid"`
	PCIBusID string `json:"pciBusID"`
	Model    string `json:"model"`
	// Information is false when its /proc information file was omitted.
	Information bool `json:"information"`
	// Node is false when /dev/nvidiaN was omitted.
	Node bool `json:"node"`
	// CardMinor and RenderMinor are the DRI minors (card<N+1>, renderD<128+N>).
	CardMinor   int   `json:"cardMinor"`
	RenderMinor int   `json:"renderMinor"`
	MIG         []MIG `json:"mig,omitempty"`
	// NVML facts: memory, CUDA compute capability ("9.0"), architecture
	// ("Hopper"), brand (NVIDIA's requirement-check name, "nvidia") and the
	// PCI device id (device << 16 | vendor).
	MemoryMiB         int    `json:"memoryMiB"`
	ComputeCapability string `json:"computeCapability"`
	Architecture      string `json:"architecture"`
	Brand             string `json:"brand"`
	PCIDeviceID       uint32 `json:"pciDeviceID"`
}

// File is a driver file, described the way inventory.File is.
type File struct {
	Capability inventory.Capability `json:"capability"`
	// Path is the path relative to the driver root, e.g.
	// /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14 (the real file).
	Path string `json:"path"`
	// HostPath is the absolute path of the real file.
	HostPath string `json:"hostPath"`
	// SONAME of a library ("" otherwise).
	SONAME string `json:"soname,omitempty"`
	// Link is the SONAME symlink (relative to the driver root) when the
	// SONAME differs from the file name ("" otherwise), beside the file.
	Link string `json:"link,omitempty"`
	// Alias is, in LayoutDebian, the usual name (relative to the driver
	// root) that reaches the file only through absolute links via
	// /etc/alternatives, e.g. /usr/bin/nvidia-smi or
	// /usr/lib/x86_64-linux-gnu/libcuda.so.1 ("" otherwise).
	Alias string `json:"alias,omitempty"`
	Lib32 bool   `json:"lib32,omitempty"`
}

// Host is a built simulated host: where it is and what it holds. The facts
// are computed from Options, so tests can assert discovery against them.
type Host struct {
	Options Options `json:"options"`
	// Config is the gpu-nri host section that reads this host.
	Config config.Host `json:"config"`
	// DriverVersion, CUDAVersion ("12.4") and CUDAAPIVersion (12040).
	DriverVersion  string `json:"driverVersion"`
	CUDAVersion    string `json:"cudaVersion"`
	CUDAAPIVersion int    `json:"cudaAPIVersion"`
	GPUs           []GPU  `json:"gpus"`
	// Nodes is every device node created, GPU nodes included.
	Nodes []Node `json:"nodes"`
	// Libraries, Binaries, ConfigFiles, Firmware, Sockets as created.
	Libraries   []File `json:"libraries"`
	Binaries    []File `json:"binaries"`
	ConfigFiles []File `json:"configFiles"`
	Firmware    []File `json:"firmware"`
	Sockets     []File `json:"sockets"`
	// LDCache is the absolute path of the driver root's ld.so.cache ("" if omitted).
	LDCache string `json:"ldCache"`
	// CUDATest is the absolute path of the in-container test program
	// (test/csrc/cudatest.c), built beside the host under Dir/bin for images.
	CUDATest string `json:"cudaTest"`
	// Notes say what was skipped and why (e.g. no 32-bit toolchain).
	Notes []string `json:"notes,omitempty"`

	stater inventory.NodeStater
}

// Stater returns the NodeStater for this host: real stat(2) for real
// nodes, otherwise a fixed table of the simulated nodes.
func (h *Host) Stater() inventory.NodeStater { return h.stater }

// RootedConfig is the host section that reads this host the way the
// DaemonSet reads a node: host.root is Options.Dir (where the plugin sees
// the host's "/"), and the driver, dev and proc roots are host paths under
// it (/driver, /dev, /proc). Inventory host paths are then relative to
// that root, and an absolute symlink inside the driver root must be
// resolved there, not from the plugin's own "/".
func (h *Host) RootedConfig() config.Host {
	c := h.Config
	c.Root, c.DriverRoot, c.DevRoot, c.ProcRoot = h.Options.Dir, "/driver", "/dev", "/proc"
	return c
}

// LibrariesFor returns the libraries of one capability.
func (h *Host) LibrariesFor(c inventory.Capability) []File {
	var out []File
	for _, f := range h.Libraries {
		if f.Capability == c {
			out = append(out, f)
		}
	}
	return out
}

// Node returns the node with the given name relative to the dev root.
func (h *Host) Node(name string) (Node, bool) {
	for _, n := range h.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// libSpec is a driver library: base name, SONAME (with "%v" for the driver
// version) and the C source.
type libSpec struct {
	cap    inventory.Capability
	base   string
	soname string
	src    string
	lib32  bool // shipped in 32-bit too
}

var libSpecs = []libSpec{
	{inventory.Compute, "libcuda", "libcuda.so.1", "libcuda.c", true},
	{inventory.Compute, "libcudadebugger", "libcudadebugger.so.1", "generic.c", false},
	{inventory.Compute, "libnvidia-ptxjitcompiler", "libnvidia-ptxjitcompiler.so.1", "generic.c", true},
	{inventory.Compute, "libnvidia-nvvm", "libnvidia-nvvm.so.4", "generic.c", false},
	{inventory.Compute, "libnvidia-nvvm70", "libnvidia-nvvm70.so.4", "generic.c", false}, // its own version (fileVersion)
	{inventory.Compute, "libnvidia-opencl", "libnvidia-opencl.so.1", "generic.c", true},
	{inventory.Compute, "libnvidia-gpucomp", "libnvidia-gpucomp.so.%v", "generic.c", true},
	{inventory.Compute, "libnvidia-allocator", "libnvidia-allocator.so.1", "generic.c", true},
	{inventory.Compute, "libnvidia-pkcs11-openssl3", "libnvidia-pkcs11-openssl3.so.%v", "generic.c", false},
	{inventory.Utility, "libnvidia-ml", "libnvidia-ml.so.1", "libnvidia-ml.c", false},
	{inventory.Utility, "libnvidia-cfg", "libnvidia-cfg.so.1", "generic.c", false},
	{inventory.Video, "libnvcuvid", "libnvcuvid.so.1", "generic.c", false},
	{inventory.Video, "libnvidia-encode", "libnvidia-encode.so.1", "generic.c", false},
	{inventory.Video, "libnvidia-opticalflow", "libnvidia-opticalflow.so.1", "generic.c", false},
	{inventory.Video, "libvdpau_nvidia", "libvdpau_nvidia.so.1", "generic.c", false},
	{inventory.Graphics, "libGLX_nvidia", "libGLX_nvidia.so.0", "generic.c", false},
	{inventory.Graphics, "libEGL_nvidia", "libEGL_nvidia.so.0", "generic.c", false},
	{inventory.Graphics, "libGLESv2_nvidia", "libGLESv2_nvidia.so.2", "generic.c", false},
	{inventory.Graphics, "libGLESv1_CM_nvidia", "libGLESv1_CM_nvidia.so.1", "generic.c", false},
	{inventory.Graphics, "libnvidia-glcore", "libnvidia-glcore.so.%v", "generic.c", false},
	{inventory.Graphics, "libnvidia-eglcore", "libnvidia-eglcore.so.%v", "generic.c", false},
	{inventory.Graphics, "libnvidia-tls", "libnvidia-tls.so.%v", "generic.c", false},
	{inventory.Graphics, "libnvidia-glsi", "libnvidia-glsi.so.%v", "generic.c", false},
	{inventory.Graphics, "libnvidia-glvkspirv", "libnvidia-glvkspirv.so.%v", "generic.c", false},
	{inventory.Graphics, "libnvidia-rtcore", "libnvidia-rtcore.so.%v", "generic.c", false},
	{inventory.Graphics, "libnvoptix", "libnvoptix.so.1", "generic.c", false},
	{inventory.Graphics, "libnvidia-fbc", "libnvidia-fbc.so.1", "generic.c", false},
	{inventory.Graphics, "libnvidia-vulkan-producer", "libnvidia-vulkan-producer.so.%v", "generic.c", false},
	{inventory.Graphics, "libnvidia-vksc-core", "libnvidia-vksc-core.so.1", "generic.c", false},
	{inventory.Graphics, "libnvidia-wayland-client", "libnvidia-wayland-client.so.%v", "generic.c", false},
	{inventory.NGX, "libnvidia-ngx", "libnvidia-ngx.so.1", "generic.c", false},
}

// fileVersion is the version suffix of the library's file: the driver's,
// except for the libraries NVIDIA versions on their own.
func (l libSpec) fileVersion(driver string) string {
	if l.base == "libnvidia-nvvm70" {
		return "4"
	}
	return driver
}

type binSpec struct {
	cap  inventory.Capability
	name string
}

var binSpecs = []binSpec{
	{inventory.Utility, "nvidia-smi"},
	{inventory.Utility, "nvidia-debugdump"},
	{inventory.Utility, "nvidia-persistenced"},
	{inventory.Compute, "nvidia-cuda-mps-control"},
	{inventory.Compute, "nvidia-cuda-mps-server"},
}

type configSpec struct {
	cap     inventory.Capability
	path    string
	content string
}

func configSpecs() []configSpec {
	return []configSpec{
		{inventory.Graphics, "/usr/share/glvnd/egl_vendor.d/10_nvidia.json",
			"{\n    \"file_format_version\" : \"1.0.0\",\n    \"ICD\" : {\n        \"library_path\" : \"libEGL_nvidia.so.0\"\n    }\n}\n"},
		{inventory.Graphics, "/usr/share/vulkan/icd.d/nvidia_icd.json",
			"{\n    \"file_format_version\" : \"1.0.1\",\n    \"ICD\": {\n        \"library_path\": \"libGLX_nvidia.so.0\",\n        \"api_version\" : \"1.3.277\"\n    }\n}\n"},
		{inventory.Graphics, "/usr/share/vulkan/implicit_layer.d/nvidia_layers.json",
			"{\n    \"file_format_version\" : \"1.0.1\",\n    \"layer\": {\n        \"name\": \"VK_LAYER_NV_optimus\",\n        \"type\": \"INSTANCE\",\n        \"library_path\": \"libGLX_nvidia.so.0\"\n    }\n}\n"},
		{inventory.Graphics, "/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json",
			"{\n    \"file_format_version\" : \"1.0.0\",\n    \"ICD\" : {\n        \"library_path\" : \"libnvidia-egl-gbm.so.1\"\n    }\n}\n"},
		{inventory.Display, "/usr/share/X11/xorg.conf.d/10-nvidia.conf",
			"Section \"OutputClass\"\n    Identifier \"nvidia\"\n    MatchDriver \"nvidia-drm\"\n    Driver \"nvidia\"\nEndSection\n"},
		{inventory.Compute, "/etc/OpenCL/vendors/nvidia.icd", "libnvidia-opencl.so.1\n"},
	}
}

// resolved fills defaults and checks the options.
func (o Options) resolved() (Options, error) {
	if o.Dir == "" {
		return o, fmt.Errorf("simhost: Options.Dir is required")
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("simhost: %w", err)
	}
	o.Dir = abs
	switch {
	case o.GPUs == 0:
		o.GPUs = DefaultGPUs
	case o.GPUs < 0:
		o.GPUs = 0
	}
	if o.GPUs > 64 {
		return o, fmt.Errorf("simhost: at most 64 GPUs, got %d", o.GPUs)
	}
	if o.DriverVersion == "" {
		o.DriverVersion = DefaultDriverVersion
	}
	if strings.ContainsAny(o.DriverVersion, "/\"'\\ ") {
		return o, fmt.Errorf("simhost: bad driver version %q", o.DriverVersion)
	}
	if o.CUDAVersion == "" {
		o.CUDAVersion = DefaultCUDAVersion
	}
	if _, err := cudaAPIVersion(o.CUDAVersion); err != nil {
		return o, err
	}
	if o.UVMMajor == 0 {
		o.UVMMajor = DefaultUVMMajor
	}
	if o.CapsMajor == 0 {
		o.CapsMajor = DefaultCapsMajor
	}
	if len(o.Capabilities) == 0 {
		for _, c := range config.AllCapabilities() {
			o.Capabilities = append(o.Capabilities, inventory.Capability(c))
		}
	}
	for g, n := range o.MIG {
		if g < 0 || g >= o.GPUs {
			return o, fmt.Errorf("simhost: MIG on GPU %d, but the host has %d GPUs", g, o.GPUs)
		}
		if n < 0 || n > 7 {
			return o, fmt.Errorf("simhost: GPU %d: %d MIG devices (0..7 allowed)", g, n)
		}
	}
	for _, om := range o.Omit {
		if err := checkOmission(om, o.GPUs); err != nil {
			return o, err
		}
	}
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(os.TempDir(), "gpu-nri-simhost-cache")
	}
	if o.Layout == "" {
		o.Layout = LayoutNVIDIA
	}
	if !slices.Contains(Layouts(), o.Layout) {
		return o, fmt.Errorf("simhost: unknown layout %q (known: %s)", o.Layout, strings.Join(Layouts(), ", "))
	}
	return o, nil
}

func checkOmission(om string, gpus int) error {
	if slices.Contains(Omissions(), om) && !strings.Contains(om, ":") {
		return nil
	}
	if rest, ok := strings.CutPrefix(om, "gpu:"); ok {
		idx, what, _ := strings.Cut(rest, "-")
		n, err := strconv.Atoi(idx)
		if err == nil && n >= 0 && n < gpus && (what == "information" || what == "node") {
			return nil
		}
	}
	if name, ok := strings.CutPrefix(om, "lib:"); ok {
		for _, l := range libSpecs {
			if l.base == name {
				return nil
			}
		}
	}
	if name, ok := strings.CutPrefix(om, "bin:"); ok {
		for _, b := range binSpecs {
			if b.name == name {
				return nil
			}
		}
	}
	return fmt.Errorf("simhost: unknown omission %q (known: %s)", om, strings.Join(Omissions(), ", "))
}

func (o Options) omitted(piece string) bool { return slices.Contains(o.Omit, piece) }

func (o Options) hasCap(c inventory.Capability) bool { return slices.Contains(o.Capabilities, c) }

// cudaAPIVersion turns "12.4" into 12040.
func cudaAPIVersion(v string) (int, error) {
	maj, min, ok := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 1 || b < 0 || b > 99 {
		return 0, fmt.Errorf("simhost: CUDA version %q is not MAJOR.MINOR", v)
	}
	return a*1000 + b*10, nil
}

// GPUUUID is the deterministic UUID of GPU i.
func GPUUUID(i int) string {
	return fmt.Sprintf("GPU-%08x-1d2c-4c3e-9b1a-%012x", 0x5a1e0000+i, 0xc0ffee000000+i)
}

// MIGUUID is the deterministic UUID of the MIG device of GPU g (index)
// with GPU instance gi and compute instance ci, as the simulated nvidia-smi
// prints it (test/csrc/nvidia-smi.c mig_uuid computes the same).
func MIGUUID(g, gi, ci int) string {
	v := g<<8 + gi<<3 + ci
	return fmt.Sprintf("MIG-%08x-6d1f-5f2e-8c3b-%012x", 0x3c1d0000+v, 0xfeed00000000+v)
}

// PCIBusID is the deterministic PCI bus id of GPU i (ascending with i).
func PCIBusID(i int) string {
	return fmt.Sprintf("%04x:%02x:00.0", i/15, 0x10*(i%15+1))
}

// MIGCapMinors returns the nvidia-caps minors of GPU g's GPU instance gi
// and its compute instance ci, as the driver numbers them
// (/proc/driver/nvidia-caps/mig-minors: 3 + 135*g + 9*gi, +1+ci).
func MIGCapMinors(g, gi, ci int) (giMinor, ciMinor int) {
	giMinor = 3 + 135*g + 9*gi
	return giMinor, giMinor + 1 + ci
}
