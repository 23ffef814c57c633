package hookproto

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestArgsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		args []string
	}{
		{"empty", Options{}, []string{"gpu-nri", "hook"}},
		{"hide params only", Options{HideParams: true}, []string{"gpu-nri", "hook", "--hide-params"}},
		{"everything", Options{
			Ldconfig:      "/sbin/ldconfig",
			Folders:       []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/i386-linux-gnu"},
			Links:         []Link{{Target: "libcuda.so.550.54.14", Link: "/usr/lib/x86_64-linux-gnu/libcuda.so.1"}},
			Sonames:       []Soname{{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.1"}, {Path: "/usr/lib/i386-linux-gnu/libcuda.so.1", Lib32: true}},
			DriverVersion: "550.54.14",
			CUDACompat:    true,
			HideParams:    true,
		}, []string{
			"gpu-nri", "hook", "--ldconfig", "/sbin/ldconfig",
			"--folder", "/usr/lib/x86_64-linux-gnu", "--folder", "/usr/lib/i386-linux-gnu",
			"--link", "libcuda.so.550.54.14::/usr/lib/x86_64-linux-gnu/libcuda.so.1",
			"--soname", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "--soname32", "/usr/lib/i386-linux-gnu/libcuda.so.1",
			"--driver-version", "550.54.14", "--cuda-compat", "--hide-params",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.o.Args("gpu-nri")
			require.Equal(t, tc.args, args)
			got, err := ParseArgs(args[2:])
			require.NoError(t, err)
			require.Equal(t, tc.o, got)
		})
	}
}

func TestParseArgsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--frobnicate"}, `hook: unknown argument "--frobnicate"`},
		{"missing value", []string{"--ldconfig"}, "hook: --ldconfig needs a value"},
		{"link without separator", []string{"--link", "a"}, `hook: --link "a": want TARGET::LINK`},
		{"link without target", []string{"--link", "::/a"}, `hook: --link "::/a": want TARGET::LINK`},
		{"folder without ldconfig", []string{"--folder", "/a"}, "hook: --folder needs --ldconfig"},
		{"relative soname", []string{"--soname", "libcuda.so.1"}, `hook: --soname "libcuda.so.1": want an absolute file path on one line`},
		{"soname directory", []string{"--soname32", "/usr/lib/"}, `hook: --soname32 "/usr/lib/": want an absolute file path on one line`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseArgs(tc.args)
			require.EqualError(t, err, tc.want)
		})
	}
}
