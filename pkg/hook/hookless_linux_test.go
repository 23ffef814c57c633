//go:build linux

package hook

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
	"github.com/stretchr/testify/require"
)

// materialize copies each planned mount's source to its destination in root
// (what the runtime's bind mounts would show the container).
func materialize(t *testing.T, root string, plan []hookproto.MountPlan) {
	t.Helper()
	for _, m := range plan {
		tree(t, root, "copy "+m.Destination+" "+m.Source)
	}
}

// TestHooklessDebianLayoutLoads checks the loader rule hookless mode relies
// on with a real glibc loader (the host's, Debian): no ld.so.cache entry, no
// environment, the library found under its SONAME and libcuda.so in the
// default directory. (The RHEL rule, /usr/lib64, needs a RHEL loader: e2e.)
func TestHooklessDebianLayoutLoads(t *testing.T) {
	requireRoot(t)
	lib := filepath.Join(glibcRoot(t), "usr/lib/gpu-nri/libcuda.so.999.88.77")
	libs := []hookproto.HooklessLib{{Path: lib, SONAME: "libcuda.so.1"}}

	root := glibcRoot(t)
	materialize(t, root, hookproto.HooklessMounts(libs, hookproto.LayoutAuto))
	out, err := inChroot(t, root, "/usr/bin/dlopen", "libcuda.so.1", "libcuda.so")
	require.NoError(t, err, out)

	// Fallback layout: only with LD_LIBRARY_PATH.
	root = glibcRoot(t)
	materialize(t, root, hookproto.HooklessMounts(libs, hookproto.LayoutFallback))
	out, err = inChroot(t, root, "/usr/bin/dlopen", "libcuda.so.1")
	require.Error(t, err, out)
	cmd := exec.Command("/usr/bin/dlopen", "libcuda.so.1", "libcuda.so")
	cmd.Env = []string{"LD_LIBRARY_PATH=" + hookproto.HooklessLibraryPath("/opt/image", hookproto.HooklessDir)}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
}
