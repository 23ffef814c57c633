package inventory_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

func TestDiscoverFakeHost(t *testing.T) {
	const ver = "550.54.14"
	tests := []struct {
		name  string
		fx    fixture
		check func(t *testing.T, inv *inventory.Inventory)
	}{
		{
			name: "one GPU",
			fx:   fixture{gpus: 1, version: ver},
			check: func(t *testing.T, inv *inventory.Inventory) {
				require.Len(t, inv.GPUs, 1)
				g := inv.GPUs[0]
				require.Equal(t, inventory.GPU{Index: 0, Minor: 0, UUID: uuidOf(0), PCIBusID: "0000:1a:00.0",
					Model: "NVIDIA H200",
					Node: inventory.DeviceNode{Path: "/dev/nvidia0", HostPath: "/dev/nvidia0", Type: "c",
						Major: 195, Minor: 0, FileMode: 0o666},
					DRI: []inventory.DeviceNode{
						{Path: "/dev/dri/card1", HostPath: "/dev/dri/card1", Type: "c", Major: 226, Minor: 1, FileMode: 0o666},
						{Path: "/dev/dri/renderD128", HostPath: "/dev/dri/renderD128", Type: "c", Major: 226, Minor: 128, FileMode: 0o666},
					}}, g)
			},
		},
		{
			name: "eight GPUs ordered by PCI bus id, not minor",
			fx:   fixture{gpus: 8, version: ver},
			check: func(t *testing.T, inv *inventory.Inventory) {
				require.Len(t, inv.GPUs, 8)
				for i, g := range inv.GPUs {
					require.Equal(t, i, g.Index)
					require.Equal(t, pciOf(i), g.PCIBusID)
					require.Equal(t, minorOf(i, 8), g.Minor)
					require.Equal(t, uuidOf(i), g.UUID)
					require.Equal(t, int64(g.Minor), g.Node.Minor)
					require.Len(t, g.DRI, 2)
				}
			},
		},
		{
			name: "MIG",
			fx:   fixture{gpus: 2, version: ver, mig: map[int]int{1: 3}},
			check: func(t *testing.T, inv *inventory.Inventory) {
				require.Empty(t, inv.GPUs[0].MIG)
				require.Len(t, inv.GPUs[1].MIG, 3)
				m := inv.GPUs[1].MIG[2]
				require.Equal(t, 1, m.GPU)
				require.Equal(t, 2, m.Index)
				require.Equal(t, 3, m.GI)
				require.Equal(t, 0, m.CI)
				require.Equal(t, []inventory.DeviceNode{
					{Path: "/dev/nvidia-caps/nvidia-cap114", HostPath: "/dev/nvidia-caps/nvidia-cap114", Type: "c", Major: 509, Minor: 114, FileMode: 0o666},
					{Path: "/dev/nvidia-caps/nvidia-cap115", HostPath: "/dev/nvidia-caps/nvidia-cap115", Type: "c", Major: 509, Minor: 115, FileMode: 0o666},
				}, m.Caps)
				require.Equal(t, &inventory.DeviceNode{Path: "/dev/nvidia-caps/nvidia-cap1", HostPath: "/dev/nvidia-caps/nvidia-cap1",
					Type: "c", Major: 509, Minor: 1, FileMode: 0o666}, inv.MIGConfig)
				// nvidia-cap2 does not exist yet: described from procfs (mode 292 = 0444).
				require.Equal(t, &inventory.DeviceNode{Path: "/dev/nvidia-caps/nvidia-cap2", HostPath: "/dev/nvidia-caps/nvidia-cap2",
					Type: "c", Major: 509, Minor: 2, FileMode: 0o444}, inv.MIGMonitor)
				got, ok := inv.MIGByIndex(1, 2)
				require.True(t, ok)
				require.Equal(t, m, *got)
				_, ok = inv.MIGByIndex(0, 0)
				require.False(t, ok)
				got, ok = inv.MIGByUUID("mig-" + uuidOf(1) + "/2/0")
				require.True(t, ok)
				require.Equal(t, 1, got.Index)
			},
		},
		{
			name: "control, IMEX and extra nodes",
			fx:   fixture{gpus: 1, version: ver},
			check: func(t *testing.T, inv *inventory.Inventory) {
				require.Equal(t, "550.54.14", inv.DriverVersion)
				require.Equal(t, int64(255), inv.Ctl.Minor)
				require.Equal(t, int64(254), inv.Modeset.Minor)
				require.Equal(t, int64(508), inv.UVM.Major)
				require.Equal(t, int64(1), inv.UVMTools.Minor)
				require.Len(t, inv.IMEXChannels, 2)
				require.Equal(t, "/dev/nvidia-caps-imex-channels/channel1", inv.IMEXChannels[1].Path)
				var gds []string
				for _, n := range inv.Extra["gds"] {
					gds = append(gds, n.Path)
				}
				require.Equal(t, []string{"/dev/nvidia-fs0", "/dev/nvidia-fs2", "/dev/nvidia-fs10"}, gds)
				require.Len(t, inv.Extra["mofed"], 2)
				require.Len(t, inv.Extra["nvswitch"], 2)
				require.Equal(t, "/dev/nvidia-nvswitchctl", inv.Extra["nvswitch"][1].Path)
				require.Len(t, inv.Extra["gdrcopy"], 1)
			},
		},
		{
			name: "libraries, binaries, firmware, config files",
			fx:   fixture{gpus: 1, version: ver},
			check: func(t *testing.T, inv *inventory.Inventory) {
				dir := "/usr/lib/x86_64-linux-gnu/"
				require.Equal(t, []string{dir + "libcuda.so." + ver, dir + "libnvidia-ptxjitcompiler.so." + ver},
					paths(inv.Libraries[inventory.Compute]))
				require.Equal(t, []string{dir + "libnvidia-ml.so." + ver}, paths(inv.Libraries[inventory.Utility]))
				require.Equal(t, []string{dir + "libnvidia-encode.so." + ver, dir + "vdpau/libvdpau_nvidia.so." + ver},
					paths(inv.Libraries[inventory.Video]))
				require.Equal(t, []string{dir + "libGLX_nvidia.so." + ver, dir + "libnvidia-egl-wayland.so.1.1.13"},
					paths(inv.Libraries[inventory.Graphics]))
				require.Equal(t, []string{dir + "libnvidia-ngx.so." + ver}, paths(inv.Libraries[inventory.NGX]))
				require.Empty(t, inv.Libraries[inventory.Compat32])
				cuda := inv.Libraries[inventory.Compute][0]
				require.Equal(t, inventory.File{HostPath: dir + "libcuda.so." + ver, Path: dir + "libcuda.so." + ver,
					SONAME: "libcuda.so.1", Capability: inventory.Compute, BaseCapability: inventory.Compute}, cuda)
				require.True(t, hasWarning(inv, "libnvidia-cfg.so.470.1.2, not version 550.54.14"), inv.Warnings)

				require.Equal(t, []string{"/usr/bin/nvidia-smi", "/usr/sbin/nvidia-persistenced"}, paths(inv.Binaries[inventory.Utility]))
				require.Equal(t, []string{"/usr/bin/nvidia-cuda-mps-control"}, paths(inv.Binaries[inventory.Compute]))
				require.Equal(t, []string{"/lib/firmware/nvidia/" + ver + "/gsp_ga10x.bin", "/lib/firmware/nvidia/" + ver + "/gsp_tu10x.bin"},
					paths(inv.Firmware))
				require.Equal(t, []string{
					"/usr/share/glvnd/egl_vendor.d/10_nvidia.json",
					"/usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json",
					"/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json",
					"/etc/vulkan/icd.d/nvidia_icd.json",
				}, paths(inv.ConfigFiles[inventory.Graphics]))
				require.Equal(t, []string{"/usr/share/X11/xorg.conf.d/10-nvidia.conf"}, paths(inv.ConfigFiles[inventory.Display]))
				require.Equal(t, []string{"/etc/OpenCL/vendors/nvidia.icd"}, paths(inv.ConfigFiles[inventory.Compute]))
			},
		},
		{
			name: "32-bit libraries",
			fx:   fixture{gpus: 1, version: ver, lib32: true},
			check: func(t *testing.T, inv *inventory.Inventory) {
				libs := inv.Libraries[inventory.Compat32]
				require.Len(t, libs, 5)
				for _, l := range libs {
					require.True(t, l.Lib32)
					require.Equal(t, inventory.Compat32, l.Capability)
					require.Contains(t, l.Path, "/usr/lib/i386-linux-gnu/")
				}
				require.Equal(t, inventory.Graphics, libs[0].BaseCapability) // libGLX_nvidia
				require.Equal(t, "libGLX_nvidia.so.1", libs[0].SONAME)
				require.Len(t, inv.Libraries[inventory.Compute], 2)
			},
		},
		{
			name: "no ld.so.cache: directory scan, ELF classes",
			fx:   fixture{gpus: 1, version: ver, lib32: true, omit: map[string]bool{"ldcache": true}},
			check: func(t *testing.T, inv *inventory.Inventory) {
				require.True(t, hasWarning(inv, "not through ld.so.cache"))
				require.Len(t, inv.Libraries[inventory.Compute], 2)
				require.Len(t, inv.Libraries[inventory.Compat32], 5)
				require.Len(t, inv.Libraries[inventory.Graphics], 2)
				// The 470 libnvidia-cfg is not the driver's; the scan skips it.
				require.Equal(t, []string{"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so." + ver}, paths(inv.Libraries[inventory.Utility]))
				require.Equal(t, "libnvidia-ml.so.1", inv.Libraries[inventory.Utility][0].SONAME)
			},
		},
		{
			name: "no uvm, no firmware, no DRI",
			fx:   fixture{gpus: 2, version: ver, omit: map[string]bool{"uvm": true, "firmware": true, "dri": true}},
			check: func(t *testing.T, inv *inventory.Inventory) {
				require.Nil(t, inv.UVM)
				require.Nil(t, inv.UVMTools)
				require.Empty(t, inv.Firmware)
				require.Empty(t, inv.GPUs[0].DRI)
				require.True(t, hasWarning(inv, "nvidia-uvm module not loaded"))
				require.True(t, hasWarning(inv, "no firmware for driver 550.54.14"))
				require.True(t, hasWarning(inv, "no DRI nodes"))
			},
		},
		{
			name: "another driver version: the other version's files are ignored",
			fx:   fixture{gpus: 1, version: "470.1.2"},
			check: func(t *testing.T, inv *inventory.Inventory) {
				require.Equal(t, "470.1.2", inv.DriverVersion)
				require.Equal(t, []string{"/usr/lib/x86_64-linux-gnu/libnvidia-cfg.so.470.1.2", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.470.1.2"},
					paths(inv.Libraries[inventory.Utility]))
				require.Equal(t, []string{"/lib/firmware/nvidia/470.1.2/gsp_ga10x.bin", "/lib/firmware/nvidia/470.1.2/gsp_old.bin",
					"/lib/firmware/nvidia/470.1.2/gsp_tu10x.bin"}, paths(inv.Firmware))
				require.False(t, hasWarning(inv, "libnvidia-cfg"), inv.Warnings)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, tt.fx)
			inv, err := inventory.Discover(h.host, inventory.WithNodeStater(h.nodes))
			require.NoError(t, err)
			require.NotEmpty(t, inv.Fingerprint)
			for _, g := range inv.GPUs {
				require.NotContains(t, g.Node.HostPath, h.dir, "host paths must not carry the plugin's view prefix")
			}
			tt.check(t, inv)
		})
	}
}

func TestDiscoverNoDriver(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14", omit: map[string]bool{"driver": true}})
	_, err := inventory.Discover(h.host, inventory.WithNodeStater(h.nodes))
	require.ErrorIs(t, err, inventory.ErrNoDriver)
	require.ErrorContains(t, err, "/proc/driver/nvidia/version")
}

func TestDiscoverBadGPUInformation(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 2, version: "550.54.14"})
	p := filepath.Join(h.dir, "proc/driver/nvidia/gpus", pciOf(1), "information")
	require.NoError(t, os.WriteFile(p, []byte("Model: X\nDevice Minor: lots\n"), 0o644))
	_, err := inventory.Discover(h.host, inventory.WithNodeStater(h.nodes))
	require.ErrorContains(t, err, `invalid Device Minor "lots"`)
	require.ErrorContains(t, err, "/proc/driver/nvidia/gpus/"+pciOf(1)+"/information")
}
