//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/gpu-nri/gpu-nri/pkg/libdir"
)

// libraryDir: injection.libraryDir on a real runtime, both loaders. The
// container gets the libraries as one directory mount at
// /usr/local/nvidia/lib64 (no per-file library mount), loads libcuda by
// SONAME and by its development name, cannot write there, and keeps its
// libraries when the daemon ends and detaches the host's directories.
func libraryDir(t *testing.T, rt runtimeCase) {
	for _, mode := range []string{"hook", "hookless"} {
		t.Run(mode, func(t *testing.T) { libraryDirMode(t, rt, mode) })
	}
}

func libraryDirMode(t *testing.T, rt runtimeCase, mode string) {
	e := env(t)
	ctx := context.Background()
	usePlugin(t, "")                                     // this test runs its own instance
	root := filepath.Join(e.SharedDir(), "libdir-"+mode) // under a shared mount: a runtime in its own mount namespace sees it
	pc := e.PluginConfig(mode)
	pc.LibraryDir = root
	p, err := e.StartPlugin(ctx, "gpu-nri-libdir-"+mode, pc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop() })
	// The default sets are built right after start: wait for them so that
	// the container below gets the directory, not the per-file mounts.
	require.Eventually(t, func() bool { return len(libdir.Built(root)) >= 2 }, // utility,compute and all
		15*time.Second, 50*time.Millisecond, "the library directories were never built")

	sync := t.TempDir()
	script := `cudatest libcuda.so.1; cudatest libcuda.so; echo "LD_LIBRARY_PATH=[${LD_LIBRARY_PATH:-}]"
ls -la /usr/local/nvidia/lib64 2>&1 | sed "s/^/ls: /"; grep nvidia/lib64 /proc/self/mountinfo | sed "s/^/mi: /"
touch /usr/local/nvidia/lib64/x 2>&1 | sed 's/^/write: /'
touch /sync/started; i=0; while [ ! -e /sync/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
echo after; cudatest libcuda.so.1
`
	for _, img := range []string{"glibc", "rhel"} {
		t.Run(img, func(t *testing.T) {
			pod := e.Pod(t, "libdir-"+mode+"-"+img, rt.name, nil)
			c := container("c", img, script, env1("NVIDIA_VISIBLE_DEVICES", "0"))
			c.Mounts = []*runtime.Mount{{ContainerPath: "/sync", HostPath: sync}}
			last := img == "rhel"
			_ = os.Remove(filepath.Join(sync, "started"))
			_ = os.Remove(filepath.Join(sync, "go"))
			done := make(chan struct{})
			var res struct {
				out  string
				spec string
				err  error
			}
			var dirSrc string
			var libMounts []string
			go func() {
				defer close(done)
				r, err := pod.Run(ctx, c, 60*time.Second)
				res.out, res.err = r.Output, err
				if r.Spec != nil {
					for _, m := range r.Spec.Mounts {
						switch {
						case m.Destination == hookproto.HooklessDir:
							dirSrc = m.Source
						case strings.Contains(m.Destination, "libcuda.so") || strings.Contains(m.Destination, "libnvidia-ml.so"):
							libMounts = append(libMounts, m.Destination)
						}
					}
					if v, ok := specEnv(r.Spec)["LD_LIBRARY_PATH"]; ok {
						res.spec = v
					}
				}
			}()
			require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(sync, "started")); return err == nil },
				30*time.Second, 50*time.Millisecond, "the container never started")
			if last { // the daemon's end detaches every directory; the running container keeps its copy
				require.NoError(t, p.Stop())
				ents, err := os.ReadDir(root)
				require.NoError(t, err)
				require.Empty(t, ents, "gpu-nri detached its directories when it stopped")
			}
			require.NoError(t, os.WriteFile(filepath.Join(sync, "go"), nil, 0o644))
			<-done
			require.NoError(t, res.err, res.out)
			require.True(t, strings.HasPrefix(dirSrc, root+"/"), "the directory mount %q", dirSrc)
			require.Empty(t, libMounts, "no per-file library mounts")
			require.Contains(t, res.out, cudaOK(e, "libcuda.so.1", 1))
			require.Contains(t, res.out, cudaOK(e, "libcuda.so", 1))
			require.Contains(t, res.out, "write: touch:", "the directory is read-only")
			require.Contains(t, res.out, "Read-only file system")
			after := res.out[strings.Index(res.out, "after\n"):]
			require.Contains(t, after, cudaOK(e, "libcuda.so.1", 1), "libcuda still loads after the host's directory is gone")
			if mode == "hook" {
				require.Contains(t, res.out, "LD_LIBRARY_PATH=[]\n", "hook mode: found through ld.so.cache")
				require.Empty(t, res.spec)
			} else {
				require.Equal(t, hookproto.HooklessDir, res.spec)
			}
		})
	}
}
