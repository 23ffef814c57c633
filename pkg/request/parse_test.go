package request

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

const (
	uuid0 = "GPU-4b5e4c6a-1d2f-4a3b-9c8d-0e1f2a3b4c5d"
	uuid1 = "GPU-8c7b6a59-4e3d-4c2b-8a19-f0e1d2c3b4a5"
	mig0  = "MIG-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
)

func testOpts() Options { return OptionsFromConfig(&config.Default().Injection) }

func newInput(env ...string) *Input {
	return &Input{Namespace: "ns", Pod: "pod", Container: "main", Env: env}
}

func devs(d ...Device) []Device { return d }

func idx(raw string, gpu int) Device { return Device{Kind: KindIndex, Raw: raw, GPU: gpu} }

func TestSourcesOrderMatchesConfig(t *testing.T) {
	require.Equal(t, config.Sources(), sourceNames[:])
}

func TestParseNothing(t *testing.T) {
	for name, in := range map[string]*Input{
		"nil input":       nil,
		"empty":           {},
		"unset":           newInput("PATH=/usr/bin", "HOME=/root"),
		"void":            newInput("NVIDIA_VISIBLE_DEVICES=void"),
		"empty value":     newInput("NVIDIA_VISIBLE_DEVICES="),
		"blank value":     newInput("NVIDIA_VISIBLE_DEVICES=  "),
		"last wins void":  newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_VISIBLE_DEVICES=void"),
		"extras alone":    newInput("NVIDIA_DRIVER_CAPABILITIES=bogus", "NVIDIA_GDS=maybe", "NVIDIA_IMEX_CHANNELS=x"),
		"legacy, require": newInput("CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.4"),
		"legacy, set env": newInput("CUDA_VERSION=12.4.1", "NVIDIA_VISIBLE_DEVICES=void"),
		"annotation void": {Namespace: "ns", Pod: "pod", Container: "main",
			PodAnnotations: map[string]string{"gpus.gpu-nri.io/pod": "void"}},
		"other container": {Namespace: "ns", Pod: "pod", Container: "main",
			PodAnnotations: map[string]string{"gpus.gpu-nri.io/container.sidecar": "0"}},
		"other domain": {Namespace: "ns", Pod: "pod", Container: "main",
			PodAnnotations: map[string]string{"gpus.gpu-nri.io.example.com/typo": "0"}},
		"mount root only": {Mounts: []Mount{{Source: "/dev/null", Destination: VolumeMountsRoot + "/"}}},
		"unrelated mount": {Mounts: []Mount{{Source: "/x", Destination: "/var/run/nvidia-container-devicesX/0"}}},
		"no env equals":   newInput("NVIDIA_VISIBLE_DEVICES"),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := Parse(in, testOpts())
			require.NoError(t, err)
			require.Nil(t, r)
		})
	}
}

