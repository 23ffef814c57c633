package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"github.com/gpu-nri/gpu-nri/test/benchstat"
)

// variant is one kind of request.
type variant struct {
	key, label string
	runtime    string // "none", "floor" or "gpunri"
	gpu        bool   // the answer must hold GPUs 0 and 2
}

func variants() []variant {
	return []variant{
		{key: "none", label: "no plugin registered (the runtime side alone)", runtime: "none"},
		{key: "fplain", label: "nrifloor, a container it does not touch", runtime: "floor"},
		{key: "fgpu", label: "nrifloor, GPUs 0,2 (gpu-nri's answer, captured)", runtime: "floor", gpu: true},
		{key: "plain", label: "gpu-nri, a container it does not touch", runtime: "gpunri"},
		{key: "gpu", label: "gpu-nri, GPUs 0,2 by pod annotation", runtime: "gpunri", gpu: true},
	}
}

func variantByKey(key string) variant {
	for _, v := range variants() {
		if v.key == key {
			return v
		}
	}
	panic("nrirtt: no variant " + key)
}

func (s *session) adaptation(v variant) *adaptation.Adaptation {
	switch v.runtime {
	case "floor":
		return s.floor
	case "gpunri":
		return s.gpunri
	}
	return s.none
}

// request is a CreateContainer shaped like containerd 2.4's for a CRI
// container of a host-network pod (what the bench's pods are), round i.
func request(v variant, i int) *api.CreateContainerRequest {
	podID := fmt.Sprintf("%064x", 1_000_000+i)
	ctrID := fmt.Sprintf("%064x", 2_000_000+i)
	podAnn := map[string]string{
		"io.kubernetes.cri.container-type":        "sandbox",
		"io.kubernetes.cri.sandbox-id":            podID,
		"io.kubernetes.cri.sandbox-name":          "bench-" + strconv.Itoa(i),
		"io.kubernetes.cri.sandbox-namespace":     "gpu-nri-e2e",
		"io.kubernetes.cri.sandbox-uid":           fmt.Sprintf("uid-%d", i),
		"io.kubernetes.cri.sandbox-log-directory": "/var/log/pods/bench",
		"io.kubernetes.cri.sandbox-cpu-period":    "100000",
		"io.kubernetes.cri.sandbox-cpu-quota":     "0",
		"io.kubernetes.cri.sandbox-cpu-shares":    "2",
		"io.kubernetes.cri.sandbox-memory":        "0",
	}
	if v.gpu {
		switch v.runtime {
		case "floor":
			podAnn[floorAnnotation] = "0,2"
		default:
			podAnn["gpus.gpu-nri.io/pod"] = "0,2"
		}
	}
	pod := &api.PodSandbox{
		Id: podID, Name: "bench-" + strconv.Itoa(i), Uid: fmt.Sprintf("uid-%d", i), Namespace: "gpu-nri-e2e",
		Labels:         map[string]string{"io.kubernetes.pod.name": "bench", "io.kubernetes.pod.namespace": "gpu-nri-e2e"},
		Annotations:    podAnn,
		RuntimeHandler: "runc",
		Linux: &api.LinuxPodSandbox{
			CgroupParent: "/gpu-nri-e2e", CgroupsPath: "/gpu-nri-e2e/" + podID,
			Namespaces: []*api.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}},
		},
		Pid: uint32(10_000 + i%20_000),
	}
	ctr := &api.Container{
		Id: ctrID, PodSandboxId: podID, Name: "c", State: api.ContainerState_CONTAINER_CREATED,
		Labels: map[string]string{"io.kubernetes.container.name": "c", "io.kubernetes.pod.name": "bench"},
		Annotations: map[string]string{
			"io.kubernetes.cri.container-name": "c", "io.kubernetes.cri.container-type": "container",
			"io.kubernetes.cri.image-name": "docker.io/library/gpu-nri-e2e:latest",
			"io.kubernetes.cri.sandbox-id": podID, "io.kubernetes.cri.sandbox-name": "bench-" + strconv.Itoa(i),
			"io.kubernetes.cri.sandbox-namespace": "gpu-nri-e2e", "io.kubernetes.cri.sandbox-uid": fmt.Sprintf("uid-%d", i),
		},
		Args: []string{"/bin/sh", "-c", "true"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=bench",
			"LANG=C.UTF-8", "HOME=/root"},
		Mounts: []*api.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/containerd/sandboxes/" + podID + "/hosts", Options: []string{"rbind", "rprivate", "rw"}},
			{Destination: "/etc/hostname", Type: "bind", Source: "/var/lib/containerd/sandboxes/" + podID + "/hostname", Options: []string{"rbind", "rprivate", "rw"}},
			{Destination: "/etc/resolv.conf", Type: "bind", Source: "/var/lib/containerd/sandboxes/" + podID + "/resolv.conf", Options: []string{"rbind", "rprivate", "rw"}},
			{Destination: "/dev/shm", Type: "bind", Source: "/run/containerd/sandboxes/" + podID + "/shm", Options: []string{"rbind", "rprivate", "rw"}},
		},
		Linux: &api.LinuxContainer{
			Namespaces: []*api.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}},
			Resources: &api.LinuxResources{
				Cpu:    &api.LinuxCPU{Shares: api.UInt64(2), Period: api.UInt64(100000)},
				Memory: &api.LinuxMemory{},
			},
			OomScoreAdj: api.Int(1000),
			CgroupsPath: "/gpu-nri-e2e/" + ctrID,
		},
	}
	return &api.CreateContainerRequest{Pod: pod, Container: ctr}
}

