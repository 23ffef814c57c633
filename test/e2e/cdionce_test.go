//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/plugin"
	"github.com/gpu-nri/gpu-nri/test/harness"
)

// s11CDIOnce: containerd 2.4 and CRI-O 1.34 resolve CRI CDIDevices and
// container cdi.k8s.io/ annotations themselves, before NRI (issue 11 point
// 8); CRI-O 1.34's NRI v0.9.1 does not report CDIDevices to gpu-nri, so on
// CRI-O gpu-nri's own kind by CDIDevices is refused with the reason. The final
// OCI spec has each device node, mount and hook once: for a third-party
// kind with a spec on disk (containerd injects it, gpu-nri reads the same
// dir and merges it again), and for gpu-nri's own kind with
// injection.cdiOwnSpecDir (containerd accepts the name, gpu-nri injects,
// its capabilities applied); without a spec containerd refuses the name.
// Containers are created, not started: the spec is what the runtime got.
func s11CDIOnce(t *testing.T, rt runtimeCase) {
	e := env(t)
	dir := filepath.Join(e.Dir, "once")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	node := filepath.Join(dir, "once0")
	_ = os.Remove(node)
	require.NoError(t, unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(240, 9))))
	blob := filepath.Join(dir, "blob")
	require.NoError(t, os.WriteFile(blob, []byte("blob\n"), 0o644))
	spec := filepath.Join(e.Runtime.CDIDir(), "example.com-once.yaml")
	require.NoError(t, os.WriteFile(spec, []byte(fmt.Sprintf(`cdiVersion: "0.6.0"
kind: example.com/once
devices:
- name: d0
  containerEdits:
    deviceNodes:
    - {path: /dev/once0, hostPath: %s, type: c, major: 240, minor: 9, permissions: rw}
    mounts:
    - {hostPath: %s, containerPath: /etc/once-blob, options: [ro, nosuid, nodev, bind]}
    hooks:
    - {hookName: createContainer, path: /bin/true, args: [true, once]}
    env: [ONCE=d0]
`, node, blob)), 0o644))
	t.Cleanup(func() { _ = os.Remove(spec) })

	created := func(t *testing.T, pod string, c harness.Container) *rspec.Spec {
		t.Helper()
		p := e.Pod(t, pod, rt.name, nil)
		ctx, cancel := context.WithTimeout(context.Background(), harness.DefaultTimeout)
		defer cancel()
		id, err := p.Create(ctx, c)
		require.NoError(t, err)
		s, err := e.CRI.Spec(ctx, id)
		require.NoError(t, err)
		if rt.crio() {
			// CRI-O takes its 10 s stop timeout to remove a crun container
			// that was created and never started; run it to its end instead.
			require.NoError(t, p.Start(ctx, id))
			_, err = p.WaitExit(ctx, id)
			require.NoError(t, err)
		}
		return s
	}
	thirdParty := func(t *testing.T, s *rspec.Spec) {
		t.Helper()
		requireSpecOnce(t, s, 1)
		require.Contains(t, specDevices(s), "/dev/once0")
		require.Contains(t, specMountDests(s), "/etc/once-blob")
		require.Equal(t, []string{"/bin/true"}, specHooks(s))
	}

	t.Run("third-party-cdi-devices", func(t *testing.T) {
		usePlugin(t, "hook")
		c := container("c", "glibc", "true", nil)
		c.CDIDevices = []string{"example.com/once=d0"}
		thirdParty(t, created(t, "s11-tp-cri", c))
	})
	t.Run("third-party-annotation", func(t *testing.T) {
		usePlugin(t, "hook")
		c := container("c", "glibc", "true", nil)
		c.Annotations = map[string]string{"cdi.k8s.io/once": "example.com/once=d0"}
		thirdParty(t, created(t, "s11-tp-ann", c))
	})
	t.Run("third-party-no-spec-refused", func(t *testing.T) {
		usePlugin(t, "hook")
		c := container("c", "glibc", "true", nil)
		c.CDIDevices = []string{"example.com/once=d9"}
		msg := e.Pod(t, "s11-tp-nospec", rt.name, nil).CreateRefused(t, c)
		require.Contains(t, msg, "example.com/once=d9", "the runtime names the unresolvable CDI device")
	})
	t.Run("own-kind-no-spec-refused", func(t *testing.T) {
		usePlugin(t, "hook")
		c := container("c", "glibc", "true", nil)
		c.CDIDevices = []string{"nvidia.com/gpu=0"}
		msg := e.Pod(t, "s11-own-nospec", rt.name, nil).CreateRefused(t, c)
		require.Contains(t, msg, "nvidia.com/gpu=0", "the runtime names the unresolvable CDI device")
	})
	t.Run("own-kind-own-spec", func(t *testing.T) {
		usePlugin(t, "")
		own := filepath.Join(e.Runtime.CDIDir(), "nvidia.com-gpu.yaml")
		t.Cleanup(func() { _ = os.Remove(own) })
		cfg := e.PluginConfig("hook")
		cfg.CDIOwnSpecDir = e.Runtime.CDIDir()
		p, err := harness.StartPlugin(context.Background(), e.Bins.GPUNRI, filepath.Join(e.Dir, "etc", "gpu-nri-s11.yaml"), e.PluginLog(), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, p.Stop()) })
		require.Eventually(t, func() bool { _, err := os.Stat(own); return err == nil }, 10*time.Second, 50*time.Millisecond,
			"gpu-nri never wrote its own CDI spec")

		for _, tc := range []struct {
			name, cdi string
			env       map[string]string
			cuda      bool
			byAnn     bool
		}{
			{"cdi-devices-default-caps", "nvidia.com/gpu=1", nil, true, false},
			{"cdi-devices-utility", "nvidia.com/gpu=" + e.Host.GPUs[2].UUID, map[string]string{"NVIDIA_DRIVER_CAPABILITIES": "utility"}, false, false},
			{"annotation-default-caps", "nvidia.com/gpu=1", nil, true, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := container("c", "glibc", "true", tc.env)
				if tc.byAnn {
					c.Annotations = map[string]string{"cdi.k8s.io/gpu": tc.cdi}
				} else {
					c.CDIDevices = []string{tc.cdi}
				}
				if rt.crio() && !tc.byAnn {
					// CRI-O 1.34.0 accepts the name (the names-only spec sets
					// only GPU_NRI_CDI_DEVICE) but its NRI v0.9.1 does not pass
					// CRI CDIDevices to plugins: gpu-nri refuses the container
					// rather than let it start without its GPU.
					pod := "s11-own-" + tc.name
					msg := e.Pod(t, pod, rt.name, nil).CreateRefused(t, c)
					require.Contains(t, msg, fmt.Sprintf("gpu-nri: container %s/%s/c: CDI device %s: %s", harness.Namespace, pod, tc.cdi, plugin.ErrCDINameUnseen))
					return
				}
				s := created(t, "s11-own-"+tc.name, c)
				requireSpecOnce(t, s, 2)
				gpu := "/dev/nvidia1"
				if !tc.cuda {
					gpu = "/dev/nvidia2"
				}
				require.Contains(t, specDevices(s), gpu)
				require.Contains(t, specDevices(s), "/dev/nvidiactl")
				require.Contains(t, s.Process.Env, "GPU_NRI_CDI_DEVICE="+tc.cdi)
				cuda := false
				for _, d := range specMountDests(s) {
					cuda = cuda || strings.Contains(d, "libcuda.so")
				}
				require.Equal(t, tc.cuda, cuda, "libcuda mounted")
				require.Equal(t, []string{e.Bins.Hook}, specHooks(s), "one createContainer hook, gpu-nri's")
			})
		}
	})
}

