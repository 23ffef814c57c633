//go:build linux

package hook

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/stretchr/testify/require"
)

// benchOptions: 29 links, as NVIDIA's create-symlinks makes for a typical
// driver (testbed.md), plus the real libcuda links.
func benchOptions() hookproto.Options {
	o := driverOptions()
	for i := range 27 {
		o.Links = append(o.Links, hookproto.Link{Target: fmt.Sprintf("libnvidia-x%d.so.999.88.77", i), Link: fmt.Sprintf("/usr/lib/gpu-nri/libnvidia-x%d.so.1", i)})
	}
	return o
}

// freshRoots prepares n glibc roots outside the timer.
func freshRoots(b *testing.B, n int) []string {
	b.StopTimer()
	defer b.StartTimer()
	roots := make([]string, n)
	for i := range roots {
		roots[i] = glibcRoot(b)
	}
	return roots
}

// BenchmarkApplyFresh is a first container start: links, configuration,
// isolated ldconfig, cache written.
func BenchmarkApplyFresh(b *testing.B) {
	requireRoot(b)
	roots := freshRoots(b, b.N)
	b.ResetTimer()
	for i := range b.N {
		if _, err := apply(context.Background(), roots[i], benchOptions()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyFreshMerged is a first container start on a built image
// with a fresh cache: links, configuration, our entries merged into the
// image's cache, no ldconfig.
func BenchmarkApplyFreshMerged(b *testing.B) {
	requireRoot(b)
	b.StopTimer()
	roots := make([]string, b.N)
	for i := range roots {
		roots[i] = imageRoot(b)
	}
	o := mergedBenchOptions()
	b.StartTimer()
	for i := range b.N {
		if rep, err := apply(context.Background(), roots[i], o); err != nil || !rep.CacheMerged {
			b.Fatal(err, rep)
		}
	}
}

// mergedBenchOptions is benchOptions with the cache names the plugin passes.
func mergedBenchOptions() hookproto.Options {
	o := benchOptions()
	for _, l := range o.Links {
		if strings.HasSuffix(l.Link, ".so.1") {
			o.Sonames = append(o.Sonames, hookproto.Soname{Path: l.Link})
		}
	}
	o.Sonames = append(o.Sonames, hookproto.Soname{Path: "/usr/lib/gpu-nri/libcuda.so"})
	return o
}

// BenchmarkApplyUnchanged is a restart: everything in place, no ldconfig.
func BenchmarkApplyUnchanged(b *testing.B) {
	requireRoot(b)
	root := glibcRoot(b)
	_, err := apply(context.Background(), root, benchOptions())
	require.NoError(b, err)
	b.ResetTimer()
	for range b.N {
		rep, err := apply(context.Background(), root, benchOptions())
		if err != nil || rep.Ldconfig {
			b.Fatal(err, rep)
		}
	}
}

// BenchmarkLinks is the 29 links alone on a fresh root.
func BenchmarkLinks(b *testing.B) {
	requireRoot(b)
	roots := freshRoots(b, b.N)
	o := benchOptions()
	o.Folders = nil
	b.ResetTimer()
	for i := range b.N {
		if _, err := apply(context.Background(), roots[i], o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLdconfigIsolated is the namespace set-up plus the host ldconfig.
func BenchmarkLdconfigIsolated(b *testing.B) {
	requireRoot(b)
	root := glibcRoot(b)
	_, err := apply(context.Background(), root, benchOptions())
	require.NoError(b, err)
	r, err := openRoot(root)
	require.NoError(b, err)
	defer r.Close()
	b.ResetTimer()
	for range b.N {
		if _, err := runLdconfig(context.Background(), r, hostLdconfigPath); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHookProcessTiming runs a whole static hook process (testdata/hookbin:
// ParseArgs + Run, CGO_ENABLED=0) the way runc does, on fresh roots, and
// logs the median. It fails only above a generous bound (shared CI
// machines); the target is <= 10 ms (issue 14, docs/hook.md). Rerun it on a
// quiet machine, with TMPDIR on a journaled filesystem (on an ext4 without a
// journal fresh roots pay ext4's scan of recently deleted inodes, tens of ms):
// go test -count=1 -run TestHookProcessTiming -v ./pkg/hook/.
func TestHookProcessTiming(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("timing test skipped in -short mode")
	}
	goBin := requireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "hookbin")
	cmd := exec.Command(goBin, "build", "-o", bin, "./testdata/hookbin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	const rounds = 15
	type series struct {
		name         string
		root         func(testing.TB) string
		o            hookproto.Options
		fresh, again []time.Duration
	}
	all := []*series{
		{name: "29 links + conf + our entries merged into the image's fresh cache", root: imageRoot, o: mergedBenchOptions()},
		{name: "29 links + conf + isolated ldconfig (image without a cache)", root: func(tb testing.TB) string { return glibcRoot(tb) }, o: benchOptions()},
	}
	for range rounds {
		for _, s := range all {
			bundle := t.TempDir()
			root := s.root(t)
			cfg, _ := json.Marshal(map[string]any{"root": map[string]any{"path": root}})
			require.NoError(t, os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644))
			state := `{"ociVersion":"1.2.0","id":"x","status":"creating","pid":1,"bundle":"` + bundle + `"}`
			args := s.o.Args(bin)
			for _, d := range []*[]time.Duration{&s.fresh, &s.again} {
				c := exec.Command(bin, args[1:]...)
				c.Env = []string{}
				c.Stdin = strings.NewReader(state)
				start := time.Now()
				out, err := c.CombinedOutput()
				*d = append(*d, time.Since(start))
				require.NoError(t, err, string(out))
			}
		}
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	for _, s := range all {
		t.Logf("whole hook process, %s: median %v (min %v, max %v); restart (nothing to do): median %v",
			s.name, median(s.fresh), s.fresh[0], s.fresh[len(s.fresh)-1], median(s.again))
		require.Less(t, median(s.fresh), 200*time.Millisecond)
	}
}
