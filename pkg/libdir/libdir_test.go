package libdir_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/pkg/edits"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/libdir"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounts need root (CI runs as root)")
	}
}

// host writes the driver's libraries of version v under dir and returns an
// inventory naming them.
func host(t *testing.T, dir, v string) *inventory.Inventory {
	t.Helper()
	lib := filepath.Join(dir, "usr/lib/x86_64-linux-gnu")
	require.NoError(t, os.MkdirAll(lib, 0o755))
	file := func(c inventory.Capability, base, soname string) inventory.File {
		p := filepath.Join(lib, base+v)
		require.NoError(t, os.WriteFile(p, []byte(base+v), 0o644))
		return inventory.File{HostPath: p, Path: "/usr/lib/x86_64-linux-gnu/" + base + v, SONAME: soname, Capability: c}
	}
	inv, err := inventory.New(&inventory.Inventory{DriverVersion: v, Libraries: map[inventory.Capability][]inventory.File{
		inventory.Compute: {file(inventory.Compute, "libcuda.so.", "libcuda.so.1")},
		inventory.Utility: {file(inventory.Utility, "libnvidia-ml.so.", "libnvidia-ml.so.1")},
	}})
	require.NoError(t, err)
	return inv
}

func same(t *testing.T, a, b string) {
	t.Helper()
	var x, y unix.Stat_t
	require.NoError(t, unix.Stat(a, &x))
	require.NoError(t, unix.Stat(b, &y))
	require.Equal(t, [2]uint64{x.Dev, x.Ino}, [2]uint64{y.Dev, y.Ino}, "%s binds %s", a, b)
}

type errs struct {
	mu  sync.Mutex
	all []error
}

func (e *errs) report(err error) { e.mu.Lock(); e.all = append(e.all, err); e.mu.Unlock() }

func TestManager(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	root := filepath.Join(tmp, "lib")
	view := func(p string) string { return p }
	cu := []inventory.Capability{inventory.Utility, inventory.Compute}
	m, err := libdir.New(root, view, libdir.WithSets(cu), libdir.WithGrace(300*time.Millisecond))
	require.NoError(t, err)

	var cur atomic.Pointer[inventory.Inventory]
	v1 := host(t, tmp, "550.54.14")
	cur.Store(v1)
	ctx, cancel := context.WithCancel(context.Background())
	var e errs
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx, cur.Load, e.report) }()
	t.Cleanup(func() { cancel(); <-done })

	var d string
	require.Eventually(t, func() bool { d = lookup(m, v1, cu); return d != "" }, 5*time.Second, 10*time.Millisecond, "the default set is built without a request")
	found := libdir.Find(root, view, edits.PlanDir(v1, cu))
	require.NotNil(t, found)
	require.Equal(t, d, found.HostPath, "Find sees the same directory")
	require.Equal(t, m.LibraryDir(v1, cu).Plan, found.Plan, "with the same plan")
	require.Contains(t, libdir.Built(root), filepath.Base(d), "Built lists it")
	require.True(t, libdir.Complete(d))
	same(t, filepath.Join(d, "libcuda.so.550.54.14"), v1.Libraries[inventory.Compute][0].HostPath)
	same(t, filepath.Join(d, "libnvidia-ml.so.1"), v1.Libraries[inventory.Utility][0].HostPath)
	same(t, filepath.Join(d, "libcuda.so"), v1.Libraries[inventory.Compute][0].HostPath)
	target, err := os.Readlink(filepath.Join(d, "libcuda.so.1"))
	require.NoError(t, err)
	require.Equal(t, "libcuda.so.550.54.14", target, "relative links")
	require.ErrorIs(t, os.WriteFile(filepath.Join(d, "x"), nil, 0o644), unix.EROFS)
	require.ErrorIs(t, os.WriteFile(filepath.Join(d, "libcuda.so.550.54.14"), nil, 0o644), unix.EROFS)

	// Another set: a miss, then built on request.
	c := []inventory.Capability{inventory.Compute}
	require.Empty(t, lookup(m, v1, c))
	var dc string
	require.Eventually(t, func() bool { dc = lookup(m, v1, c); return dc != "" }, 5*time.Second, 10*time.Millisecond)
	require.NoFileExists(t, filepath.Join(dc, "libnvidia-ml.so.1"), "only the set's libraries")

	// A new driver: the old inventory gets nothing, the new one new
	// directories (both sets), the old ones go after the grace period.
	v2 := host(t, tmp, "560.1")
	cur.Store(v2)
	var d2 string
	require.Eventually(t, func() bool { d2 = lookup(m, v2, cu); return d2 != "" && lookup(m, v2, c) != "" }, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, lookup(m, v1, cu), "never an old inventory's directory")
	same(t, filepath.Join(d2, "libcuda.so.1"), v2.Libraries[inventory.Compute][0].HostPath)
	require.DirExists(t, d, "kept during the grace period")
	require.Eventually(t, func() bool { _, err := os.Stat(d); return os.IsNotExist(err) }, 5*time.Second, 20*time.Millisecond, "detached after it")

	// The same names, a replaced file (a reinstall): a new directory.
	lib := v2.Libraries[inventory.Compute][0].HostPath
	require.NoError(t, os.Remove(lib))
	require.NoError(t, os.WriteFile(lib, []byte("reinstalled"), 0o644))
	v2b := host(t, tmp, "560.1") // rewrites both files: new inodes, same plan names
	cur.Store(v2b)
	require.Eventually(t, func() bool { x := lookup(m, v2b, cu); return x != "" && x != d2 }, 5*time.Second, 10*time.Millisecond)
	same(t, filepath.Join(lookup(m, v2b, cu), "libcuda.so.1"), lib)

	cancel()
	<-done
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, ents, "Run detaches everything it made when it ends")
	e.mu.Lock()
	require.Empty(t, e.all)
	e.mu.Unlock()
}

