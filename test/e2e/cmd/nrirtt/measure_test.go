package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestQuantile(t *testing.T) {
	d := []time.Duration{5 * time.Microsecond, time.Microsecond, 3 * time.Microsecond, 2 * time.Microsecond, 4 * time.Microsecond}
	require.Equal(t, 3.0, quantile(d, 0.5))
	require.Equal(t, 5.0, quantile(d, 0.9))
	require.Equal(t, 1.0, quantile(d, 0))
	require.Equal(t, time.Microsecond, d[1], "the samples are not reordered")
}

func TestCPUTime(t *testing.T) {
	c, err := cpuTime(os.Getpid())
	require.NoError(t, err)
	busy := time.Now()
	for time.Since(busy) < 50*time.Millisecond { // burn CPU: at least a few ticks
	}
	c2, err := cpuTime(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, c2-c, 20*time.Millisecond, "50 ms of spinning shows in utime+stime")
	_, err = cpuTime(1 << 30)
	require.Error(t, err)
}

// The requests are what the plugins are asked: GPU ones by each plugin's
// own annotation, the others by none, each round with its own ids.
func TestRequest(t *testing.T) {
	for _, v := range variants() {
		r := request(v, 7)
		ann := r.Pod.GetAnnotations()
		_, floor := ann[floorAnnotation]
		_, gpunri := ann["gpus.gpu-nri.io/pod"]
		require.Equal(t, v.gpu && v.runtime == "floor", floor, v.key)
		require.Equal(t, v.gpu && v.runtime == "gpunri", gpunri, v.key)
		require.Equal(t, r.Pod.GetId(), r.Container.GetPodSandboxId())
		require.NotEqual(t, request(v, 8).Container.GetId(), r.Container.GetId())
		require.Len(t, r.Container.GetMounts(), 10)
	}
}

func TestReport(t *testing.T) {
	r := &results{rounds: 40, samples: map[string][]time.Duration{}, cpu: map[string]time.Duration{"floor": 80 * time.Millisecond, "gpunri": 120 * time.Millisecond},
		idleCPU: map[string]time.Duration{"gpunri": 10 * time.Millisecond}, idle: 10 * time.Second,
		perProc: map[string]int{"floor": 80, "gpunri": 80}, mounts: map[string]int{"fgpu": 10, "gpu": 10}, libdir: true, start: time.Now()}
	base := map[string]time.Duration{"none": 2, "fplain": 290, "fgpu": 330, "plain": 280, "gpu": 400}
	for i := range 40 {
		for k, us := range base {
			r.samples[k] = append(r.samples[k], (us+time.Duration(i%3))*time.Microsecond)
		}
	}
	var b strings.Builder
	require.NoError(t, r.report(&b))
	out := b.String()
	require.Contains(t, out, "| gpu: gpu-nri, GPUs 0,2 by pod annotation | 401 | 402 | +398 [+398, +398] | 10 |")
	require.Contains(t, out, "gpu-nri over nrifloor, per round [95 %] (µs): untouched container -10 [-10, -10], GPU container +70 [+70, +70].")
	require.Contains(t, out, "1500 µs per request; idle for 10s after them: 10 ms")
	require.Contains(t, out, "gpu-nri: hookless with injection.libraryDir.")
	require.Contains(t, out, "Requests back to back.")
	require.NotContains(t, out, "NaN")
	r.gap = 20 * time.Millisecond
	b.Reset()
	require.NoError(t, r.report(&b))
	require.Contains(t, b.String(), "Requests 20ms apart (the plugins idle between them).")
}

// The cold report pairs each process's occurrence with the other
// process's in the same restart cycle, and with its own warm reference.
func TestColdReport(t *testing.T) {
	r := &coldResults{cycles: 20, gap: coldGap, libdir: true, start: time.Now(), samples: map[string]map[string][][]time.Duration{}}
	// µs by process, kind, occurrence (the last: warm).
	base := map[string]map[string][]time.Duration{
		"floor":  {"plain": {800, 560, 560, 550}, "gpu": {900, 670, 670, 630}},
		"gpunri": {"plain": {700, 540, 540, 550}, "gpu": {1000, 800, 780, 730}},
	}
	for proc, kinds := range base {
		r.samples[proc] = map[string][][]time.Duration{}
		for kind, occ := range kinds {
			rows := make([][]time.Duration, len(occ))
			for i, us := range occ {
				for c := range r.cycles {
					rows[i] = append(rows[i], (us+time.Duration(c%3))*time.Microsecond)
				}
			}
			r.samples[proc][kind] = rows
		}
	}
	require.Equal(t, "+100 [+100, +100]", r.paired("gpu", 0))
	require.Equal(t, "-100 [-100, -100]", r.paired("plain", 0))
	require.Equal(t, "+270 [+270, +270]", r.overWarm("gpunri", "gpu", 0))
	var b strings.Builder
	require.NoError(t, r.report(&b))
	out := b.String()
	require.Contains(t, out, "20 restarts of each process")
	require.Contains(t, out, "| gpu | 1 | 901 | 1001 | +100 [+100, +100] | +270 [+270, +270] | +270 [+270, +270] |")
	require.Contains(t, out, "| gpu | warm (after 200 more) | 631 | 731 | +100 [+100, +100] | - | - |")
}
