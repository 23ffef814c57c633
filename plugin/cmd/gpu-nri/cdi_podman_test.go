package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// TestPodmanConsumesGeneratedSpec runs a real CDI consumer, Podman, with
// `--device nvidia.com/gpu=0` against a spec that `gpu-nri cdi generate`
// made for a simulated host with real device nodes, and the spec's hook
// pointing at a freshly built gpu-nri binary. Root only; set
// GPU_NRI_SKIP_PODMAN=1 to skip.
func TestPodmanConsumesGeneratedSpec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (real device nodes, rootful podman)")
	}
	if os.Getenv("GPU_NRI_SKIP_PODMAN") != "" {
		t.Skip("GPU_NRI_SKIP_PODMAN is set")
	}
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (test/tools.sh installs it)")
	}
	for _, f := range []string{"/bin/busybox", "/sbin/ldconfig", "/lib/x86_64-linux-gnu/libc.so.6"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s is missing: %v", f, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()

	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(dir, "host"), GPUs: 2, RealNodes: true})
	require.NoError(t, err)

	// The hook must be a real gpu-nri binary.
	bin := filepath.Join(dir, "bin", "gpu-nri")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	// The spec, from the command itself, under a unique file name.
	spec, _, err := execute(newCDICmd(), "generate", "-o", "-", "--hook-path", bin,
		"--driver-root", h.Config.DriverRoot, "--dev-root", h.Config.DevRoot, "--proc-root", h.Config.ProcRoot, "--no-nvml")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll("/var/run/cdi", 0o755))
	specPath := fmt.Sprintf("/var/run/cdi/gpu-nri-test-%d-%d.yaml", os.Getpid(), time.Now().UnixNano())
	require.NoError(t, os.WriteFile(specPath, []byte(spec), 0o644))
	t.Cleanup(func() { _ = os.Remove(specPath) })

	// A glibc image: static busybox, the host's loader and libc (+ libdl),
	// ldconfig and the cudatest program.
	r := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "sbin", "lib64", "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "usr/local/bin", "etc/ld.so.conf.d", "dev", "proc", "sys", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(r, d), 0o755))
	}
	copyTo := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(r, dst), b, mode))
	}
	copyTo("/bin/busybox", "bin/busybox", 0o755)
	for _, a := range []string{"sh", "cat", "ls", "echo", "test", "readlink"} {
		require.NoError(t, os.Symlink("busybox", filepath.Join(r, "bin", a)))
	}
	for _, f := range []string{"ld-linux-x86-64.so.2", "libc.so.6", "libdl.so.2"} {
		copyTo(filepath.Join("/lib/x86_64-linux-gnu", f), filepath.Join("lib/x86_64-linux-gnu", f), 0o755)
	}
	require.NoError(t, os.Symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", filepath.Join(r, "lib64/ld-linux-x86-64.so.2")))
	copyTo("/sbin/ldconfig", "sbin/ldconfig", 0o755)
	copyTo(h.CUDATest, "usr/local/bin/cudatest", 0o755)
	require.NoError(t, os.WriteFile(filepath.Join(r, "etc/ld.so.conf"), []byte("include /etc/ld.so.conf.d/*.conf\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(r, "etc/ld.so.conf.d/x86_64-linux-gnu.conf"),
		[]byte("/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n"), 0o644))
	tarball := filepath.Join(dir, "rootfs.tar")
	out, err = exec.CommandContext(ctx, "tar", "-C", r, "-cf", tarball, ".").CombinedOutput()
	require.NoError(t, err, "tar: %s", out)
	image := fmt.Sprintf("localhost/gpu-nri-cdi-test:%d", os.Getpid())
	out, err = exec.CommandContext(ctx, podman, "import", tarball, image).CombinedOutput()
	require.NoError(t, err, "podman import: %s", out)
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", image).Run() })

	script := `ls -l /dev/nvidia0 /dev/nvidiactl; cat /dev/nvidia0 2>&1; test -e /dev/nvidia1 && echo GPU1-PRESENT;
ls /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 /usr/bin/nvidia-smi;
echo NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES; /usr/local/bin/cudatest`
	run := exec.CommandContext(ctx, podman, "run", "--rm", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--device", "nvidia.com/gpu=0", image, "/bin/sh", "-c", script)
	out, err = run.CombinedOutput()
	text := string(out)
	require.NoError(t, err, "podman run: %s", text)

	// The node is there and the device cgroup allows it (ENXIO, not EPERM).
	require.Contains(t, text, "No such device or address", text)
	require.NotContains(t, text, "Operation not permitted", text)
	require.NotContains(t, text, "GPU1-PRESENT", "GPU 1 was not asked for")
	require.Contains(t, text, "NVIDIA_VISIBLE_DEVICES=void")
	// The hook made libcuda.so.1 loadable by the glibc program.
	require.Contains(t, text, "dlopen=ok lib=libcuda.so.1 devices=1", text)
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		t.Log(l)
	}
}
