package inventory_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// TestRealNodes replaces the fake tree's nodes with real character devices
// (mknod needs root) and discovers them with the default, stat-based stater.
func TestRealNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod of character devices needs root; run as root to test the default NodeStater on real nodes")
	}
	h := newFakeHost(t, fixture{gpus: 2, version: "550.54.14", mig: map[int]int{1: 1}})
	for p, n := range h.nodes.nodes {
		require.NoError(t, os.Remove(p))
		err := unix.Mknod(p, unix.S_IFCHR|0o660, int(unix.Mkdev(uint32(n.Major), uint32(n.Minor))))
		if err != nil {
			t.Skipf("mknod %s: %v (no CAP_MKNOD or nodev mount?)", p, err)
		}
		require.NoError(t, os.Chmod(p, 0o660)) // mknod applies the umask
		require.NoError(t, os.Chown(p, 0, 44))
	}
	inv, err := inventory.Discover(h.host)
	require.NoError(t, err)
	require.Equal(t, inventory.DeviceNode{Path: "/dev/nvidia0", HostPath: "/dev/nvidia0", Type: "c",
		Major: 195, Minor: 0, FileMode: 0o660, UID: 0, GID: 44}, inv.GPUs[1].Node)
	require.Equal(t, int64(508), inv.UVM.Major)
	require.Len(t, inv.GPUs[0].DRI, 2)
	require.Len(t, inv.GPUs[1].MIG, 1)
	require.Equal(t, uint32(44), inv.GPUs[1].MIG[0].Caps[1].GID)
	require.Len(t, inv.Extra["gds"], 3)

	// The exported stater tells block devices and plain files apart.
	blk := filepath.Join(t.TempDir(), "loop9")
	require.NoError(t, unix.Mknod(blk, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 9))))
	info, err := inventory.StatNodeStater().StatNode(blk)
	require.NoError(t, err)
	require.Equal(t, inventory.NodeInfo{IsBlock: true, Major: 7, Minor: 9, Perm: 0o600}, info)
}

func TestStatNodeStater(t *testing.T) {
	dir := t.TempDir()
	info, err := inventory.StatNodeStater().StatNode(dir)
	require.NoError(t, err)
	require.False(t, info.IsChar)
	require.False(t, info.IsBlock)
	_, err = inventory.StatNodeStater().StatNode(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "missing")
}

// TestDefaultStaterRefusesPlainFiles: without a fake stater, the fixture's
// plain files are not device nodes, so no node is emitted.
func TestDefaultStaterRefusesPlainFiles(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14"})
	inv, err := inventory.Discover(h.host)
	require.NoError(t, err)
	require.Nil(t, inv.Ctl)
	require.Nil(t, inv.UVM)
	require.Empty(t, inv.GPUs[0].Node.HostPath)
	require.Empty(t, inv.GPUs[0].DRI)
	require.Empty(t, inv.Extra["gds"])
	require.True(t, hasWarning(inv, "/dev/nvidia0 is not a character device"), inv.Warnings)
	require.True(t, hasWarning(inv, "GPU 0 (0000:1a:00.0) is unusable"), inv.Warnings)
	// The libraries do not depend on nodes.
	require.NotEmpty(t, inv.Libraries[inventory.Compute])
}