func TestParseEnvDevices(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		want  SourceRequest
	}{
		{"all", "all", SourceRequest{All: true}},
		{"all spaces", " all ", SourceRequest{All: true}},
		{"none", "none", SourceRequest{None: true}},
		{"index", "0", SourceRequest{Devices: devs(idx("0", 0))}},
		{"indexes", "0,1, 3", SourceRequest{Devices: devs(idx("0", 0), idx("1", 1), idx("3", 3))}},
		{"leading zero", "07", SourceRequest{Devices: devs(idx("07", 7))}},
		{"max index", "255", SourceRequest{Devices: devs(idx("255", 255))}},
		{"uuid", uuid0, SourceRequest{Devices: devs(Device{Kind: KindUUID, Raw: uuid0, ID: uuid0})}},
		{"uuid case", "gpu-4B5E4C6A-1D2F-4A3B-9C8D-0E1F2A3B4C5D",
			SourceRequest{Devices: devs(Device{Kind: KindUUID, Raw: "gpu-4B5E4C6A-1D2F-4A3B-9C8D-0E1F2A3B4C5D", ID: uuid0})}},
		{"pci", "0000:3b:00.0", SourceRequest{Devices: devs(Device{Kind: KindPCI, Raw: "0000:3b:00.0", ID: "0000:3b:00.0"})}},
		{"pci upper 8-digit domain", "00000000:3B:00.0", SourceRequest{Devices: devs(Device{Kind: KindPCI, Raw: "00000000:3B:00.0", ID: "0000:3b:00.0"})}},
		{"pci short", "3b:00.0", SourceRequest{Devices: devs(Device{Kind: KindPCI, Raw: "3b:00.0", ID: "0000:3b:00.0"})}},
		{"pci big domain", "10000:01:1f.7", SourceRequest{Devices: devs(Device{Kind: KindPCI, Raw: "10000:01:1f.7", ID: "10000:01:1f.7"})}},
		{"mig uuid", mig0, SourceRequest{Devices: devs(Device{Kind: KindMIGUUID, Raw: mig0, ID: mig0})}},
		{"mig uuid case", strings.ToUpper(mig0), SourceRequest{Devices: devs(Device{Kind: KindMIGUUID, Raw: strings.ToUpper(mig0), ID: mig0})}},
		{"legacy mig", "MIG-" + uuid0 + "/1/0", SourceRequest{Devices: devs(Device{Kind: KindMIGUUID, Raw: "MIG-" + uuid0 + "/1/0", ID: "MIG-" + uuid0 + "/1/0"})}},
		{"legacy mig case", "mig-gpu-4B5E4C6A-1D2F-4A3B-9C8D-0E1F2A3B4C5D/7/3", SourceRequest{Devices: devs(Device{Kind: KindMIGUUID,
			Raw: "mig-gpu-4B5E4C6A-1D2F-4A3B-9C8D-0E1F2A3B4C5D/7/3", ID: "MIG-" + uuid0 + "/7/3"})}},
		{"mig index", "0:1,1:0", SourceRequest{Devices: devs(Device{Kind: KindMIGIndex, Raw: "0:1", GPU: 0, MIG: 1}, Device{Kind: KindMIGIndex, Raw: "1:0", GPU: 1})}},
		{"cdi other vendor", "vendor.com/dev=x1", SourceRequest{Devices: devs(Device{Kind: KindCDI, Raw: "vendor.com/dev=x1", ID: "vendor.com/dev=x1"})}},
		{"cdi own kind index", "nvidia.com/gpu=1", SourceRequest{Devices: devs(idx("nvidia.com/gpu=1", 1))}},
		{"cdi own kind type-index", "nvidia.com/gpu=gpu2,nvidia.com/gpu=mig1:0", SourceRequest{Devices: devs(idx("nvidia.com/gpu=gpu2", 2),
			Device{Kind: KindMIGIndex, Raw: "nvidia.com/gpu=mig1:0", GPU: 1})}},
		{"cdi own kind uuid", "nvidia.com/gpu=" + uuid1, SourceRequest{Devices: devs(Device{Kind: KindUUID, Raw: "nvidia.com/gpu=" + uuid1, ID: uuid1})}},
		{"cdi own kind all", "nvidia.com/gpu=all", SourceRequest{All: true}},
		{"mixed forms", "0," + uuid1 + ",3b:00.0,1:2,vendor.com/c=d", SourceRequest{Devices: devs(idx("0", 0),
			Device{Kind: KindUUID, Raw: uuid1, ID: uuid1}, Device{Kind: KindPCI, Raw: "3b:00.0", ID: "0000:3b:00.0"},
			Device{Kind: KindMIGIndex, Raw: "1:2", GPU: 1, MIG: 2}, Device{Kind: KindCDI, Raw: "vendor.com/c=d", ID: "vendor.com/c=d"})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(newInput("PATH=/bin", "NVIDIA_VISIBLE_DEVICES=void", "NVIDIA_VISIBLE_DEVICES="+tc.value), testOpts())
			require.NoError(t, err)
			require.NotNil(t, r)
			tc.want.Source, tc.want.Where = config.SourceEnv, "env NVIDIA_VISIBLE_DEVICES"
			require.Equal(t, []SourceRequest{tc.want}, r.Sources)
			require.False(t, r.Legacy)
			require.Equal(t, []inventory.Capability{inventory.Compute, inventory.Utility}, r.Capabilities)
			require.Equal(t, "injection.defaultCapabilities", r.CapabilitiesFrom)
		})
	}
}

func TestParseLegacy(t *testing.T) {
	for _, tc := range []struct {
		name, version, expr string
	}{
		{"patch", "12.4.1", "cuda>=12.4"},
		{"minor", "9.0", "cuda>=9.0"},
		{"major", "8", "cuda>=8.0"},
		{"v prefix", "v11.2", "cuda>=11.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(newInput("CUDA_VERSION="+tc.version, "NVIDIA_REQUIRE_CUDA="), testOpts())
			require.NoError(t, err)
			require.True(t, r.Legacy)
			require.Equal(t, []SourceRequest{{Source: config.SourceEnv, Where: whereLegacy, All: true}}, r.Sources)
			require.Equal(t, []Requirement{{Name: "legacy CUDA_VERSION", Expr: tc.expr}}, r.Requirements)
		})
	}
	t.Run("another source wins over the implicit default", func(t *testing.T) {
		in := newInput("CUDA_VERSION=10.1")
		in.CDIDevices = []string{"nvidia.com/gpu=0"}
		r, err := Parse(in, testOpts())
		require.NoError(t, err)
		require.False(t, r.Legacy)
		require.Equal(t, []SourceRequest{{Source: config.SourceCDIDevices, Where: "CDIDevices", Devices: devs(idx("nvidia.com/gpu=0", 0))}}, r.Sources)
		require.Equal(t, []Requirement{{Name: "legacy CUDA_VERSION", Expr: "cuda>=10.1"}}, r.Requirements)
	})
	t.Run("explicit list keeps the implicit requirement", func(t *testing.T) {
		r, err := Parse(newInput("CUDA_VERSION=10.1", "NVIDIA_VISIBLE_DEVICES=0"), testOpts())
		require.NoError(t, err)
		require.False(t, r.Legacy)
		require.Equal(t, []Requirement{{Name: "legacy CUDA_VERSION", Expr: "cuda>=10.1"}}, r.Requirements)
	})
}

