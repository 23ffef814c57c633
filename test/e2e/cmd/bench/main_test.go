package main

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

// The busy check skips the bench's own process chain (make bench-e2e, go run).
func TestAncestors(t *testing.T) {
	a := ancestors()
	require.True(t, a[os.Getpid()])
	require.True(t, a[os.Getppid()])
	require.False(t, a[1], "init is never skipped")
}

func TestMedianAndRatio(t *testing.T) {
	require.InDelta(t, 2.0, median([]time.Duration{3e6, 1e6, 2e6}), 1e-9)
	require.InDelta(t, 2.5, median([]time.Duration{4e6, 1e6, 2e6, 3e6}), 1e-9)
	require.Equal(t, "1.50", ratio(3, 2))
	require.Equal(t, "n/a", ratio(3, 0))
	require.Equal(t, "+1.5", overhead(3, 1.5))
	require.Equal(t, "-0.5", overhead(1, 1.5))
	require.Equal(t, "n/a", overhead(0, 1.5), "a variant that did not run has no overhead")
	require.Equal(t, "n/a", overhead(3, 0))
}

// A run is a measurement only when the load was at or under 1.0 as the
// rounds began and nothing else ran; the bench's own load during the rounds
// is recorded, not judged.
func TestNotMeasured(t *testing.T) {
	b := &bench{startLoad: 0.8, maxLoad: 1.5}
	require.False(t, b.notMeasured())
	b.startLoad = 1.3
	require.True(t, b.notMeasured())
	require.Equal(t, "1-minute load average 1.30 > 1.0 when the rounds began", b.busyReason())
	b.startLoad, b.busy = 0.5, []string{"another containerd was running"}
	require.True(t, b.notMeasured())
	require.Equal(t, "another containerd was running", b.busyReason())
}

func TestDescends(t *testing.T) {
	require.True(t, descends(os.Getpid(), os.Getpid()))
	require.True(t, descends(os.Getpid(), os.Getppid()))
	require.False(t, descends(os.Getppid(), os.Getpid()))
	require.False(t, descends(os.Getpid(), 1<<30))
}

// CRI-O's blocks use their loader's gpu-nri with CRI-O; the CRI-O and crun
// rows compare with their own runtime's plain container.
func TestBlocks(t *testing.T) {
	require.Equal(t, "hook", loaderOf("crio-hook"))
	require.Equal(t, "hookless", loaderOf("crio-hookless"))
	require.Equal(t, "hookless", loaderOf("hooklessdir"))
	require.True(t, isCRIO("crio") && isCRIO("crio-hook"))
	require.False(t, isCRIO("hook"))
	require.Equal(t, "crcplain", basePlain(variant{crio: true, crun: true}))
	require.Equal(t, "crplain", basePlain(variant{crio: true}))
	require.Equal(t, "cplain", basePlain(variant{crun: true}))
	require.Equal(t, "plain", basePlain(variant{}))
}

// BENCH_VARIANTS keeps a subset in the usual order and names unknown keys.
func TestSelectVariants(t *testing.T) {
	vs := []variant{{key: "plain"}, {key: "hook"}, {key: "hookless"}}
	all, err := selectVariants(vs, "")
	require.NoError(t, err)
	require.Len(t, all, 3)
	sub, err := selectVariants(vs, " hookless, plain")
	require.NoError(t, err)
	require.Equal(t, []variant{{key: "plain"}, {key: "hookless"}}, sub)
	_, err = selectVariants(vs, "plain,nope")
	require.EqualError(t, err, "BENCH_VARIANTS: unknown variant(s) nope; known: plain, hook, hookless")
}

// The create and start medians are reported beside create+start, which is
// the median of the per-sample sums.
func TestStats(t *testing.T) {
	b := &bench{samples: map[string][]sample{"k": {{0, 1e6, 2e6, 10e6}, {1, 1e6, 4e6, 3e6}, {2, 1e6, 3e6, 5e6}}}}
	n, runp, create, start, cs := b.stats("k")
	require.Equal(t, 3, n)
	require.InDelta(t, 1.0, runp, 1e-9)
	require.InDelta(t, 3.0, create, 1e-9)
	require.InDelta(t, 5.0, start, 1e-9)
	require.InDelta(t, 8.0, cs, 1e-9)
}

