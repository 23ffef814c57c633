//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

// crioDifferences pins where CRI-O 1.34.0 differs from containerd 2.4
// (issue 11 point 10; docs/deploy.md says each): NRI's default validator
// does not exist (required_plugins is accepted and ignored: fail-open, and
// `gpu-nri doctor --cri-socket` says so from the version CRI-O reports),
// explicit device-cgroup rules from the adjustment are dropped, and the NRI
// container is named after the label io.kubernetes.container.name, so a
// plain CRI client's container falls back to the CRI metadata name.
func crioDifferences(t *testing.T, rt runtimeCase) {
	e := env(t)
	ctx := context.Background()

	t.Run("required-plugins-fail-open", func(t *testing.T) {
		usePlugin(t, "")
		dropIn := filepath.Join(e.Repo, "deploy/runtime/crio/20-gpu-nri-required.conf")
		e.CRIO.DropIns = []string{dropIn}
		t.Cleanup(func() {
			e.CRIO.DropIns = nil
			require.NoError(t, e.CRIO.Restart(ctx, harness.StartOptions{CgroupV1: suite.cgroupV1}))
		})
		require.NoError(t, e.CRIO.Restart(ctx, harness.StartOptions{CgroupV1: suite.cgroupV1}), "CRI-O accepts the [crio.nri.default_validator] drop-in")

		// gpu-nri down: CRI-O 1.34.0 starts the GPU container without GPUs.
		res := runOne(t, rt, "crio-failopen", nil, container("c", "glibc", probe, env1("NVIDIA_VISIBLE_DEVICES", "0")))
		requireGPUs(t, e, parseProbe(res.Output))
		requireSpecGPUs(t, e, res.Spec)

		// doctor reads CRI-O's version over CRI and says the requirement is ignored.
		p := usePlugin(t, "hook")
		cmd := exec.Command(e.Bins.GPUNRI, "doctor", "--config", p.ConfigPath, "--containerd-config", filepath.Join(e.Dir, "no-containerd.toml"),
			"--crio-config", e.CRIO.ConfigPath(), "--cri-socket", e.CRIO.Socket())
		out, _ := cmd.CombinedOutput()
		require.Contains(t, string(out), "CRI-O config "+e.CRIO.ConfigPath()+", "+filepath.Join(e.CRIO.ConfigDir(), filepath.Base(dropIn)), "doctor read crio.conf and the drop-in\n%s", out)
		require.Regexp(t, `(?m)^\[WARN\] validator +cri-o 1\.34\.0 has no NRI default validator \(it needs CRI-O 1\.35, NRI v0\.10\): required_plugins is ignored and GPU containers start without GPUs while gpu-nri is down \(fail-open\)`, string(out))

		// gpu-nri up again: the same container gets its GPU.
		res = runOne(t, rt, "crio-failopen-up", nil, container("c", "glibc", probe, env1("NVIDIA_VISIBLE_DEVICES", "0")))
		requireGPUs(t, e, parseProbe(res.Output), 0)
	})

	t.Run("explicit-cgroup-rules-dropped", func(t *testing.T) {
		usePlugin(t, "")
		cfg := e.PluginConfig("hook")
		cfg.DeviceCgroupRules = "always"
		logPath := filepath.Join(e.Dir, "logs", "gpu-nri-rules.log")
		p, err := harness.StartPlugin(ctx, e.Bins.GPUNRI, filepath.Join(e.Dir, "etc", "gpu-nri-rules.yaml"), logPath, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, p.Stop()) })
		res := runOne(t, rt, "crio-rules", nil, container("c", "glibc", gpuScript(), env1("NVIDIA_VISIBLE_DEVICES", "0,2")))
		// gpu-nri sent its explicit rules; CRI-O kept only NRI's own rule per device.
		requireCgroupRules(t, e, rt, res.Spec, 0, 2)
		require.Contains(t, res.Output, "can't open '/dev/nvidia0': No such device or address", "the device's own rule still allows it")
		require.Contains(t, res.Output, "can't open '/tmp/gpu1': Operation not permitted", "the device cgroup denies GPU 1")
	})

	t.Run("no-kubelet-labels", func(t *testing.T) {
		usePlugin(t, "hook")
		pod := "crio-nolabels"
		p := e.Pod(t, pod, rt.name, map[string]string{"gpus.gpu-nri.io/container.plain": "3"})
		c := container("plain", "glibc", probe, nil)
		c.NoKubeletLabels = true
		res := p.MustRun(t, c)
		requireGPUs(t, e, parseProbe(res.Output), 3)
		require.NotContains(t, res.Spec.Annotations, "io.kubernetes.container.name")

		bad := container("plain-bad", "glibc", "true", env1("NVIDIA_VISIBLE_DEVICES", "9"))
		bad.NoKubeletLabels = true
		msg := p.CreateRefused(t, bad)
		require.Contains(t, msg, fmt.Sprintf("gpu-nri: container %s/%s/plain-bad: ", harness.Namespace, pod), "gpu-nri names the container by its CRI metadata name")
	})

	t.Run("cri-errors-unwrapped", func(t *testing.T) {
		usePlugin(t, "hook")
		pod := "crio-err"
		msg := e.Pod(t, pod, rt.name, nil).CreateRefused(t, container("bad", "glibc", "true", env1("NVIDIA_VISIBLE_DEVICES", "9")))
		// containerd prefixes its own words; CRI-O hands the plugin's error to the CRI client as it is.
		require.Equal(t, fmt.Sprintf("gpu-nri: container %s/%s/bad: env NVIDIA_VISIBLE_DEVICES \"9\": no such device on this host (the host has %d GPU(s): indexes 0-%d)",
			harness.Namespace, pod, e.GPUs+1, e.GPUs), msg)
	})
}