func TestParseCapabilities(t *testing.T) {
	C := func(c ...inventory.Capability) []inventory.Capability { return c }
	all := C(inventory.Compat32, inventory.Compute, inventory.Display, inventory.Graphics, inventory.NGX, inventory.Utility, inventory.Video)
	for _, tc := range []struct {
		name  string
		value string
		opts  func(*Options)
		want  []inventory.Capability
	}{
		{"empty uses defaults", "", nil, C(inventory.Compute, inventory.Utility)},
		{"blank uses defaults", " ", nil, C(inventory.Compute, inventory.Utility)},
		{"utility", "utility", nil, C(inventory.Utility)},
		{"spaces and repeats", " utility , compute,utility", nil, C(inventory.Compute, inventory.Utility)},
		{"all", "all", nil, all},
		{"all with others", "compute,all", nil, all},
		{"video implies compute", "video", nil, C(inventory.Compute, inventory.Video)},
		{"display implies graphics", "display", nil, C(inventory.Display, inventory.Graphics)},
		{"all limited to supported", "all", func(o *Options) { o.SupportedCapabilities = []string{"utility", "compute"} },
			C(inventory.Compute, inventory.Utility)},
		{"custom defaults", "", func(o *Options) { o.DefaultCapabilities = []string{"video"} }, C(inventory.Compute, inventory.Video)},
		{"zero options defaults", "", func(o *Options) { *o = Options{} }, C(inventory.Compute, inventory.Utility)},
		{"zero options all", "all", func(o *Options) { *o = Options{} }, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOpts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			r, err := Parse(newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES="+tc.value), o)
			require.NoError(t, err)
			require.Equal(t, tc.want, r.Capabilities)
			got, err := ParseCapabilities(tc.value, o)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("annotation overrides env", func(t *testing.T) {
		in := newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=bogus")
		in.PodAnnotations = map[string]string{"capabilities.gpu-nri.io/pod": "graphics", "capabilities.gpu-nri.io/container.main": "ngx,utility"}
		r, err := Parse(in, testOpts())
		require.NoError(t, err)
		require.Equal(t, C(inventory.NGX, inventory.Utility), r.Capabilities)
		require.Equal(t, "annotation capabilities.gpu-nri.io/container.main", r.CapabilitiesFrom)
		delete(in.PodAnnotations, "capabilities.gpu-nri.io/container.main")
		r, err = Parse(in, testOpts())
		require.NoError(t, err)
		require.Equal(t, C(inventory.Graphics), r.Capabilities)
		require.Equal(t, "annotation capabilities.gpu-nri.io/pod", r.CapabilitiesFrom)
	})
	t.Run("env source named", func(t *testing.T) {
		r, err := Parse(newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute"), testOpts())
		require.NoError(t, err)
		require.Equal(t, "env NVIDIA_DRIVER_CAPABILITIES", r.CapabilitiesFrom)
	})
}

func TestParseRequirementsAndExtras(t *testing.T) {
	r, err := Parse(newInput(
		"NVIDIA_VISIBLE_DEVICES=all",
		"NVIDIA_REQUIRE_CUDA=cuda>=12.0",
		"NVIDIA_REQUIRE_JETPACK=jetpack>=5",
		"NVIDIA_REQUIRE_DRIVER=driver>=470",
		"NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470",
		"NVIDIA_REQUIRE_ARCH=",
		"CUDA_VERSION=12.4.1",
		"NVIDIA_DISABLE_REQUIRE=True",
		"NVIDIA_MIG_CONFIG_DEVICES=all",
		"NVIDIA_MIG_MONITOR_DEVICES=all",
		"NVIDIA_IMEX_CHANNELS=3, 0,12",
		"NVIDIA_GDS=enabled", "NVIDIA_MOFED=enabled", "NVIDIA_NVSWITCH=enabled", "NVIDIA_GDRCOPY=enabled",
	), testOpts())
	require.NoError(t, err)
	require.Equal(t, &Request{
		Sources:          []SourceRequest{{Source: config.SourceEnv, Where: "env NVIDIA_VISIBLE_DEVICES", All: true}},
		Capabilities:     []inventory.Capability{inventory.Compute, inventory.Utility},
		CapabilitiesFrom: "injection.defaultCapabilities",
		Requirements: []Requirement{
			{Name: "NVIDIA_REQUIRE_CUDA", Expr: "cuda>=12.4 brand=tesla,driver>=470"},
			{Name: "NVIDIA_REQUIRE_DRIVER", Expr: "driver>=470"},
		},
		DisableRequire: true,
		MIGConfig:      true, MIGMonitor: true,
		IMEXChannels: []int{0, 3, 12},
		GDS:          true, MOFED: true, NVSwitch: true, GDRCopy: true,
	}, r)

	for _, v := range []string{"true", "1", "TRUE", "True", "t", "T"} {
		r, err := Parse(newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DISABLE_REQUIRE="+v), testOpts())
		require.NoError(t, err)
		require.True(t, r.DisableRequire, v)
	}
	for _, v := range []string{"false", "0", "FALSE", "f", ""} {
		r, err := Parse(newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DISABLE_REQUIRE="+v), testOpts())
		require.NoError(t, err)
		require.False(t, r.DisableRequire, v)
	}
	r, err = Parse(newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS=all", "NVIDIA_GDS=disabled"), testOpts())
	require.NoError(t, err)
	require.True(t, r.IMEXAll)
	require.Nil(t, r.IMEXChannels)
	require.False(t, r.GDS)
	require.Nil(t, r.Requirements)
}

func TestParseAnnotations(t *testing.T) {
	in := &Input{Namespace: "ns", Pod: "pod", Container: "main", PodAnnotations: map[string]string{
		"gpus.gpu-nri.io/pod":               "all",
		"gpus.gpu-nri.io/container.main":    "1," + uuid0,
		"gpus.gpu-nri.io/container.sidecar": "garbage,,",
	}}
	r, err := Parse(in, testOpts())
	require.NoError(t, err)
	require.Equal(t, []SourceRequest{{Source: config.SourceAnnotation, Where: "annotation gpus.gpu-nri.io/container.main",
		Devices: devs(idx("1", 1), Device{Kind: KindUUID, Raw: uuid0, ID: uuid0})}}, r.Sources)

	in.Container = "other"
	r, err = Parse(in, testOpts())
	require.NoError(t, err)
	require.Equal(t, []SourceRequest{{Source: config.SourceAnnotation, Where: "annotation gpus.gpu-nri.io/pod", All: true}}, r.Sources)

	t.Run("container key void beats pod key", func(t *testing.T) {
		in := &Input{Container: "main", PodAnnotations: map[string]string{
			"gpus.gpu-nri.io/pod": "all", "gpus.gpu-nri.io/container.main": "void"}}
		r, err := Parse(in, testOpts())
		require.NoError(t, err)
		require.Nil(t, r)
	})
	t.Run("custom domain", func(t *testing.T) {
		in := &Input{Container: "main", PodAnnotations: map[string]string{"gpus.example.org/pod": "none", "gpus.gpu-nri.io/bogus": "0"}}
		o := testOpts()
		o.AnnotationDomain = "example.org"
		r, err := Parse(in, o)
		require.NoError(t, err)
		require.Equal(t, []SourceRequest{{Source: config.SourceAnnotation, Where: "annotation gpus.example.org/pod", None: true}}, r.Sources)
	})
	t.Run("cdi annotations", func(t *testing.T) {
		in := &Input{Container: "main",
			Annotations: map[string]string{
				"cdi.k8s.io/nvidia-device-plugin_b": "k8s.device-plugin.nvidia.com/gpu=" + uuid1,
				"cdi.k8s.io/nvidia-device-plugin_a": "k8s.device-plugin.nvidia.com/gpu=" + uuid0 + ",vendor.com/nic=eth1",
				"cdi.k8s.io/copied-from-pod":        "nvidia.com/gpu=3",
				"io.kubernetes.cri.container-type":  "container",
			},
			PodAnnotations: map[string]string{
				"cdi.k8s.io/copied-from-pod": "nvidia.com/gpu=3",
				"gpus.gpu-nri.io/pod":        "3",
			},
		}
		r, err := Parse(in, testOpts())
		require.NoError(t, err)
		q := func(s string) Device { return Device{Kind: KindCDI, Raw: s, ID: s} }
		require.Equal(t, []SourceRequest{
			{Source: config.SourceCDIAnnotation, Where: "annotation cdi.k8s.io/nvidia-device-plugin_a, annotation cdi.k8s.io/nvidia-device-plugin_b",
				Devices: devs(q("k8s.device-plugin.nvidia.com/gpu="+uuid0), q("vendor.com/nic=eth1"), q("k8s.device-plugin.nvidia.com/gpu="+uuid1))},
			{Source: config.SourceAnnotation, Where: "annotation gpus.gpu-nri.io/pod, pod annotation cdi.k8s.io/copied-from-pod",
				Devices: devs(idx("3", 3))},
		}, r.Sources)
	})
}

func TestParseVolumeMountsAndCDIDevices(t *testing.T) {
	m := func(dst ...string) []Mount {
		var out []Mount
		for _, d := range dst {
			out = append(out, Mount{Source: "/dev/null", Destination: d})
		}
		return out
	}
	in := newInput("NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices")
	in.Mounts = m("/etc/hosts",
		"/var/run/nvidia-container-devices/"+uuid0,
		"/var/run/nvidia-container-devices/1",
		"/var/run/nvidia-container-devices/cdi/k8s.device-plugin.nvidia.com/gpu/"+uuid1,
		"/var/run/nvidia-container-devices/cdi/nvidia.com/gpu/2",
		"/var/run/nvidia-container-devices/imex/7",
		"/var/run/nvidia-container-devices/imex/0",
		"/var/run/nvidia-container-devices/MIG-"+uuid0+"/1/0",
	)
	in.CDIDevices = []string{"nvidia.com/gpu=0", "vendor.com/nic=eth0"}
	r, err := Parse(in, testOpts())
	require.NoError(t, err)
	require.Equal(t, []SourceRequest{
		{Source: config.SourceCDIDevices, Where: "CDIDevices", Devices: devs(idx("nvidia.com/gpu=0", 0),
			Device{Kind: KindCDI, Raw: "vendor.com/nic=eth0", ID: "vendor.com/nic=eth0"})},
		{Source: config.SourceVolumeMounts, Where: whereMounts, Devices: devs(
			Device{Kind: KindUUID, Raw: uuid0, ID: uuid0}, idx("1", 1),
			Device{Kind: KindCDI, Raw: "k8s.device-plugin.nvidia.com/gpu=" + uuid1, ID: "k8s.device-plugin.nvidia.com/gpu=" + uuid1},
			idx("nvidia.com/gpu=2", 2),
			Device{Kind: KindMIGUUID, Raw: "MIG-" + uuid0 + "/1/0", ID: "MIG-" + uuid0 + "/1/0"}),
			IMEXChannels: []int{0, 7}},
	}, r.Sources)

	t.Run("all", func(t *testing.T) {
		r, err := Parse(&Input{Mounts: m(VolumeMountsRoot + "/all")}, testOpts())
		require.NoError(t, err)
		require.Equal(t, []SourceRequest{{Source: config.SourceVolumeMounts, Where: whereMounts, All: true}}, r.Sources)
	})
	t.Run("imex only", func(t *testing.T) {
		r, err := Parse(&Input{Mounts: m(VolumeMountsRoot + "/imex/1")}, testOpts())
		require.NoError(t, err)
		require.Equal(t, []SourceRequest{{Source: config.SourceVolumeMounts, Where: whereMounts, IMEXChannels: []int{1}}}, r.Sources)
	})
	t.Run("cdi devices all", func(t *testing.T) {
		r, err := Parse(&Input{CDIDevices: []string{"nvidia.com/gpu=all"}}, testOpts())
		require.NoError(t, err)
		require.Equal(t, []SourceRequest{{Source: config.SourceCDIDevices, Where: "CDIDevices", All: true}}, r.Sources)
	})
	t.Run("every source", func(t *testing.T) {
		in := newInput("NVIDIA_VISIBLE_DEVICES=0")
		in.Container = "main"
		in.CDIDevices = []string{"nvidia.com/gpu=0"}
		in.Annotations = map[string]string{"cdi.k8s.io/x": "nvidia.com/gpu=0"}
		in.PodAnnotations = map[string]string{"gpus.gpu-nri.io/pod": "0"}
		in.Mounts = m(VolumeMountsRoot + "/0")
		r, err := Parse(in, testOpts())
		require.NoError(t, err)
		var got []string
		for _, s := range r.Sources {
			got = append(got, s.Source)
		}
		require.Equal(t, config.Sources(), got)
	})
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("0,", MaxValueLen)
	many := strings.TrimSuffix(strings.Repeat("1,", MaxItems+1), ",")
	for _, tc := range []struct {
		name   string
		in     *Input
		input  string // substring of Error.Input
		reason string // substring of Error.Reason
	}{
		{"unknown form", newInput("NVIDIA_VISIBLE_DEVICES=0,x"), `NVIDIA_VISIBLE_DEVICES="0,x"`, `item 2: "x": unknown device form`},
		{"only commas", newInput("NVIDIA_VISIBLE_DEVICES=, ,"), `NVIDIA_VISIBLE_DEVICES=", ,"`, "no device in the list, only commas"},
		{"case None", newInput("NVIDIA_VISIBLE_DEVICES=None"), "NVIDIA_VISIBLE_DEVICES", "unknown device form"},
		{"all mixed", newInput("NVIDIA_VISIBLE_DEVICES=all,0"), `NVIDIA_VISIBLE_DEVICES="all,0"`, `"all" cannot be combined`},
		{"none mixed", newInput("NVIDIA_VISIBLE_DEVICES=0,none"), "NVIDIA_VISIBLE_DEVICES", `"none" cannot be combined`},
		{"void mixed", newInput("NVIDIA_VISIBLE_DEVICES=void,0"), "NVIDIA_VISIBLE_DEVICES", `"void" cannot be combined`},
		{"own cdi all mixed", newInput("NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=all,0"), "NVIDIA_VISIBLE_DEVICES", "cannot be combined"},
		{"nul", newInput("NVIDIA_VISIBLE_DEVICES=0\x00"), `NVIDIA_VISIBLE_DEVICES="0\x00"`, "NUL byte"},
		{"dotdot", newInput("NVIDIA_VISIBLE_DEVICES=../0"), "NVIDIA_VISIBLE_DEVICES", `contains ".."`},
		{"absolute", newInput("NVIDIA_VISIBLE_DEVICES=/dev/nvidia0"), "NVIDIA_VISIBLE_DEVICES", "absolute path"},
		{"slash", newInput("NVIDIA_VISIBLE_DEVICES=0/1"), "NVIDIA_VISIBLE_DEVICES", "a path where a device id is expected"},
		{"too long", newInput("NVIDIA_VISIBLE_DEVICES=" + long), `NVIDIA_VISIBLE_DEVICES="0,0,`, "more than the 4096 allowed"},
		{"too many", newInput("NVIDIA_VISIBLE_DEVICES=" + many), "NVIDIA_VISIBLE_DEVICES", "257 items, more than the 256 allowed"},
		{"negative", newInput("NVIDIA_VISIBLE_DEVICES=-1"), "NVIDIA_VISIBLE_DEVICES", "negative index"},
		{"huge", newInput("NVIDIA_VISIBLE_DEVICES=99999999999999999999999"), "NVIDIA_VISIBLE_DEVICES", "index larger than 255"},
		{"256", newInput("NVIDIA_VISIBLE_DEVICES=256"), "NVIDIA_VISIBLE_DEVICES", "index larger than 255"},
		{"plus", newInput("NVIDIA_VISIBLE_DEVICES=+1"), "NVIDIA_VISIBLE_DEVICES", "unknown device form"},
		{"bad uuid", newInput("NVIDIA_VISIBLE_DEVICES=GPU-1234"), "NVIDIA_VISIBLE_DEVICES", "GPU- must be followed by a UUID"},
		{"uuid non-hex", newInput("NVIDIA_VISIBLE_DEVICES=GPU-4b5e4c6a-1d2f-4a3b-9c8d-0e1f2a3b4c5g"), "NVIDIA_VISIBLE_DEVICES", "UUID"},
		{"bad mig uuid", newInput("NVIDIA_VISIBLE_DEVICES=MIG-x"), "NVIDIA_VISIBLE_DEVICES", "MIG- must be followed"},
		{"bad legacy mig", newInput("NVIDIA_VISIBLE_DEVICES=MIG-" + uuid0 + "/1"), "NVIDIA_VISIBLE_DEVICES", "not a MIG device"},
		{"legacy mig huge", newInput("NVIDIA_VISIBLE_DEVICES=MIG-" + uuid0 + "/1/999"), "NVIDIA_VISIBLE_DEVICES", "index larger"},
		{"bad pci", newInput("NVIDIA_VISIBLE_DEVICES=0000:3b:00.8"), "NVIDIA_VISIBLE_DEVICES", "not a PCI bus id"},
		{"pci device > 1f", newInput("NVIDIA_VISIBLE_DEVICES=3b:20.0"), "NVIDIA_VISIBLE_DEVICES", "not a PCI bus id"},
		{"bad mig index", newInput("NVIDIA_VISIBLE_DEVICES=0:x"), "NVIDIA_VISIBLE_DEVICES", "not a MIG index"},
		{"mig index huge", newInput("NVIDIA_VISIBLE_DEVICES=0:1000"), "NVIDIA_VISIBLE_DEVICES", "index larger"},
		{"bad cdi", newInput("NVIDIA_VISIBLE_DEVICES=vendor.com/=x"), "NVIDIA_VISIBLE_DEVICES", "not a valid CDI device name"},
		{"own cdi unknown", newInput("NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=foo"), "NVIDIA_VISIBLE_DEVICES", "not a device name of kind nvidia.com/gpu"},
		{"volume mounts missing", newInput("NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices"), "NVIDIA_VISIBLE_DEVICES", "container has none"},

		{"caps unknown", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,gpu"), `NVIDIA_DRIVER_CAPABILITIES="compute,gpu"`, `unknown capability "gpu"`},
		{"caps only commas", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=,"), `NVIDIA_DRIVER_CAPABILITIES=","`, "no capability in the list"},
		{"caps case ALL", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=ALL"), "NVIDIA_DRIVER_CAPABILITIES", `unknown capability "ALL"`},
		{"caps nul", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute\x00"), "NVIDIA_DRIVER_CAPABILITIES", "NUL"},
		{"caps annotation", &Input{Namespace: "ns", Pod: "pod", Container: "main", Env: []string{"NVIDIA_VISIBLE_DEVICES=0"},
			PodAnnotations: map[string]string{"capabilities.gpu-nri.io/pod": "Compute"}}, `annotation capabilities.gpu-nri.io/pod="Compute"`, "unknown capability"},

		{"require nul", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_X=a\x00"), "NVIDIA_REQUIRE_X", "NUL"},
		{"require long", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_X="+long), "NVIDIA_REQUIRE_X", "more than the 4096"},
		{"require many", newInput(append([]string{"NVIDIA_VISIBLE_DEVICES=0"}, strings.Split(strings.Repeat("NVIDIA_REQUIRE_A=x;", MaxRequirements+1), ";")...)...), "NVIDIA_REQUIRE_*", "65 variables"},
		{"legacy bad version", newInput("CUDA_VERSION=twelve"), `CUDA_VERSION="twelve"`, "not a version"},
		{"mig config", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_MIG_CONFIG_DEVICES=0"), "NVIDIA_MIG_CONFIG_DEVICES", `only "all"`},
		{"mig monitor", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_MIG_MONITOR_DEVICES=yes"), "NVIDIA_MIG_MONITOR_DEVICES", `only "all"`},
		{"imex bad", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS=0,x"), `NVIDIA_IMEX_CHANNELS="0,x"`, "item 2"},
		{"imex only commas", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS=,"), "NVIDIA_IMEX_CHANNELS", "no channel in the list"},
		{"imex negative", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS=-1"), "NVIDIA_IMEX_CHANNELS", "negative"},
		{"imex huge", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS=65536"), "NVIDIA_IMEX_CHANNELS", "larger than 65535"},
		{"gds", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_GDS=true"), `NVIDIA_GDS="true"`, `expected "enabled"`},
		{"gdrcopy", newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_GDRCOPY=on"), "NVIDIA_GDRCOPY", `expected "enabled"`},

		{"annotation bad", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			PodAnnotations: map[string]string{"gpus.gpu-nri.io/container.main": "0,x"}}, `annotation gpus.gpu-nri.io/container.main="0,x"`, "item 2"},
		{"annotation key typo", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			PodAnnotations: map[string]string{"gpus.gpu-nri.io/containers.main": "0"}}, `pod annotation "gpus.gpu-nri.io/containers.main"`, "unknown key form"},
		{"annotation bare key", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			PodAnnotations: map[string]string{"gpus.gpu-nri.io": "0"}}, `pod annotation "gpus.gpu-nri.io"`, "container.<name>"},
		{"caps annotation key typo", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			PodAnnotations: map[string]string{"capabilities.gpu-nri.io/container.": "0"}}, "capabilities.gpu-nri.io/container.", "unknown key form"},
		{"cdi annotation unqualified", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Annotations: map[string]string{"cdi.k8s.io/x": "0"}}, `annotation cdi.k8s.io/x="0"`, "not a fully-qualified CDI device name"},
		{"cdi annotation empty", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Annotations: map[string]string{"cdi.k8s.io/x": ""}}, `annotation cdi.k8s.io/x=""`, "empty value"},
		{"pod cdi annotation conflicts", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			PodAnnotations: map[string]string{"gpus.gpu-nri.io/pod": "all", "cdi.k8s.io/x": "a.com/b=c"}}, "pod annotation cdi.k8s.io/x", `"all" conflicts`},

		{"mount bad id", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Mounts: []Mount{{Destination: VolumeMountsRoot + "/x"}}}, `mount "/var/run/nvidia-container-devices/x"`, "unknown device form"},
		{"mount dotdot", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Mounts: []Mount{{Destination: VolumeMountsRoot + "/../../etc/shadow"}}}, "mount", `contains ".."`},
		{"mount empty component", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Mounts: []Mount{{Destination: VolumeMountsRoot + "//0"}}}, "mount", "absolute path"},
		{"mount cdi short", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Mounts: []Mount{{Destination: VolumeMountsRoot + "/cdi/nvidia.com/gpu"}}}, "mount", "cdi/<vendor>/<class>/<device>"},
		{"mount cdi bad", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Mounts: []Mount{{Destination: VolumeMountsRoot + "/cdi/-/gpu/0"}}}, "mount", "not a valid CDI device name"},
		{"mount imex bad", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Mounts: []Mount{{Destination: VolumeMountsRoot + "/imex/x"}}}, "mount", "not an IMEX channel"},
		{"mount all mixed", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Mounts: []Mount{{Destination: VolumeMountsRoot + "/0"}, {Destination: VolumeMountsRoot + "/all"}}}, "mount", `"all" conflicts`},
		{"mount nul", &Input{Namespace: "ns", Pod: "pod", Container: "main",
			Mounts: []Mount{{Destination: VolumeMountsRoot + "/0\x00"}}}, "mount", "NUL"},

		{"cdi devices unqualified", &Input{Namespace: "ns", Pod: "pod", Container: "main", CDIDevices: []string{"a.com/b=c", "0"}},
			`CDIDevices[1]="0"`, "not a fully-qualified CDI device name"},
		{"cdi devices empty", &Input{Namespace: "ns", Pod: "pod", Container: "main", CDIDevices: []string{""}}, "CDIDevices[0]", "empty item"},
		{"cdi devices too many", &Input{Namespace: "ns", Pod: "pod", Container: "main", CDIDevices: make([]string, MaxItems+1)}, "CDIDevices (257 names)", "more than 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.in, testOpts())
			require.Error(t, err)
			require.Nil(t, r)
			var e *Error
			require.True(t, errors.As(err, &e), "%T", err)
			require.Equal(t, "ns/pod/main", e.Who)
			require.Contains(t, e.Input, tc.input)
			require.Contains(t, e.Reason, tc.reason)
			require.Contains(t, err.Error(), "container ns/pod/main: ")
			require.LessOrEqual(t, len(err.Error()), 1024, "messages stay readable")
		})
	}
}

func TestParseDevice(t *testing.T) {
	d, err := ParseDevice("GPU-4B5E4C6A-1D2F-4A3B-9C8D-0E1F2A3B4C5D", "")
	require.NoError(t, err)
	require.Equal(t, Device{Kind: KindUUID, Raw: "GPU-4B5E4C6A-1D2F-4A3B-9C8D-0E1F2A3B4C5D", ID: uuid0}, d)
	_, err = ParseDevice("nvidia.com/gpu=all", "nvidia.com/gpu")
	require.ErrorContains(t, err, "list value")
	d, err = ParseDevice("nvidia.com/gpu=all", "")
	require.NoError(t, err)
	require.Equal(t, KindCDI, d.Kind)
	_, err = ParseDevice("all", "")
	require.ErrorContains(t, err, "cannot be combined")
	require.Equal(t, "mig-index", KindMIGIndex.String())
}

func TestOptionsFromConfig(t *testing.T) {
	c := config.Default().Injection
	o := OptionsFromConfig(&c)
	require.Equal(t, "gpu-nri.io", o.AnnotationDomain)
	require.Equal(t, "nvidia.com/gpu", o.CDIKind)
	require.Equal(t, c.DefaultCapabilities, o.DefaultCapabilities)
	require.Equal(t, c.SupportedCapabilities, o.SupportedCapabilities)
	require.Equal(t, Options{}, OptionsFromConfig(nil))
}

func TestParseDoesNotModifyInput(t *testing.T) {
	in := newInput("NVIDIA_VISIBLE_DEVICES=0,1", "NVIDIA_REQUIRE_B=b", "NVIDIA_REQUIRE_A=a")
	in.PodAnnotations = map[string]string{"gpus.gpu-nri.io/pod": "1"}
	in.Mounts = []Mount{{Destination: VolumeMountsRoot + "/imex/3"}, {Destination: VolumeMountsRoot + "/imex/1"}}
	before := *in
	before.Env = append([]string(nil), in.Env...)
	before.Mounts = append([]Mount(nil), in.Mounts...)
	_, err := Parse(in, testOpts())
	require.NoError(t, err)
	require.Equal(t, before.Env, in.Env)
	require.Equal(t, before.Mounts, in.Mounts)
}

func TestParseUnsupportedCapability(t *testing.T) {
	o := testOpts()
	o.SupportedCapabilities = []string{"utility", "compute", "display"}
	for _, tc := range []struct{ value, reason string }{
		{"graphics", "capability graphics not in injection.supportedCapabilities (compute, display, utility)"},
		{"display", "(graphics implied: video needs compute, display needs graphics)"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			_, err := Parse(newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES="+tc.value), o)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, `NVIDIA_DRIVER_CAPABILITIES="`+tc.value+`"`, e.Input)
			require.Contains(t, e.Reason, tc.reason)
			_, err = ParseCapabilities(tc.value, o)
			require.ErrorContains(t, err, "injection.supportedCapabilities")
		})
	}
}