// Per-round ratios pair samples of the same round only; a round where
// either sample failed is left out.
func TestPairedRatios(t *testing.T) {
	b := &bench{samples: map[string][]sample{
		"plain": {{0, 0, 1e6, 9e6}, {1, 0, 2e6, 18e6}, {3, 0, 1e6, 9e6}},
		"gpu":   {{0, 0, 1e6, 10e6}, {1, 0, 2e6, 20e6}, {2, 0, 1e6, 99e6}, {3, 0, 1e6, 12e6}},
	}}
	require.InDeltaSlice(t, []float64{1.1, 1.1, 1.3}, b.pairedRatios("gpu", "plain"), 1e-9)
	require.Equal(t, "-", b.paired("gpu", "plain"), "3 pairs give no 95 % interval")
}

// BENCH_EXPERIMENT names one known experiment, whose variants appear only
// when it is set up.
func TestExperiment(t *testing.T) {
	t.Setenv("BENCH_EXPERIMENT", "")
	e, err := experiment()
	require.NoError(t, err)
	require.Empty(t, e)
	require.Empty(t, (&bench{}).experimentVariants())
	t.Setenv("BENCH_EXPERIMENT", "dirmount")
	e, err = experiment()
	require.NoError(t, err)
	require.Equal(t, "dirmount", e)
	t.Setenv("BENCH_EXPERIMENT", "farm")
	_, err = experiment()
	require.EqualError(t, err, `BENCH_EXPERIMENT="farm": the experiments are dirmount, procs and nrifloor`)
	vs := (&bench{dm: &dirmount{}}).experimentVariants()
	want := 6 // xhwcaps is x86-64 only
	if runtime.GOARCH == "amd64" {
		want = 7
	}
	require.Len(t, vs, want)
	require.Equal(t, map[string]string{"cdi.k8s.io/xdir": "xdir.example.com/gpu=0,xdir.example.com/gpu=2"}, vs[1].ctrAnn)
	for _, v := range vs {
		require.Equal(t, "none", v.block, v.key)
		require.True(t, v.gpu, v.key)
		require.Equal(t, v.key != "xnodes", v.loads, v.key)
		require.Equal(t, v.key == "xmounts", v.noNodes, v.key)
	}
	require.True(t, isLibDir("/usr/lib64"))
	require.False(t, isLibDir("/usr/lib/xorg/modules"))

	// procs: the hookless blocks again, GOMAXPROCS=1 in gpu-nri's process.
	b := &bench{exp: "procs", env: &harness.Env{}}
	require.Equal(t, append(append([]string(nil), blocks...), "hookless-p1", "hooklessdir-p1"), b.ctdBlocks())
	require.Equal(t, blocks, (&bench{}).ctdBlocks())
	for _, v := range b.experimentVariants() {
		require.Contains(t, procs1Blocks, v.block, v.key)
		require.Equal(t, "hookless", loaderOf(v.block), v.key)
		require.Equal(t, v.key == "hooklessdir-p1", b.libraryDirOf(v.block) != "", v.key)
		require.Equal(t, "lplain-p1", blockPlain(v), v.key)
	}

	// nrifloor: dirmount's xdir through containerd CDI, and its edits
	// returned by the smallest NRI plugin in a block of its own.
	t.Setenv("BENCH_EXPERIMENT", "nrifloor")
	e, err = experiment()
	require.NoError(t, err)
	require.Equal(t, "nrifloor", e)
	f := &bench{exp: "nrifloor", dm: &dirmount{}}
	require.Equal(t, append(append([]string(nil), blocks...), floorBlock), f.ctdBlocks())
	keys := map[string]variant{}
	for _, v := range f.experimentVariants() {
		keys[v.key] = v
	}
	require.Len(t, keys, 3)
	require.Equal(t, "none", keys["xdir"].block)
	require.Equal(t, floorBlock, keys["fplain"].block)
	require.False(t, keys["fplain"].gpu)
	require.Equal(t, map[string]string{floorAnnotation: "0,2"}, keys["fxdir"].podAnn)
	require.True(t, keys["fxdir"].gpu && keys["fxdir"].loads)
	require.Equal(t, "fplain", blockPlain(keys["fxdir"]))
}

// BENCH_SAMPLES: one TSV line per timed sample, in milliseconds.
func TestRawSamples(t *testing.T) {
	b := &bench{samples: map[string][]sample{"plain": {{round: 3, runp: 80 * time.Millisecond, create: 10500 * time.Microsecond, start: 65 * time.Millisecond}}}}
	require.Equal(t, "variant\tround\trunp_ms\tcreate_ms\tstart_ms\nplain\t3\t80.000\t10.500\t65.000\n",
		b.rawSamples([]variant{{key: "plain"}, {key: "hook"}}))
}
