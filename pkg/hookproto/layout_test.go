package hookproto

import (
	"slices"
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
		layout Layout
		want   []MountPlan
	}{
		{LayoutRHEL, []MountPlan{
			{"/host/lib/libcuda.so.550.54.14", "/usr/lib64/libcuda.so.1"},
			{"/host/lib/libcuda.so.550.54.14", "/usr/lib64/libcuda.so"},
			{"/host/lib/libnvidia-ml.so.550.54.14", "/usr/lib64/libnvidia-ml.so.1"},
		}},
		{LayoutFallback, []MountPlan{
			{"/host/lib/libcuda.so.550.54.14", "/usr/local/nvidia/lib64/libcuda.so.1"},
			{"/host/lib/libcuda.so.550.54.14", "/usr/local/nvidia/lib64/libcuda.so"},
			{"/host/lib/libnvidia-ml.so.550.54.14", "/usr/local/nvidia/lib64/libnvidia-ml.so.1"},
		}},
		{"nonsense", nil},
	} {
		t.Run(string(tc.layout), func(t *testing.T) {
			require.Equal(t, tc.want, HooklessMounts(libs, tc.layout))
		})
	}
	deb := hooklessMounts(libs[:1], LayoutDebian.dirs("amd64"))
	require.Equal(t, []MountPlan{
		{"/host/lib/libcuda.so.550.54.14", "/usr/lib/x86_64-linux-gnu/libcuda.so.1"},
		{"/host/lib/libcuda.so.550.54.14", "/usr/lib/x86_64-linux-gnu/libcuda.so"},
	}, deb, "the default directory only: no HooklessDir mounts outside the fallback layout")
	arm := hooklessMounts(libs[:1], LayoutAuto.dirs("arm64"))
	require.Len(t, arm, 4)
	require.Equal(t, "/usr/lib/aarch64-linux-gnu/libcuda.so.1", arm[0].Destination)
	require.Equal(t, "/usr/lib64/libcuda.so.1", arm[2].Destination)
}

// TestLayouts: every listed layout parses back to itself and has
// directories on both architectures, HooklessDir in the fallback layout
// only; anything else is refused with the list in the error.
func TestLayouts(t *testing.T) {
	require.Equal(t, []Layout{"auto", "debian", "rhel", "fallback"}, Layouts())
	for _, l := range Layouts() {
		t.Run(string(l), func(t *testing.T) {
			got, err := ParseLayout(string(l))
			require.NoError(t, err)
			require.Equal(t, l, got)
			for _, arch := range []string{"amd64", "arm64"} {
				d := l.dirs(arch)
				require.NotEmpty(t, d, arch)
				require.Equal(t, l == LayoutFallback, slices.Contains(d, HooklessDir), arch)
			}
		})
	}
	for _, bad := range []string{"", "Auto", "nonsense"} {
		t.Run("refused "+bad, func(t *testing.T) {
			_, err := ParseLayout(bad)
			require.EqualError(t, err, `hookless layout "`+bad+`": want one of auto, debian, rhel, fallback`)
		})
	}
	require.Nil(t, LayoutAuto.dirs("riscv64"), "no multiarch triplet known")
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

// TestCacheNames: the SONAME path, and only the development-name aliases
// (ldconfig lists libcuda.so, never libGLX_indirect.so.0: pkg/hook's
// TestMergedCacheMatchesLdconfig checks the rule against ldconfig itself).
func TestCacheNames(t *testing.T) {
	d := "/usr/lib/x86_64-linux-gnu/"
	require.Equal(t, []Soname{{Path: d + "libcuda.so.1"}, {Path: d + "libcuda.so"}}, CacheNames(d+"libcuda.so.550.54.14", "libcuda.so.1", false))
	require.Equal(t, []Soname{{Path: d + "libGLX_nvidia.so.0"}}, CacheNames(d+"libGLX_nvidia.so.550.54.14", "libGLX_nvidia.so.0", false))
	require.Equal(t, []Soname{{Path: "/usr/lib/i386-linux-gnu/libnvidia-ml.so.1", Lib32: true}}, CacheNames("/usr/lib/i386-linux-gnu/libnvidia-ml.so.550.54.14", "libnvidia-ml.so.1", true))
	require.Equal(t, []Soname{{Path: d + "libnosoname.so"}}, CacheNames(d+"libnosoname.so", "", false))
}
