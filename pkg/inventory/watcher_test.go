package inventory_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// rebuild empties the fake host and builds it again from f (a driver
// upgrade or a reconfiguration).
func (h *fakeHost) rebuild(f fixture) {
	entries, err := os.ReadDir(h.dir)
	require.NoError(h.t, err)
	for _, e := range entries {
		require.NoError(h.t, os.RemoveAll(filepath.Join(h.dir, e.Name())))
	}
	h.nodes.reset()
	h.build(f)
}

func TestFingerprint(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 2, version: "550.54.14"})
	fp1, err := inventory.ComputeFingerprint(h.host)
	require.NoError(t, err)
	fp2, err := inventory.ComputeFingerprint(h.host)
	require.NoError(t, err)
	require.Equal(t, fp1, fp2, "stable")

	changes := []struct {
		name   string
		change func(t *testing.T)
	}{
		{"ld.so.cache rewritten", func(t *testing.T) {
			p := filepath.Join(h.dir, "etc/ld.so.cache")
			require.NoError(t, os.Chtimes(p, time.Now(), time.Now().Add(time.Hour)))
		}},
		{"MIG device created", func(t *testing.T) {
			h.write("proc/driver/nvidia/capabilities/gpu0/mig/gi7/ci0/access", "DeviceFileMinor: 99\n")
		}},
		{"nvidia node appears", func(t *testing.T) { h.write("dev/nvidia-uvm-tools2", "") }},
		{"GPU appears", func(t *testing.T) { h.write("proc/driver/nvidia/gpus/0000:99:00.0/information", "") }},
		{"persistenced starts", func(t *testing.T) { h.write("run/nvidia-persistenced/socket", "") }},
		{"uvm reloaded", func(t *testing.T) {
			h.write("proc/devices", "Character devices:\n195 nvidia-frontend\n400 nvidia-uvm\n")
		}},
		{"driver gone", func(t *testing.T) {
			require.NoError(t, os.Remove(filepath.Join(h.dir, "proc/driver/nvidia/version")))
		}},
	}
	prev := fp1
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			c.change(t)
			fp, err := inventory.ComputeFingerprint(h.host)
			require.NoError(t, err)
			require.NotEqual(t, prev, fp)
			prev = fp
		})
	}
	// Unrelated changes do not matter.
	h.write("dev/tty9", "")
	h.write("usr/lib/x86_64-linux-gnu/libunrelated.so.1", "")
	fp, err := inventory.ComputeFingerprint(h.host)
	require.NoError(t, err)
	require.Equal(t, prev, fp)
}

func TestWatcherDriverUpgrade(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 2, version: "550.54.14"})
	w, err := inventory.NewWatcher(h.host, inventory.WithNodeStater(h.nodes))
	require.NoError(t, err)
	old := w.Current()
	require.NotNil(t, old)
	require.NoError(t, w.Err())
	require.Equal(t, "550.54.14", old.DriverVersion)

	changed, err := w.Refresh()
	require.NoError(t, err)
	require.False(t, changed, "nothing changed")
	require.Same(t, old, w.Current())

	h.rebuild(fixture{gpus: 2, version: "570.86.15", mig: map[int]int{0: 1}})
	changed, err = w.Refresh()
	require.NoError(t, err)
	require.True(t, changed)
	cur := w.Current()
	require.Equal(t, "570.86.15", cur.DriverVersion)
	require.Equal(t, "/usr/lib/x86_64-linux-gnu/libcuda.so.570.86.15", cur.Libraries[inventory.Compute][0].HostPath)
	require.Equal(t, "/lib/firmware/nvidia/570.86.15/gsp_ga10x.bin", cur.Firmware[0].HostPath)
	require.Len(t, cur.GPUs[0].MIG, 1)
	// The old inventory is untouched.
	require.Equal(t, "550.54.14", old.DriverVersion)
	require.Equal(t, "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14", old.Libraries[inventory.Compute][0].HostPath)
	require.Empty(t, old.GPUs[0].MIG)
}