func specDevices(s *rspec.Spec) []string {
	var out []string
	for _, d := range s.Linux.Devices {
		out = append(out, d.Path)
	}
	return out
}

func specMountDests(s *rspec.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func specHooks(s *rspec.Spec) []string {
	var out []string
	if s.Hooks != nil {
		for _, h := range s.Hooks.CreateContainer {
			out = append(out, h.Path)
		}
	}
	return out
}

// requireSpecOnce fails unless every device node, mount and hook of s is
// there once and no device-cgroup allow rule more than rules times (a node
// gpu-nri adds has the runtime's rule for an NRI device and gpu-nri's
// explicit one, identical).
func requireSpecOnce(t *testing.T, s *rspec.Spec, rules int) {
	t.Helper()
	count := map[string]int{}
	for _, d := range specDevices(s) {
		count["device "+d]++
	}
	for _, d := range specMountDests(s) {
		count["mount "+d]++
	}
	if s.Hooks != nil {
		for _, h := range append(append(append([]rspec.Hook(nil), s.Hooks.CreateRuntime...), s.Hooks.CreateContainer...), s.Hooks.StartContainer...) {
			count["hook "+h.Path+" "+strings.Join(h.Args, " ")]++
		}
	}
	for what, n := range count {
		require.Equal(t, 1, n, "%s is in the final spec %d times", what, n)
	}
	if s.Linux.Resources != nil {
		rule := map[string]int{}
		for _, r := range s.Linux.Resources.Devices {
			if r.Allow && r.Major != nil && r.Minor != nil {
				rule[fmt.Sprintf("%s %d:%d %s", r.Type, *r.Major, *r.Minor, r.Access)]++
			}
		}
		for what, n := range rule {
			require.LessOrEqual(t, n, rules, "cgroup rule %s is in the final spec %d times", what, n)
		}
	}
}
