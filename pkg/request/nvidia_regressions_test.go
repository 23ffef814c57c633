package request

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// Where each case comes from. The NVIDIA tests are those of
// nvidia-container-toolkit v1.20.2 and libnvidia-container; where NVIDIA has
// no test for a behaviour, the source file and function that implement it
// are named instead. NVIDIA's cases name GPUs "gpu0", "GPU0" (placeholders
// its tests never resolve); they are written here as indexes.
const (
	nvHookTest   = "nvidia-container-toolkit cmd/nvidia-container-runtime-hook/container_config_test.go"
	nvImageTest  = "nvidia-container-toolkit internal/config/image/cuda_image_test.go"
	nvCapsTest   = "nvidia-container-toolkit internal/config/image/capabilities_test.go"
	nvCDITest    = "nvidia-container-toolkit internal/modifier/cdi_test.go"
	nvImageSrc   = "nvidia-container-toolkit internal/config/image/cuda_image.go"
	nvSelectSrc  = "libnvidia-container src/cli/common.c select_devices"
	nvDisableSrc = nvImageSrc + " HasDisableRequire (strconv.ParseBool, error read as false)"
	nvMIGSrc     = "libnvidia-container src/cli/common.c select_mig_config_devices, select_mig_monitor_devices"
)

// TestNVIDIARegressions pins gpu-nri's reading of requests NVIDIA's own tests
// and sources define. Every case asserts the whole outcome: the exact
// Request (sources, capabilities and where they came from, requirements,
// warnings) or the exact error, or nil for a container that is not a GPU
// container. docs/requests.md's "Differences from NVIDIA" table says why
// gpu-nri differs where it does.
func TestNVIDIARegressions(t *testing.T) {
	C := func(c ...inventory.Capability) []inventory.Capability { return c }
	allCaps := C(inventory.Compat32, inventory.Compute, inventory.Display, inventory.Graphics, inventory.NGX, inventory.Utility, inventory.Video)
	defCaps := C(inventory.Compute, inventory.Utility)
	env := func(s SourceRequest) []SourceRequest { s.Source = config.SourceEnv; return []SourceRequest{s} }
	envAll := env(SourceRequest{Where: whereEnv, All: true})
	env01 := env(SourceRequest{Where: whereEnv, Devices: devs(idx("0", 0), idx("1", 1))})
	legacyAll := env(SourceRequest{Where: whereLegacy, All: true})
	legacyReq := func(v string) Requirement { return Requirement{Name: legacyReqName, Expr: "cuda>=" + v} }
	requireCUDA := Requirement{Name: EnvRequireCUDA, Expr: "cuda>=9.0"}
	brandTesla := Requirement{Name: "NVIDIA_REQUIRE_BRAND", Expr: "brand=tesla"}
	mounts := func(paths ...string) *Input {
		in := newInput()
		for _, p := range paths {
			in.Mounts = append(in.Mounts, Mount{Source: "/dev/null", Destination: VolumeMountsRoot + "/" + p})
		}
		return in
	}
	withCUDA := func(in *Input, env ...string) *Input { in.Env = append(in.Env, env...); return in }
	restricted := testOpts()
	restricted.SupportedCapabilities = []string{"compute", "display", "utility", "video"}

	for _, tc := range []struct {
		name, from string
		in         *Input
		opts       *Options
		want       *Request // nil: not a GPU container (unless err)
		err        string   // the exact error
	}{
		// The legacy CUDA image rule: CUDA_VERSION set, NVIDIA_REQUIRE_CUDA
		// unset or empty. Devices default to all when NVIDIA_VISIBLE_DEVICES
		// is unset; capabilities to every supported one when
		// NVIDIA_DRIVER_CAPABILITIES is unset (set but empty: the defaults).
		{name: "Legacy image, no devices, no capabilities, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("CUDA_VERSION=9.0"),
			want: &Request{Sources: legacyAll, Capabilities: allCaps, CapabilitiesFrom: whereCapsLgcy, Requirements: []Requirement{legacyReq("9.0")}, Legacy: true}},
		{name: "Legacy image, devices 'all', no capabilities, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=all"),
			want: &Request{Sources: envAll, Capabilities: allCaps, CapabilitiesFrom: whereCapsLgcy, Requirements: []Requirement{legacyReq("9.0")}}},
		{name: "Legacy image, devices 'empty', no capabilities, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in: newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=")},
		{name: "Legacy image, devices 'void', no capabilities, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in: newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=void")},
		{name: "Legacy image, devices 'none', no capabilities, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=none"),
			want: &Request{Sources: env(SourceRequest{Where: whereEnv, None: true}), Capabilities: allCaps, CapabilitiesFrom: whereCapsLgcy, Requirements: []Requirement{legacyReq("9.0")}}},
		{name: "Legacy image, devices set, no capabilities, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=0,1"),
			want: &Request{Sources: env01, Capabilities: allCaps, CapabilitiesFrom: whereCapsLgcy, Requirements: []Requirement{legacyReq("9.0")}}},
		{name: "Legacy image, devices set, capabilities 'empty', no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=0,1", "NVIDIA_DRIVER_CAPABILITIES="),
			want: &Request{Sources: env01, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt, Requirements: []Requirement{legacyReq("9.0")}}},
		{name: "Legacy image, devices set, capabilities 'all', no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=0,1", "NVIDIA_DRIVER_CAPABILITIES=all"),
			want: &Request{Sources: env01, Capabilities: allCaps, CapabilitiesFrom: whereCapsEnv, Requirements: []Requirement{legacyReq("9.0")}}},
		// gpu-nri adds what video and display need (compute, graphics).
		{name: "Legacy image, devices set, capabilities set, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in: newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=0,1", "NVIDIA_DRIVER_CAPABILITIES=video,display"),
			want: &Request{Sources: env01, Capabilities: C(inventory.Compute, inventory.Display, inventory.Graphics, inventory.Video),
				CapabilitiesFrom: whereCapsEnv, Requirements: []Requirement{legacyReq("9.0")}}},
		{name: "Legacy image, devices set, capabilities set, requirements set, disable requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in: newInput("CUDA_VERSION=9.0", "NVIDIA_VISIBLE_DEVICES=0,1", "NVIDIA_DRIVER_CAPABILITIES=utility", "NVIDIA_REQUIRE_VOLTA=arch>=7.0", "NVIDIA_DISABLE_REQUIRE=true"),
			want: &Request{Sources: env01, Capabilities: C(inventory.Utility), CapabilitiesFrom: whereCapsEnv,
				Requirements: []Requirement{{Name: "NVIDIA_REQUIRE_VOLTA", Expr: "arch>=7.0"}, legacyReq("9.0")}, DisableRequire: true}},
		{name: "Modern image, no devices, no capabilities, no requirement, image.EnvVarCudaVersion set", from: nvHookTest + " TestGetNvidiaConfig",
			in: newInput("CUDA_VERSION=9.0", "NVIDIA_REQUIRE_CUDA=cuda>=9.0")},
		{name: "Modern image, devices 'all', no capabilities, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("NVIDIA_REQUIRE_CUDA=cuda>=9.0", "NVIDIA_VISIBLE_DEVICES=all"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt, Requirements: []Requirement{requireCUDA}}},
		{name: "Modern image, devices 'none', no capabilities, no requirements", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("NVIDIA_REQUIRE_CUDA=cuda>=9.0", "NVIDIA_VISIBLE_DEVICES=none"),
			want: &Request{Sources: env(SourceRequest{Where: whereEnv, None: true}), Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt, Requirements: []Requirement{requireCUDA}}},
		{name: "No cuda envs, devices 'all'", from: nvHookTest + " TestGetNvidiaConfig",
			in:   newInput("NVIDIA_VISIBLE_DEVICES=all"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt}},
		{name: "Env unset for legacy image is 'all' (of the supported ones)", from: nvHookTest + " TestGetDriverCapabilities",
			in: newInput("CUDA_VERSION=9.0"), opts: &restricted,
			want: &Request{Sources: legacyAll, Capabilities: C(inventory.Compute, inventory.Display, inventory.Utility, inventory.Video),
				CapabilitiesFrom: whereCapsLgcy, Requirements: []Requirement{legacyReq("9.0")}, Legacy: true}},
		{name: "Env is empty for legacy image", from: nvHookTest + " TestGetDriverCapabilities",
			in:   newInput("CUDA_VERSION=9.0", "NVIDIA_DRIVER_CAPABILITIES="),
			want: &Request{Sources: legacyAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt, Requirements: []Requirement{legacyReq("9.0")}, Legacy: true}},
		{name: "legacy image whose devices come from volume mounts", from: nvHookTest + " getDriverCapabilities (the legacy rule does not look at the device source)",
			in: withCUDA(mounts("0"), "CUDA_VERSION=11.6"),
			want: &Request{Sources: []SourceRequest{{Source: config.SourceVolumeMounts, Where: whereMounts, Devices: devs(idx("0", 0))}},
				Capabilities: allCaps, CapabilitiesFrom: whereCapsLgcy, Requirements: []Requirement{legacyReq("11.6")}}},
		// CUDA_VERSION=legacy: NVIDIA selects all, then fails the container
		// on the version (TestParseMajorMinorVersionInvalid).
		{name: "empty env returns all for legacy image", from: nvImageTest + " TestGetDevicesFromEnvvar",
			in:  newInput("CUDA_VERSION=legacy"),
			err: `gpu-nri: container ns/pod/main: CUDA_VERSION="legacy": not a version (major[.minor[.patch]]) for the legacy CUDA image rule`},

		// Requirements.
		{name: "NVIDIA_REQUIRE_JETPACK is ignored", from: nvImageTest + " TestGetRequirements",
			in:   newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_JETPACK=csv-mounts=all"),
			want: &Request{Sources: env(SourceRequest{Where: whereEnv, Devices: devs(idx("0", 0))}), Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt}},
		{name: "NVIDIA_REQUIRE_JETPACK_HOST_MOUNTS is ignored", from: nvImageTest + " TestGetRequirements",
			in:   newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_JETPACK_HOST_MOUNTS=base-only"),
			want: &Request{Sources: env(SourceRequest{Where: whereEnv, Devices: devs(idx("0", 0))}), Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt}},
		{name: "requirements are concatenated requirement set", from: nvImageTest + " TestGetRequirements",
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_REQUIRE_CUDA=cuda>=9.0", "NVIDIA_REQUIRE_BRAND=brand=tesla"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Requirements: []Requirement{brandTesla, requireCUDA}}},
		{name: "legacy image with additional requirement", from: nvImageTest + " TestGetRequirements",
			in: newInput("CUDA_VERSION=11.6", "NVIDIA_REQUIRE_BRAND=brand=tesla"),
			want: &Request{Sources: legacyAll, Capabilities: allCaps, CapabilitiesFrom: whereCapsLgcy,
				Requirements: []Requirement{brandTesla, legacyReq("11.6")}, Legacy: true}},
		{name: "NVIDIA_DISABLE_REQUIRE ignores legacy image requirements", from: nvImageTest + " TestGetRequirements",
			in: newInput("CUDA_VERSION=11.6", "NVIDIA_REQUIRE_BRAND=brand=tesla", "NVIDIA_DISABLE_REQUIRE=true"),
			want: &Request{Sources: legacyAll, Capabilities: allCaps, CapabilitiesFrom: whereCapsLgcy,
				Requirements: []Requirement{brandTesla, legacyReq("11.6")}, Legacy: true, DisableRequire: true}},
		{name: "NVIDIA_DISABLE_REQUIRE=TRUE", from: nvDisableSrc,
			in:   newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DISABLE_REQUIRE=TRUE"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt, DisableRequire: true}},
		{name: "NVIDIA_DISABLE_REQUIRE=yes is false", from: nvDisableSrc,
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DISABLE_REQUIRE=yes"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`NVIDIA_DISABLE_REQUIRE="yes": not a boolean as NVIDIA reads it (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False): read as false, so the requirements are checked`}}},
		{name: "NVIDIA_DISABLE_REQUIRE=on is false", from: nvDisableSrc,
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DISABLE_REQUIRE=on"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`NVIDIA_DISABLE_REQUIRE="on": not a boolean as NVIDIA reads it (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False): read as false, so the requirements are checked`}}},
		{name: "NVIDIA_DISABLE_REQUIRE with a space is false", from: nvDisableSrc,
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DISABLE_REQUIRE= true"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`NVIDIA_DISABLE_REQUIRE=" true": not a boolean as NVIDIA reads it (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False): read as false, so the requirements are checked`}}},

		// Device lists: NVIDIA skips empty items (the toolkit's
		// devicesFromEnvvars and nvidia-container-cli's "Allow extra commas"),
		// selects a device once however often it is named, and compares
		// "all" case-insensitively (str_case_equal).
		{name: "empty item", from: nvImageSrc + " devicesFromEnvvars; " + nvSelectSrc,
			in: newInput("NVIDIA_VISIBLE_DEVICES=0,,1"),
			want: &Request{Sources: env01, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`NVIDIA_VISIBLE_DEVICES="0,,1": item 2 is empty: ignored, as NVIDIA ignores it`}}},
		{name: "trailing and leading commas", from: nvImageSrc + " devicesFromEnvvars; " + nvSelectSrc,
			in: newInput("NVIDIA_VISIBLE_DEVICES=,0,1,"),
			want: &Request{Sources: env01, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`NVIDIA_VISIBLE_DEVICES=",0,1,": item 1 is empty: ignored, as NVIDIA ignores it`,
					`NVIDIA_VISIBLE_DEVICES=",0,1,": item 4 is empty: ignored, as NVIDIA ignores it`}}},
		{name: "repeated index", from: nvSelectSrc + " (already_present)",
			in: newInput("NVIDIA_VISIBLE_DEVICES=0,1,0"),
			want: &Request{Sources: env01, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`NVIDIA_VISIBLE_DEVICES="0,1,0": item 3 "0" repeats "0": counted once`}}},
		{name: "repeated UUID in another case", from: nvSelectSrc + " (strcasecmp on UUIDs, already_present)",
			in: newInput("NVIDIA_VISIBLE_DEVICES=" + uuid0 + "," + strings.ToUpper(uuid0)),
			want: &Request{Sources: env(SourceRequest{Where: whereEnv, Devices: devs(Device{Kind: KindUUID, Raw: uuid0, ID: uuid0})}),
				Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`NVIDIA_VISIBLE_DEVICES="` + uuid0 + "," + strings.ToUpper(uuid0) + `": item 2 "` + strings.ToUpper(uuid0) + `" repeats "` + uuid0 + `": counted once`}}},
		{name: "ALL", from: nvSelectSrc + " (str_case_equal(dev, \"all\"))",
			in: newInput("NVIDIA_VISIBLE_DEVICES=ALL"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`NVIDIA_VISIBLE_DEVICES="ALL": "ALL" read as "all" (NVIDIA compares it case-insensitively); write "all"`}}},
		{name: "only commas is refused (NVIDIA: no GPU)", from: nvImageSrc + " devicesFromEnvvars",
			in:  newInput("NVIDIA_VISIBLE_DEVICES=,"),
			err: `gpu-nri: container ns/pod/main: NVIDIA_VISIBLE_DEVICES=",": no device in the list, only commas`},
		{name: "'none' NVIDIA_VISIBLE_DEVICES returns empty for non-legacy image", from: nvImageTest + " TestGetDevicesFromEnvvar",
			in:   newInput("NVIDIA_VISIBLE_DEVICES=none"),
			want: &Request{Sources: env(SourceRequest{Where: whereEnv, None: true}), Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt}},

		// Volume mounts.
		{name: "imex devices are ignored", from: nvImageTest + " TestGetVisibleDevicesFromMounts",
			in: mounts("0", "imex/0", "1"),
			want: &Request{Sources: []SourceRequest{{Source: config.SourceVolumeMounts, Where: whereMounts, Devices: devs(idx("0", 0), idx("1", 1)), IMEXChannels: []int{0}}},
				Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt}},
		{name: "cdi devices from mounts, both forms", from: nvCDITest + ` TestDeviceRequests "cdi devices from mounts"; ` + nvImageSrc + " cdiDeviceMountRequest.qualifiedName",
			in: mounts("cdi/nvidia.com/gpu/0", "cdi/nvidia.com/gpu=1", "cdi/example.com/class=device"),
			want: &Request{Sources: []SourceRequest{{Source: config.SourceVolumeMounts, Where: whereMounts,
				Devices: devs(idx("nvidia.com/gpu=0", 0), idx("nvidia.com/gpu=1", 1), Device{Kind: KindCDI, Raw: "example.com/class=device", ID: "example.com/class=device"})}},
				Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt}},
		{name: "repeated mount device", from: nvSelectSrc + " (already_present)",
			in: mounts("0", "cdi/nvidia.com/gpu=0"),
			want: &Request{Sources: []SourceRequest{{Source: config.SourceVolumeMounts, Where: whereMounts, Devices: devs(idx("0", 0))}},
				Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt,
				Warnings: []string{`mount "/var/run/nvidia-container-devices/cdi/nvidia.com/gpu=0": "nvidia.com/gpu=0" repeats "0": counted once`}}},
		// NVIDIA passes "all" beside the ids on; gpu-nri refuses the mix.
		{name: "cdi devices are included", from: nvImageTest + " TestGetVisibleDevicesFromMounts",
			in:  mounts("0", "nvidia.com/gpu=all", "1"),
			err: `gpu-nri: container ns/pod/main: mount "/var/run/nvidia-container-devices/nvidia.com/gpu=all": "all" conflicts with the other requests of this source`},
		// NVIDIA drops every mount request for one void mount.
		{name: "void device results in no devices", from: nvImageTest + " TestGetVisibleDevicesFromMounts",
			in:  mounts("0", "void", "1"),
			err: `gpu-nri: container ns/pod/main: mount "/var/run/nvidia-container-devices/void": "void" cannot be combined with other items`},

		// Capabilities: NVIDIA's NewDriverCapabilities skips empty items.
		{name: "empty capability items", from: nvCapsTest + " TestDriverCapabilitiesList",
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=,compute,,utility,"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsEnv,
				Warnings: []string{
					`NVIDIA_DRIVER_CAPABILITIES=",compute,,utility,": item 1 is empty: ignored, as NVIDIA ignores it`,
					`NVIDIA_DRIVER_CAPABILITIES=",compute,,utility,": item 3 is empty: ignored, as NVIDIA ignores it`,
					`NVIDIA_DRIVER_CAPABILITIES=",compute,,utility,": item 5 is empty: ignored, as NVIDIA ignores it`}}},
		{name: "repeated capability", from: nvCapsTest + " (NewDriverCapabilities is a set)",
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility,compute"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsEnv,
				Warnings: []string{`NVIDIA_DRIVER_CAPABILITIES="compute,utility,compute": item 3 "compute" repeats: counted once`}}},
		// NVIDIA's capabilities are case-sensitive: its hook fails on ALL.
		{name: "capabilities ALL", from: nvHookTest + ` TestGetDriverCapabilities "Invalid capabilities panic"`,
			in:  newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=ALL"),
			err: `gpu-nri: container ns/pod/main: NVIDIA_DRIVER_CAPABILITIES="ALL": item 1: unknown capability "ALL" (known: compat32, compute, display, graphics, ngx, utility, video, all)`},
		// NVIDIA gives no capability at all for ",": gpu-nri refuses it.
		{name: "only commas in capabilities", from: nvCapsTest + " TestDriverCapabilitiesList",
			in:  newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=,"),
			err: `gpu-nri: container ns/pod/main: NVIDIA_DRIVER_CAPABILITIES=",": no capability in the list, only commas`},

		// MIG management: nvidia-container-cli skips empty items and compares
		// "all" case-insensitively; anything else fails.
		{name: "NVIDIA_MIG_CONFIG_DEVICES=ALL", from: nvMIGSrc,
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_MIG_CONFIG_DEVICES=ALL"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt, MIGConfig: true,
				Warnings: []string{`NVIDIA_MIG_CONFIG_DEVICES="ALL": "ALL" read as "all" (NVIDIA compares it case-insensitively); write "all"`}}},
		{name: "NVIDIA_MIG_MONITOR_DEVICES=all,", from: nvMIGSrc,
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_MIG_MONITOR_DEVICES=all,"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt, MIGMonitor: true,
				Warnings: []string{`NVIDIA_MIG_MONITOR_DEVICES="all,": item 2 is empty: ignored, as NVIDIA ignores it`}}},
		{name: "NVIDIA_MIG_CONFIG_DEVICES=all,0", from: nvMIGSrc + ` ("only 'all' devices are currently supported")`,
			in:  newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_MIG_CONFIG_DEVICES=all,0"),
			err: `gpu-nri: container ns/pod/main: NVIDIA_MIG_CONFIG_DEVICES="all,0": only "all" is supported`},

		// IMEX channels.
		{name: "imex channel specified (legacy)", from: nvImageTest + " TestImexChannelsFromEnvVar",
			in: newInput("CUDA_VERSION=1.2.3", "NVIDIA_IMEX_CHANNELS=3,4"),
			want: &Request{Sources: legacyAll, Capabilities: allCaps, CapabilitiesFrom: whereCapsLgcy, Requirements: []Requirement{legacyReq("1.2")},
				Legacy: true, IMEXChannels: []int{3, 4}}},
		{name: "imex channels, empty item and repeat", from: nvImageSrc + " devicesFromEnvvars",
			in: newInput("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_IMEX_CHANNELS=3,,4,3"),
			want: &Request{Sources: envAll, Capabilities: defCaps, CapabilitiesFrom: whereCapsDflt, IMEXChannels: []int{3, 4},
				Warnings: []string{`NVIDIA_IMEX_CHANNELS="3,,4,3": item 2 is empty: ignored, as NVIDIA ignores it`,
					`NVIDIA_IMEX_CHANNELS="3,,4,3": item 4 "3" repeats: counted once`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NotEmpty(t, tc.from, "every case names its NVIDIA source")
			opts := testOpts()
			if tc.opts != nil {
				opts = *tc.opts
			}
			r, err := Parse(tc.in, opts)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				var e *Error
				require.True(t, errors.As(err, &e))
				require.Nil(t, r)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, r)
		})
	}
}
