package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// coldGap is the pause before each request of the cold mode when
// NRIRTT_GAP is not set: about one sample of the end-to-end bench (a pod's
// create, start and removal), so that the requests come as the bench
// sends them to a plugin it has just registered.
const coldGap = 80 * time.Millisecond

// coldSettle is how long the cold mode waits after a restarted plugin's
// /readyz before its first request: the runtime routes requests to it
// once it has processed the plugin's synchronization, and gpu-nri builds
// its library directories right after its start.
const coldSettle = 500 * time.Millisecond

// coldRequests is how many requests each freshly started process answers
// in a cycle, alternating an untouched and a GPU container.
const coldRequests = 6

// coldResults are a cold run's timings: for each plugin process
// ("floor", "gpunri"), each variant kind ("plain", "gpu") and each
// occurrence of that kind after the process's start (0: its first
// request of that kind; the last index: the warm reference), the samples
// in cycle order.
type coldResults struct {
	cycles  int
	samples map[string]map[string][][]time.Duration
	start   time.Time
	elapsed time.Duration
	gap     time.Duration
	load    [2]string
	libdir  bool
}

// key is the nrirtt variant of kind k for plugin process proc.
func (k coldKind) key(proc string) string {
	if proc == "gpunri" {
		return k.gpunri
	}
	return k.floor
}

// coldKind is one of the two containers of a cold cycle.
type coldKind struct{ kind, floor, gpunri string }

// kinds are the two containers of a cold cycle, by nrirtt variant key
// per plugin process.
var coldKinds = []coldKind{
	{"plain", "fplain", "plain"},
	{"gpu", "fgpu", "gpu"},
}

// cold measures what the end-to-end bench does to a plugin and the steady
// state never does: each of cycles rounds restarts both plugin processes
// (in a rotating order) and times the first coldRequests requests each new
// process answers, gap apart, alternating the untouched and the GPU
// container (which comes first rotates too, the same for both processes
// of a cycle, so that they pair). Then it warms the process with 200
// back-to-back requests and times one of each kind gap apart: the warm
// reference at the same spacing. Every GPU answer is checked, and must
// hold as many mounts as the warm answer (gpu-nri's library directory).
func (s *session) cold(ctx context.Context, cycles int, gap time.Duration) (*coldResults, error) {
	warmMounts := map[string]int{}
	for _, k := range []string{"fgpu", "gpu"} {
		_, n, err := s.sendMounts(ctx, variantByKey(k), -1)
		if err != nil {
			return nil, err
		}
		warmMounts[k] = n
	}
	r := &coldResults{cycles: cycles, gap: gap, samples: map[string]map[string][][]time.Duration{}}
	per := coldRequests / 2
	for _, proc := range []string{"floor", "gpunri"} {
		r.samples[proc] = map[string][][]time.Duration{}
		for _, k := range coldKinds {
			r.samples[proc][k.kind] = make([][]time.Duration, per+1)
		}
	}
	r.load[0] = loadavg()
	r.start = time.Now()
	for c := range cycles {
		procs := []string{"floor", "gpunri"}
		if c%2 == 1 {
			procs[0], procs[1] = procs[1], procs[0]
		}
		gpuFirst := (c/2)%2 == 0
		for _, proc := range procs {
			if err := s.restart[proc](); err != nil {
				return nil, fmt.Errorf("cycle %d: restart %s: %w", c, proc, err)
			}
			time.Sleep(coldSettle)
			seen := map[string]int{}
			for i := range coldRequests {
				k := coldKinds[i%2]
				if gpuFirst {
					k = coldKinds[(i+1)%2]
				}
				v := variantByKey(k.key(proc))
				time.Sleep(gap)
				d, n, err := s.sendMounts(ctx, v, c*100+i)
				if err != nil {
					return nil, fmt.Errorf("cycle %d, request %d after %s's start: %w", c, i+1, proc, err)
				}
				if v.gpu && n != warmMounts[v.key] {
					return nil, fmt.Errorf("cycle %d, request %d after %s's start: %d mounts, the warm answer has %d "+
						"(the process had not built its library directories %s after /readyz)", c, i+1, proc, n, warmMounts[v.key], coldSettle)
				}
				r.samples[proc][k.kind][seen[k.kind]] = append(r.samples[proc][k.kind][seen[k.kind]], d)
				seen[k.kind]++
			}
			for i := range 200 {
				if _, err := s.send(ctx, variantByKey(coldKinds[i%2].key(proc)), i); err != nil {
					return nil, err
				}
			}
			for _, k := range coldKinds {
				time.Sleep(gap)
				d, err := s.send(ctx, variantByKey(k.key(proc)), c*100+99)
				if err != nil {
					return nil, err
				}
				r.samples[proc][k.kind][per] = append(r.samples[proc][k.kind][per], d)
			}
		}
	}
	r.elapsed = time.Since(r.start)
	r.load[1] = loadavg()
	return r, nil
}

// paired is gpu-nri's sample minus nrifloor's, cycle by cycle, for kind's
// occurrence i.
func (r *coldResults) paired(kind string, i int) string {
	return pairedDiff(r.samples["gpunri"][kind][i], r.samples["floor"][kind][i])
}

// overWarm is a process's occurrence i minus its own warm reference, cycle
// by cycle.
func (r *coldResults) overWarm(proc, kind string, i int) string {
	rows := r.samples[proc][kind]
	return pairedDiff(rows[i], rows[len(rows)-1])
}

func (r *coldResults) report(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "NRI CreateContainer round trip after a plugin process's start (test/e2e/cmd/nrirtt, NRIRTT_COLD), %s UTC, %d restarts of each process in %.1f s.\n",
		r.start.UTC().Format("2006-01-02 15:04"), r.cycles, r.elapsed.Seconds())
	mode := "hookless with injection.libraryDir"
	if !r.libdir {
		mode = "hookless, per-file mounts"
	}
	fmt.Fprintf(&b, "Machine: %d CPUs; load average before %s, after %s. gpu-nri: %s. Requests %s apart, the first %s after /readyz.\n\n",
		runtime.NumCPU(), r.load[0], r.load[1], mode, r.gap, coldSettle)
	b.WriteString("| container | request of its kind after the start | nrifloor median (µs) | gpu-nri median (µs) | gpu-nri over nrifloor, per restart [95 %] (µs) | nrifloor over its warm | gpu-nri over its warm |\n|---|---|---|---|---|---|---|\n")
	for _, k := range coldKinds {
		rows := r.samples["gpunri"][k.kind]
		for i := range rows {
			label := fmt.Sprintf("%d", i+1)
			if i == len(rows)-1 {
				label = "warm (after 200 more)"
			}
			fw, gw := "-", "-"
			if i < len(rows)-1 {
				fw, gw = r.overWarm("floor", k.kind, i), r.overWarm("gpunri", k.kind, i)
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %s | %s | %s |\n", k.kind, label,
				quantile(r.samples["floor"][k.kind][i], 0.5), quantile(rows[i], 0.5), r.paired(k.kind, i), fw, gw)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
