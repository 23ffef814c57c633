//go:build k8s

package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/libdir"
)

// testLibraryDir: the library-dir overlay on the real kubelet and
// containerd. The daemon's directory mounts, made in its pod, reach the node
// through the pod's Bidirectional mount; a GPU pod gets the driver's
// libraries as the one directory mount at /usr/local/nvidia/lib64 and loads
// libcuda; deleting the DaemonSet detaches the directories on the node.
// (This machine's / is private: the directory is under the test bed's shared
// mount, as it is under the shared / of a systemd node.)
func (s *k8sSuite) testLibraryDir(t *testing.T) {
	// Why the overlay's gpu-nri container is privileged: the API server
	// refuses a Bidirectional mount in any other container.
	pod := filepath.Join(t.TempDir(), "bidirectional.yaml")
	require.NoError(t, os.WriteFile(pod, []byte(`apiVersion: v1
kind: Pod
metadata: {name: bidirectional, namespace: default}
spec:
  containers:
  - name: c
    image: localhost/gpu-nri/gpu-nri:k8s-1
    securityContext: {privileged: false}
    volumeMounts: [{name: d, mountPath: /d, mountPropagation: Bidirectional}]
  volumes: [{name: d, hostPath: {path: /tmp}}]
`), 0o644))
	_, err := s.kubectl("create", "--dry-run=server", "-f", pod)
	require.ErrorContains(t, err, "Bidirectional mount propagation is available only to privileged containers")

	s.libraryDir = filepath.Join(s.n.e.SharedDir(), "gpu-nri-lib")
	t.Cleanup(func() { s.libraryDir = "" })
	s.deploy(t, "library-dir", "overlays/library-dir", "k8s-1")
	require.NoError(t, eventually(30*time.Second, func() error {
		if n := len(libdir.Built(s.libraryDir)); n < 2 {
			return fmt.Errorf("%d complete library directories on the node, want 2 (utility,compute and all)", n)
		}
		return nil
	}), "the daemon's mounts never reached the node\n%s\n%s", s.describePlugin(), s.pluginLogs())

	s.gpuPod(t, "default", "libdir-02", "0,2", "")
	gpus, cuda := s.probe(t, "default", "libdir-02")
	require.Equal(t, []int{0, 2}, gpus)
	require.Equal(t, s.cudaOK(2), cuda)
	mountinfo, err := s.kubectl("-n", "default", "exec", "libdir-02", "--", "cat", "/proc/self/mountinfo")
	require.NoError(t, err)
	var dir []string
	for _, l := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		if f[4] == "/usr/local/nvidia/lib64" {
			dir = append(dir, l)
		}
		require.False(t, strings.Contains(f[4], "/usr/lib") && strings.Contains(f[4], "libcuda.so"),
			"a per-file libcuda mount: %s", l)
	}
	require.Len(t, dir, 1, "one directory mount:\n%s", mountinfo)
	require.Contains(t, dir[0], " - tmpfs gpu-nri-lib ro,", "the daemon's read-only directory")

	_, err = s.kubectl("-n", "gpu-nri", "delete", "ds", "gpu-nri", "--wait=true", "--timeout=90s")
	require.NoError(t, err)
	require.NoError(t, eventually(60*time.Second, func() error {
		if ents, _ := os.ReadDir(s.libraryDir); len(ents) != 0 {
			return fmt.Errorf("%d directories left on the node after the DaemonSet was deleted", len(ents))
		}
		return nil
	}))
	out, err := s.kubectl("-n", "default", "exec", "libdir-02", "--", "cudatest", "libcuda.so.1")
	require.NoError(t, err)
	require.Equal(t, s.cudaOK(2), strings.TrimSpace(out), "the running pod keeps its libraries")
}

// pluginLogs is the gpu-nri pod's log (for failure messages).
func (s *k8sSuite) pluginLogs() string {
	out, err := s.kubectl("-n", "gpu-nri", "logs", "ds/gpu-nri", "--tail=50")
	if err != nil {
		return "no logs: " + err.Error()
	}
	return out
}