func TestWatcherNoDriver(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14", omit: map[string]bool{"driver": true}})
	w, err := inventory.NewWatcher(h.host, inventory.WithNodeStater(h.nodes))
	require.NoError(t, err)
	require.Nil(t, w.Current())
	require.ErrorIs(t, w.Err(), inventory.ErrNoDriver)

	changed, err := w.Refresh()
	require.NoError(t, err, "no change since the failed discovery: nothing to do")
	require.False(t, changed)

	// The driver is loaded.
	h.rebuild(fixture{gpus: 1, version: "550.54.14"})
	changed, err = w.Refresh()
	require.NoError(t, err)
	require.True(t, changed)
	require.NotNil(t, w.Current())
	require.NoError(t, w.Err())

	// The driver is unloaded: no stale inventory stays.
	require.NoError(t, os.Remove(filepath.Join(h.dir, "proc/driver/nvidia/version")))
	changed, err = w.Refresh()
	require.ErrorIs(t, err, inventory.ErrNoDriver)
	require.True(t, changed)
	require.Nil(t, w.Current())
}

func TestWatcherRefreshIfStale(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14", mig: map[int]int{0: 1}})
	var calls int
	uuid := "MIG-11111111-1111-1111-1111-111111111111"
	facts := func(inv *inventory.Inventory) error {
		calls++
		for i := range inv.GPUs {
			for j := range inv.GPUs[i].MIG {
				inv.GPUs[i].MIG[j].UUID = uuid
			}
		}
		return nil
	}
	w, err := inventory.NewWatcher(h.host, inventory.WithNodeStater(h.nodes), inventory.WithGPUFacts(facts))
	require.NoError(t, err)
	require.Equal(t, 1, calls)

	// MIG device recreated with a new UUID: invisible to the fingerprint.
	uuid = "MIG-22222222-2222-2222-2222-222222222222"
	changed, err := w.Refresh()
	require.NoError(t, err)
	require.False(t, changed)
	_, ok := w.Current().MIGByUUID(uuid)
	require.False(t, ok)

	changed, err = w.RefreshIfStale(time.Hour)
	require.NoError(t, err)
	require.False(t, changed, "rate-limited: discovered less than an hour ago")
	require.Equal(t, 1, calls)

	changed, err = w.RefreshIfStale(0)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 2, calls)
	_, ok = w.Current().MIGByUUID(uuid)
	require.True(t, ok)
}

func TestWatcherRun(t *testing.T) {
	h := newFakeHost(t, fixture{gpus: 1, version: "550.54.14"})
	w, err := inventory.NewWatcher(h.host, inventory.WithNodeStater(h.nodes))
	require.NoError(t, err)

	type event struct {
		old, new *inventory.Inventory
		err      error
	}
	events := make(chan event, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		w.Run(ctx, 5*time.Millisecond, func(old, new *inventory.Inventory, err error) {
			events <- event{old, new, err}
		})
	})
	first := w.Current()
	h.rebuild(fixture{gpus: 2, version: "570.86.15"})
	// The watcher may catch the tree half rebuilt; it must converge.
	var ev event
	for n := 0; ev.new == nil || ev.new.DriverVersion != "570.86.15" || len(ev.new.GPUs) != 2; n++ {
		select {
		case ev = <-events:
			if n == 0 {
				require.Same(t, first, ev.old)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no change to the new driver reported; last event %+v", ev)
		}
	}
	require.NoError(t, ev.err)
	// Concurrent readers see a whole inventory, never a partial one.
	for range 100 {
		inv := w.Current()
		require.Len(t, inv.GPUs, 2)
	}
	cancel()
	wg.Wait()

	// Polling disabled.
	done := make(chan struct{})
	go func() { w.Run(context.Background(), 0, nil); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run with interval 0 did not return")
	}
}
