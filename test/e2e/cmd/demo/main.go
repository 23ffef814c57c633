// Command demo (`make demo`, root) is gpu-nri in two minutes: it builds what
// it needs (test/tools.sh's containerd, gpu-nri, the simulated GPU host)
// with test/harness, starts a private containerd with NRI and gpu-nri, runs
// a pod whose container asks for GPUs 0 and 2 with
// NVIDIA_VISIBLE_DEVICES=0,2, shows what the container sees and what
// gpu-nri logged, then tears everything down. Nothing outside E2E_DIR
// (default /tmp/gpu-nri-demo) is touched.
//
//	DEMO_REAL=1   use this machine's NVIDIA driver instead of the simulated
//	              host (only when /dev/nvidiactl exists)
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

// The container's script: sections start with "## ".
const script = `
echo "## GPU device nodes (/dev/nvidia*)"
ls -l /dev/nvidia* 2>&1 | sed "s/  */ /g"
echo "## Device cgroup: a GPU we did not ask for (mknod of /dev/nvidia1 inside the container)"
mknod /tmp/nvidia1 c 195 1 && cat /tmp/nvidia1 2>&1 | head -1 | sed "s|^cat: ||"
echo "## Driver files bind-mounted from the host (mount options)"
awk "\$5 ~ /nvidia|cuda/ && \$5 !~ /^\/dev\// {split(\$6, o, \",\"); print \$5 \"  (\" o[1] \")\"}" /proc/self/mountinfo | sort | head -24
echo "## ld.so cache entries for the driver"
ldconfig -p 2>/dev/null | grep -E "libcuda|libnvidia-ml" | sed "s/^[[:space:]]*//"
echo "## A CUDA program: dlopen(\"libcuda.so.1\"), no LD_LIBRARY_PATH"
cudatest
echo "## nvidia-smi"
nvidia-smi 2>&1 | head -8
`

type colors struct{ ok, bad, head, off string }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("make demo needs root: it runs a private containerd and runc and creates device nodes; run: sudo make demo")
	}
	c := colors{}
	if _, err := unix.IoctlGetTermios(int(os.Stdout.Fd()), unix.TCGETS); err == nil {
		c = colors{ok: "\x1b[32m", bad: "\x1b[31m", head: "\x1b[1;36m", off: "\x1b[0m"}
	}
	say := func(f string, a ...any) { fmt.Printf("%s▶ %s%s\n", c.head, fmt.Sprintf(f, a...), c.off) }
	box := func(text string) {
		for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			fmt.Println("    │ " + l)
		}
	}
	useReal := os.Getenv("DEMO_REAL") == "1"
	what := "a simulated GPU host (4 GPUs + 1 in MIG mode, real device nodes, a gcc-built libcuda)"
	if useReal {
		if _, err := os.Stat("/dev/nvidiactl"); err != nil {
			return fmt.Errorf("DEMO_REAL=1 but /dev/nvidiactl does not exist: no NVIDIA driver here")
		}
		what = "this machine's NVIDIA driver"
	}
	dir := os.Getenv("E2E_DIR")
	if dir == "" {
		dir = "/tmp/gpu-nri-demo"
	}
	ctx := context.Background()

	say("Preparing: containerd, gpu-nri and %s (cached after the first run)", what)
	t0 := time.Now()
	var setupLog bytes.Buffer
	env, err := harness.Setup(ctx, harness.Options{Dir: dir, Real: useReal, Log: func(f string, a ...any) { fmt.Fprintf(&setupLog, f+"\n", a...) }})
	if err != nil {
		fmt.Fprint(os.Stderr, setupLog.String())
		return err
	}
	var plugin *harness.Plugin
	defer func() {
		say("Tearing down (containerd, gpu-nri, simulated host under %s)", dir)
		if plugin != nil {
			_ = plugin.Stop()
		}
		if err := env.Teardown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "demo: teardown:", err)
		}
	}()
	fmt.Printf("    ready in %d s: containerd %s, runc %s, %s\n", int(time.Since(t0).Seconds()),
		field(env.Tools.Containerd, 2, "--version"), field(env.Tools.Runc, 2, "--version"), firstLine(env.Bins.GPUNRI, "version"))

	say("Starting gpu-nri (external NRI plugin, createContainer hook loader)")
	cfg := env.PluginConfig("hook")
	cfg.LogLevel = "info"
	if plugin, err = env.StartPlugin(ctx, "gpu-nri", cfg); err != nil {
		return fmt.Errorf("gpu-nri did not become ready (log: %s): %w", env.PluginLog(), err)
	}
	if text, err := os.ReadFile(filepath.Join(env.Dir, "etc", "gpu-nri.yaml")); err == nil {
		for _, l := range strings.Split(string(text), "\n") {
			for _, k := range []string{"driverRoot", "devRoot", "loader", "socket"} {
				if strings.Contains(l, k+":") {
					fmt.Println("    " + l)
				}
			}
		}
	}

	gpus := "0,2"
	if useReal {
		if nodes, _ := filepath.Glob("/dev/nvidia[0-9]*"); len(nodes) < 3 {
			gpus = "0"
		}
	}
	say("Running a pod: container 'cuda' (glibc image, no driver inside) with NVIDIA_VISIBLE_DEVICES=%s", gpus)
	box(fmt.Sprintf("CRI RunPodSandbox(demo)\nCRI CreateContainer(cuda)    # envs: NVIDIA_VISIBLE_DEVICES=%s\nCRI StartContainer(cuda)", gpus))
	pod, err := env.RunPod(ctx, "demo", "", nil)
	if err != nil {
		return err
	}
	res, runErr := pod.Run(ctx, harness.Container{Name: "cuda", Image: harness.ImageRef("glibc"), Command: []string{"/bin/sh", "-c", script},
		Env: map[string]string{"NVIDIA_VISIBLE_DEVICES": gpus}}, harness.DefaultTimeout)
	_ = pod.Remove(ctx)
	if runErr != nil {
		return runErr
	}
	for _, l := range strings.Split(strings.TrimRight(res.Output, "\n"), "\n") {
		if h, ok := strings.CutPrefix(l, "## "); ok {
			fmt.Printf("\n  %s%s%s\n", c.head, h, c.off)
		} else {
			fmt.Println("    │ " + l)
		}
	}

	fmt.Println()
	say("What gpu-nri logged")
	logText, _ := os.ReadFile(env.PluginLog())
	var logged []string
	for _, l := range strings.Split(strings.TrimRight(string(logText), "\n"), "\n") {
		if strings.Contains(l, "level=debug") {
			continue
		}
		if _, rest, ok := strings.Cut(l, `" `); ok && strings.HasPrefix(l, `time="`) {
			l = rest
		}
		if len(l) > 220 {
			l = l[:220]
		}
		logged = append(logged, l)
	}
	box(strings.Join(logged, "\n"))
	fmt.Println()
	if strings.Contains(res.Output, "dlopen=ok") {
		fmt.Printf("%s✔ The container got GPUs %s, the device cgroup denies the rest, and an unmodified glibc image loads the driver.%s\n", c.ok, gpus, c.off)
		return nil
	}
	fmt.Printf("%s✘ The container could not load the driver; see above.%s\n", c.bad, c.off)
	return fmt.Errorf("the container could not load the driver")
}

// field is the n-th word (0-based) of the first line `bin args...` prints.
func field(bin string, n int, args ...string) string {
	f := strings.Fields(firstLine(bin, args...))
	if len(f) > n {
		return f[n]
	}
	return "?"
}

func firstLine(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).Output()
	l, _, _ := strings.Cut(string(out), "\n")
	return l
}
