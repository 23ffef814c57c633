package ldcache

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzParse(f *testing.F) {
	f.Add(Write(sample))
	f.Add(oldFormat(sample, Write(sample), 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parses must survive a write/parse round trip.
		again, err := Parse(Write(entries))
		if err != nil {
			t.Fatalf("re-parse of written cache: %v", err)
		}
		if len(again) != len(entries) {
			t.Fatalf("round trip changed the entry count: %d -> %d", len(entries), len(again))
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpora under
// testdata/fuzz from real files (gcc-built libraries, caches written by the
// real ldconfig). Run with LDCACHE_WRITE_SEEDS=1; otherwise it skips.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("LDCACHE_WRITE_SEEDS") != "1" {
		t.Skip("set LDCACHE_WRITE_SEEDS=1 to regenerate testdata/fuzz")
	}
	dir := t.TempDir()
	writeSeed := func(target, name string, data []byte) {
		p := filepath.Join("testdata", "fuzz", target, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}

	// Libraries for FuzzSONAME.
	for _, l := range []struct {
		name  string
		flags []string
	}{
		{"elf64-soname", []string{"-s", "-nostdlib", "-Wl,-soname,libseed.so.1"}},
		{"elf32-soname", []string{"-s", "-m32", "-nostdlib", "-Wl,-soname,libseed32.so.1"}},
		{"elf64-nosoname", []string{"-s", "-nostdlib"}},
	} {
		p := gccLib(t, dir, l.name+".so", l.flags...)
		raw, err := os.ReadFile(p)
		require.NoError(t, err)
		writeSeed("FuzzSONAME", l.name, raw)
	}

	// Caches for FuzzParse: ours, and real ldconfig output over a tiny root.
	writeSeed("FuzzParse", "writer", Write(sample))
	writeSeed("FuzzParse", "old-plus-new", oldFormat(sample, Write(sample), 8))
	root := filepath.Join(dir, "root")
	libdir := filepath.Join(root, "usr/lib/x86_64-linux-gnu")
	require.NoError(t, os.MkdirAll(libdir, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/ld.so.conf"), []byte("/usr/lib/x86_64-linux-gnu\n"), 0o644))
	for _, so := range []string{"libseeda.so.1", "libseedb.so.2"} {
		p := gccLib(t, dir, so+".0", "-s", "-nostdlib", "-Wl,-soname,"+so)
		raw, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(libdir, so+".0"), raw, 0o755))
	}
	for _, format := range []string{"new", "compat", "old"} {
		out, err := exec.Command(ldconfig, "-r", root, "-c", format, "-f", "/etc/ld.so.conf", "-C", "/etc/ld.so.cache").CombinedOutput()
		require.NoError(t, err, "%s", out)
		raw, err := os.ReadFile(filepath.Join(root, "etc/ld.so.cache"))
		require.NoError(t, err)
		_, err = Parse(raw)
		require.NoError(t, err)
		writeSeed("FuzzParse", "ldconfig-"+format, raw)
	}
}
