package realdriver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A postinst shaped like nvidia-alternative's (the lines Alternatives reads).
const postinst = `#!/bin/sh
TRIPLETS="/ /i386-linux-gnu/ /x86_64-linux-gnu/"
if [ "$1" = "triggered" ]; then
	slaves="
		$(add_slave /usr/bin/nvidia-smi nvidia-smi /usr/lib/nvidia/current/nvidia-smi)
		$(add_multiarch_slave /usr/lib "" libcuda.so.1 /usr/lib nvidia/current/)
		$(add_multiarch_slave /usr/lib vdpau/ libvdpau_nvidia.so.1 /usr/lib nvidia/current/)
		$(add_slave /usr/bin/nvidia-settings nvidia-settings /usr/lib/nvidia/current/nvidia-settings)
"
	libnvidia_ml_so_slave="$(add_multiarch_slave /usr/lib "" libnvidia-ml.so /usr/lib nvidia/current/)"
fi
`

func TestAlternatives(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"/usr/lib/nvidia/current/nvidia-smi", "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1",
		"/usr/lib/x86_64-linux-gnu/nvidia/current/libvdpau_nvidia.so.1", "/usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-ml.so"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, f), nil, 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	p := filepath.Join(t.TempDir(), "postinst")
	require.NoError(t, os.WriteFile(p, []byte(postinst), 0o644))

	alts, err := Alternatives(p, root)
	require.NoError(t, err)
	// The master, then the slaves whose source exists and whose link's
	// directory exists (no vdpau/ here; no nvidia-settings; the
	// nvml.h-only slave is not listed).
	require.Equal(t, []Alternative{
		{Link: "/usr/lib/nvidia/nvidia", Name: "nvidia", Source: "/usr/lib/nvidia/current"},
		{Link: "/usr/bin/nvidia-smi", Name: "nvidia--nvidia-smi", Source: "/usr/lib/nvidia/current/nvidia-smi"},
		{Link: "/usr/lib/x86_64-linux-gnu/libcuda.so.1", Name: "nvidia--libcuda.so.1-x86_64-linux-gnu",
			Source: "/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1"},
	}, alts)

	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/lib/x86_64-linux-gnu/vdpau"), 0o755))
	alts, err = Alternatives(p, root)
	require.NoError(t, err)
	require.Contains(t, alts, Alternative{Link: "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.1",
		Name: "nvidia--libvdpau_nvidia.so.1-x86_64-linux-gnu", Source: "/usr/lib/x86_64-linux-gnu/nvidia/current/libvdpau_nvidia.so.1"})
}

func TestRunPath(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.535.261.03":         "/usr/lib/x86_64-linux-gnu/libcuda.so.535.261.03",
		"/usr/lib/x86_64-linux-gnu/nvidia/current/libvdpau_nvidia.so.535.261.03": "/usr/lib/x86_64-linux-gnu/vdpau/libvdpau_nvidia.so.535.261.03",
		"/usr/lib/nvidia/current/nvidia-smi":                                     "/usr/bin/nvidia-smi",
		"/usr/lib/nvidia/current/nvidia_drv.so":                                  "/usr/lib/xorg/modules/drivers/nvidia_drv.so",
		"/usr/sbin/nvidia-cuda-mps-server":                                       "/usr/bin/nvidia-cuda-mps-server",
		"/usr/lib/firmware/nvidia/550.163.01/gsp_ga10x.bin":                      "/lib/firmware/nvidia/550.163.01/gsp_ga10x.bin",
		"/usr/lib/x86_64-linux-gnu/libnvidia-glcore.so.535.261.03":               "",
	} {
		require.Equal(t, want, runPath(in), in)
	}
}