// send times one request (the runtime's whole CreateContainer, as
// containerd calls it) and checks the answer.
func (s *session) send(ctx context.Context, v variant, i int) (time.Duration, error) {
	d, _, err := s.sendMounts(ctx, v, i)
	return d, err
}

// sendMounts is send, also returning the number of mounts in the answer.
func (s *session) sendMounts(ctx context.Context, v variant, i int) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := request(v, i)
	t0 := time.Now()
	rpl, err := s.adaptation(v).CreateContainer(ctx, req)
	d := time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", v.key, err)
	}
	var nodes []string
	for _, dev := range rpl.GetAdjust().GetLinux().GetDevices() {
		nodes = append(nodes, dev.GetPath())
	}
	if !v.gpu {
		if len(nodes) > 0 {
			return 0, 0, fmt.Errorf("%s: a container that asks for nothing got devices %v", v.key, nodes)
		}
		return d, len(rpl.GetAdjust().GetMounts()), nil
	}
	for _, want := range s.gpuNodes {
		found := false
		for _, n := range nodes {
			found = found || n == want
		}
		if !found {
			return 0, 0, fmt.Errorf("%s: the answer lacks %s (devices %v)", v.key, want, nodes)
		}
	}
	for _, n := range nodes {
		if n == "/dev/nvidia1" || n == "/dev/nvidia3" {
			return 0, 0, fmt.Errorf("%s: the answer holds %s, a GPU not asked for", v.key, n)
		}
	}
	return d, len(rpl.GetAdjust().GetMounts()), nil
}

// results are one run's timings.
type results struct {
	rounds  int
	samples map[string][]time.Duration // by variant, in round order
	cpu     map[string]time.Duration   // plugin process CPU time over the rounds
	idleCPU map[string]time.Duration   // the same over idle seconds after them
	idle    time.Duration
	perProc map[string]int // requests each plugin process answered
	mounts  map[string]int // mounts in one GPU answer, by variant
	start   time.Time
	elapsed time.Duration
	gap     time.Duration // the pause before each request
	load    [2]string     // load average before, after
	libdir  bool          // gpu-nri ran with injection.libraryDir
}

func (s *session) measure(ctx context.Context, rounds int, gap time.Duration) (*results, error) {
	vs := variants()
	r := &results{rounds: rounds, samples: map[string][]time.Duration{}, cpu: map[string]time.Duration{}, idleCPU: map[string]time.Duration{},
		perProc: map[string]int{}, mounts: map[string]int{}}
	for _, v := range vs {
		if !v.gpu {
			continue
		}
		rpl, err := s.adaptation(v).CreateContainer(ctx, request(v, -1))
		if err != nil {
			return nil, err
		}
		r.mounts[v.key] = len(rpl.GetAdjust().GetMounts())
	}
	// Warm-up: the first requests pay page faults and connection setup.
	for i := range 200 {
		for _, v := range vs {
			if _, err := s.send(ctx, v, i); err != nil {
				return nil, err
			}
		}
	}
	r.load[0] = loadavg()
	cpu0, err := cpuTimes(map[string]int{"floor": s.floorProc.Pid(), "gpunri": s.gpuProc.Pid()})
	if err != nil {
		return nil, err
	}
	r.gap = gap
	r.start = time.Now()
	for i := range rounds {
		for k := range vs {
			v := vs[(i+k)%len(vs)]
			time.Sleep(gap) // 0: back to back
			d, err := s.send(ctx, v, i)
			if err != nil {
				return nil, fmt.Errorf("round %d: %w", i, err)
			}
			r.samples[v.key] = append(r.samples[v.key], d)
			if v.runtime != "none" {
				r.perProc[v.runtime]++
			}
		}
	}
	r.elapsed = time.Since(r.start)
	pids := map[string]int{"floor": s.floorProc.Pid(), "gpunri": s.gpuProc.Pid()}
	cpu1, err := cpuTimes(pids)
	if err != nil {
		return nil, err
	}
	r.load[1] = loadavg()
	r.idle = 10 * time.Second
	time.Sleep(r.idle)
	cpu2, err := cpuTimes(pids)
	if err != nil {
		return nil, err
	}
	for name := range pids {
		r.cpu[name] = cpu1[name] - cpu0[name]
		r.idleCPU[name] = cpu2[name] - cpu1[name]
	}
	return r, nil
}