func TestNewCleansAndRefuses(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	root := filepath.Join(tmp, "lib")
	left := filepath.Join(root, "compute.utility-0123456789abcdef.3")
	require.NoError(t, os.MkdirAll(left, 0o755))
	require.NoError(t, unix.Mount("t", left, "tmpfs", 0, "size=16k"))
	_, err := libdir.New(root, func(p string) string { return p })
	require.NoError(t, err)
	require.NoDirExists(t, left, "a directory left by an earlier run is detached and removed")

	require.NoError(t, os.WriteFile(filepath.Join(root, "libcuda.so.1"), nil, 0o644))
	_, err = libdir.New(root, func(p string) string { return p })
	require.ErrorContains(t, err, `holds "libcuda.so.1", which gpu-nri did not make`)
	require.FileExists(t, filepath.Join(root, "libcuda.so.1"), "nothing it did not make is touched")
}

func TestBuildErrorKeepsPerFile(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	root := filepath.Join(tmp, "lib")
	cu := []inventory.Capability{inventory.Utility, inventory.Compute}
	m, err := libdir.New(root, func(p string) string { return p }, libdir.WithSets(cu))
	require.NoError(t, err)
	inv := host(t, tmp, "550.54.14")
	require.NoError(t, os.Remove(inv.Libraries[inventory.Compute][0].HostPath)) // gone before the build
	ctx, cancel := context.WithCancel(context.Background())
	var e errs
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx, func() *inventory.Inventory { return inv }, e.report) }()
	require.Eventually(t, func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.all) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.ErrorContains(t, e.all[0], "binding "+inv.Libraries[inventory.Compute][0].HostPath)
	require.Empty(t, lookup(m, inv, cu), "no directory: the container keeps its per-file mounts")
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, ents, "the half-built directory is removed")
	cancel()
	<-done
}

// lookup is m.LibraryDir's host path ("" for none).
func lookup(m *libdir.Manager, inv *inventory.Inventory, caps []inventory.Capability) string {
	if d := m.LibraryDir(inv, caps); d != nil {
		return d.HostPath
	}
	return ""
}
