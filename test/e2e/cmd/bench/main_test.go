package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The busy check skips the bench's own process chain (make bench-e2e, go run).
func TestAncestors(t *testing.T) {
	a := ancestors()
	require.True(t, a[os.Getpid()])
	require.True(t, a[os.Getppid()])
	require.False(t, a[1], "init is never skipped")
}

func TestMedianAndRatio(t *testing.T) {
	require.InDelta(t, 2.0, median([]time.Duration{3e6, 1e6, 2e6}), 1e-9)
	require.InDelta(t, 2.5, median([]time.Duration{4e6, 1e6, 2e6, 3e6}), 1e-9)
	require.Equal(t, "1.50", ratio(3, 2))
	require.Equal(t, "n/a", ratio(3, 0))
}

// A run is a measurement only when the load was at or under 1.0 as the
// rounds began and nothing else ran; the bench's own load during the rounds
// is recorded, not judged.
func TestNotMeasured(t *testing.T) {
	b := &bench{startLoad: 0.8, maxLoad: 1.5}
	require.False(t, b.notMeasured())
	b.startLoad = 1.3
	require.True(t, b.notMeasured())
	require.Equal(t, "1-minute load average 1.30 > 1.0 when the rounds began", b.busyReason())
	b.startLoad, b.busy = 0.5, []string{"another containerd was running"}
	require.True(t, b.notMeasured())
	require.Equal(t, "another containerd was running", b.busyReason())
}
