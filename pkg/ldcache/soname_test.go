package ldcache

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// gccLib compiles a trivial shared library with gcc; extra are added
// flags. It skips the test when gcc (or the requested mode) is missing.
func gccLib(t testing.TB, dir, name string, extra ...string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("gcc not available: %v", err)
	}
	src := filepath.Join(dir, name+".c")
	require.NoError(t, os.WriteFile(src, []byte("int sim_fn(void) { return 42; }\n"), 0o644))
	out := filepath.Join(dir, name)
	args := append([]string{"-shared", "-fPIC", "-o", out, src}, extra...)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Skipf("gcc %s: %v: %s", strings.Join(args, " "), err, b)
	}
	return out
}

func TestSONAME(t *testing.T) {
	dir := t.TempDir()
	lib64 := gccLib(t, dir, "lib64.so", "-Wl,-soname,libsim64.so.1")
	lib32 := gccLib(t, dir, "lib32.so", "-m32", "-nostdlib", "-Wl,-soname,libsim32.so.7")
	noSoname := gccLib(t, dir, "nosoname.so")
	stripped := gccLib(t, dir, "stripped.so", "-s", "-Wl,-soname,libstripped.so.2")
	text := filepath.Join(dir, "text")
	require.NoError(t, os.WriteFile(text, []byte("not an elf"), 0o644))
	raw64, err := os.ReadFile(lib64)
	require.NoError(t, err)
	truncated := filepath.Join(dir, "truncated.so")
	require.NoError(t, os.WriteFile(truncated, raw64[:200], 0o644))

	tests := []struct {
		name, path, want string
		wantErr          error
		wantErrText      string
	}{
		{name: "64-bit", path: lib64, want: "libsim64.so.1"},
		{name: "32-bit", path: lib32, want: "libsim32.so.7"},
		{name: "stripped symbols", path: stripped, want: "libstripped.so.2"},
		{name: "no DT_SONAME", path: noSoname, wantErr: ErrNoSONAME},
		{name: "not ELF", path: text, wantErrText: "not an ELF file"},
		{name: "truncated", path: truncated, wantErrText: "truncated.so"},
		{name: "missing", path: filepath.Join(dir, "missing"), wantErr: os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSONAME(tc.path)
			switch {
			case tc.wantErr != nil:
				require.ErrorIs(t, err, tc.wantErr)
			case tc.wantErrText != "":
				require.ErrorContains(t, err, tc.wantErrText)
			default:
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
			}
		})
	}
}

func TestSONAMESystemLibc(t *testing.T) {
	const libc = "/lib/x86_64-linux-gnu/libc.so.6"
	if _, err := os.Stat(libc); err != nil {
		t.Skipf("no %s: %v", libc, err)
	}
	got, err := ReadSONAME(libc)
	require.NoError(t, err)
	require.Equal(t, "libc.so.6", got)
}

func FuzzSONAME(f *testing.F) {
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := SONAME(bytes.NewReader(data))
		if err == nil && s == "" {
			t.Fatal("empty SONAME without error")
		}
	})
}