func cpuTimes(pids map[string]int) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for name, p := range pids {
		c, err := cpuTime(p)
		if err != nil {
			return nil, err
		}
		out[name] = c
	}
	return out, nil
}

// cpuTime is a process's user+system CPU time (all threads) from
// /proc/PID/stat, in clock ticks of 10 ms (USER_HZ 100 on Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: the fields start after its ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(u+st) * 10 * time.Millisecond, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// quantile is the q-quantile of d (nearest rank), in microseconds.
func quantile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(q*float64(len(s)))) - 1
	k = max(0, min(k, len(s)-1))
	return float64(s[k]) / 1e3
}

func (r *results) paired(key, base string) string {
	return pairedDiff(r.samples[key], r.samples[base])
}

// pairedDiff is the median of a's samples minus b's, index by index, in
// µs with its 95 % interval ("-" below 6 pairs).
func pairedDiff(a, b []time.Duration) string {
	d := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		d = append(d, float64(a[i]-b[i])/1e3)
	}
	med, lo, hi, ok := benchstat.MedianCI(d)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%+.0f [%+.0f, %+.0f]", med, lo, hi)
}

func (r *results) report(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "NRI CreateContainer round trip (test/e2e/cmd/nrirtt), %s UTC, %d rounds in %.1f s.\n",
		r.start.UTC().Format("2006-01-02 15:04"), r.rounds, r.elapsed.Seconds())
	mode := "hookless with injection.libraryDir"
	if !r.libdir {
		mode = "hookless, per-file mounts"
	}
	spacing := "back to back"
	if r.gap > 0 {
		spacing = fmt.Sprintf("%s apart (the plugins idle between them)", r.gap)
	}
	fmt.Fprintf(&b, "Machine: %d CPUs; load average before %s, after %s. gpu-nri: %s. Requests %s.\n\n",
		runtime.NumCPU(), r.load[0], r.load[1], mode, spacing)
	b.WriteString("| variant | median (µs) | p90 (µs) | over none, per round [95 %] (µs) | mounts in the answer |\n|---|---|---|---|---|\n")
	for _, v := range variants() {
		over := "-"
		if v.key != "none" {
			over = r.paired(v.key, "none")
		}
		m := "-"
		if v.gpu {
			m = strconv.Itoa(r.mounts[v.key])
		}
		fmt.Fprintf(&b, "| %s: %s | %.0f | %.0f | %s | %s |\n", v.key, v.label,
			quantile(r.samples[v.key], 0.5), quantile(r.samples[v.key], 0.9), over, m)
	}
	fmt.Fprintf(&b, "\ngpu-nri over nrifloor, per round [95 %%] (µs): untouched container %s, GPU container %s.\n",
		r.paired("plain", "fplain"), r.paired("gpu", "fgpu"))
	for _, p := range []struct{ name, label string }{{"floor", "nrifloor"}, {"gpunri", "gpu-nri"}} {
		n := r.perProc[p.name]
		if n == 0 {
			continue
		}
		fmt.Fprintf(&b, "CPU time of the %s process over the rounds: %.0f ms for %d requests, %.0f µs per request; idle for %s after them: %.0f ms (10 ms ticks).\n",
			p.label, float64(r.cpu[p.name])/1e6, n, float64(r.cpu[p.name])/1e3/float64(n), r.idle, float64(r.idleCPU[p.name])/1e6)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
