package hook

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHooklessMounts(t *testing.T) {
	libs := []HooklessLib{
		{Path: "/host/lib/libcuda.so.550.54.14", SONAME: "libcuda.so.1"},
		{Path: "/host/lib/libnvidia-ml.so.550.54.14", SONAME: "libnvidia-ml.so.1"},
		{Path: "/host/lib/libnoname.so", SONAME: ""},
		{Path: "/host/lib/libcuda-dup.so", SONAME: "libcuda.so.1"},
	}
	for _, tc := range []struct {
		layout string
		want   []MountPlan
	}{
		{LayoutRHEL, []MountPlan{
			{"/host/lib/libcuda.so.550.54.14", "/usr/lib64/libcuda.so.1"},
			{"/host/lib/libcuda.so.550.54.14", "/usr/lib64/libcuda.so"},
			{"/host/lib/libnvidia-ml.so.550.54.14", "/usr/lib64/libnvidia-ml.so.1"},
			{"/host/lib/libcuda.so.550.54.14", "/usr/local/nvidia/lib64/libcuda.so.1"},
			{"/host/lib/libcuda.so.550.54.14", "/usr/local/nvidia/lib64/libcuda.so"},
			{"/host/lib/libnvidia-ml.so.550.54.14", "/usr/local/nvidia/lib64/libnvidia-ml.so.1"},
		}},
		{LayoutFallback, []MountPlan{
			{"/host/lib/libcuda.so.550.54.14", "/usr/local/nvidia/lib64/libcuda.so.1"},
			{"/host/lib/libcuda.so.550.54.14", "/usr/local/nvidia/lib64/libcuda.so"},
			{"/host/lib/libnvidia-ml.so.550.54.14", "/usr/local/nvidia/lib64/libnvidia-ml.so.1"},
		}},
		{"nonsense", nil},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			require.Equal(t, tc.want, HooklessMounts(libs, tc.layout))
		})
	}
	deb := hooklessMounts(libs[:1], hooklessDirs(LayoutDebian, "amd64"))
	require.Equal(t, "/usr/lib/x86_64-linux-gnu/libcuda.so.1", deb[0].Destination)
	arm := hooklessMounts(libs[:1], hooklessDirs(LayoutAuto, "arm64"))
	require.Len(t, arm, 6)
	require.Equal(t, "/usr/lib/aarch64-linux-gnu/libcuda.so.1", arm[0].Destination)
	require.Equal(t, "/usr/lib64/libcuda.so.1", arm[2].Destination)
	require.True(t, ValidLayout(LayoutAuto))
	require.False(t, ValidLayout("nonsense"))
}

func TestHooklessLibraryPath(t *testing.T) {
	for _, tc := range []struct{ current, want string }{
		{"", "/usr/local/nvidia/lib64"},
		{"/opt/x", "/usr/local/nvidia/lib64:/opt/x"},
		{"/usr/local/nvidia/lib:/usr/local/nvidia/lib64", "/usr/local/nvidia/lib:/usr/local/nvidia/lib64"},
		{"/usr/local/nvidia/lib64/", "/usr/local/nvidia/lib64/"},
	} {
		require.Equal(t, tc.want, HooklessLibraryPath(tc.current, HooklessDir), tc.current)
	}
}

func TestAliasNames(t *testing.T) {
	require.Equal(t, []string{"libcuda.so"}, AliasNames("libcuda.so.1"))
	require.Nil(t, AliasNames("libnvidia-ml.so.1"))
}
