package harness

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

//go:noinline
func stacksTestWriter(l *sync.RWMutex, done <-chan struct{}) {
	l.Lock()
	<-done
	l.Unlock()
}

//go:noinline
func stacksTestReader(l *sync.RWMutex, started chan<- struct{}, done <-chan struct{}) {
	l.RLock()
	started <- struct{}{}
	<-done
	l.RUnlock()
}

// A real dump of this process: one reader holds an RWMutex, a writer
// waits for it and two more readers queue behind the writer, the shape of
// containerd's plugin-sync stall.
func TestStackSummaryGroupsBlockedGoroutines(t *testing.T) {
	var l sync.RWMutex
	done := make(chan struct{})
	started := make(chan struct{})
	go stacksTestReader(&l, started, done)
	<-started
	go stacksTestWriter(&l, done)
	time.Sleep(50 * time.Millisecond) // the writer reaches Lock
	for range 2 {
		go stacksTestReader(&l, started, done)
	}
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "[sync.RWMutex.RLock") == 2
	}, 5*time.Second, 10*time.Millisecond)
	buf := make([]byte, 1<<20)
	dump := string(buf[:runtime.Stack(buf, true)])
	close(done)
	for range 2 {
		<-started // let the queued readers finish
	}

	got := StackSummary(dump, 10, "harness.stacksTest")
	lines := strings.Split(got, "\n")
	require.Equal(t, []string{
		"2× [sync.RWMutex.RLock] harness.stacksTestReader",
		"1× [sync.RWMutex.Lock] harness.stacksTestWriter",
		"1× [chan receive] harness.stacksTestReader",
	}, lines, "lock waits first, the most frequent first")

	require.Equal(t, "2× [sync.RWMutex.RLock] harness.stacksTestReader\n(2 more stacks)", StackSummary(dump, 1, "harness.stacksTest"))
	require.Empty(t, StackSummary(dump, 10, "no.such.function"))
}

func TestStackSummaryDropsMinutesAndImportPaths(t *testing.T) {
	dump := "goroutine 7 [sync.RWMutex.Lock, 3 minutes]:\n" +
		"sync.(*RWMutex).Lock(0xc000123)\n\t/usr/lib/go/src/sync/rwmutex.go:155 +0x1\n" +
		"github.com/containerd/nri/pkg/adaptation.(*Adaptation).requestPluginSync(...)\n\t/x/adaptation.go:789\n" +
		"github.com/containerd/nri/pkg/adaptation.(*Adaptation).acceptPluginConnections.func1()\n\t/x/adaptation.go:687 +0x2\n" +
		"created by github.com/containerd/nri/pkg/adaptation.(*Adaptation).acceptPluginConnections in goroutine 1\n\t/x/adaptation.go:668\n\n" +
		"goroutine 9 [sync.RWMutex.Lock]:\n" +
		"github.com/containerd/nri/pkg/adaptation.(*Adaptation).requestPluginSync(...)\n\t/x/adaptation.go:789\n" +
		"github.com/containerd/nri/pkg/adaptation.(*Adaptation).acceptPluginConnections.func1()\n\t/x/adaptation.go:687\n"
	require.Equal(t, "2× [sync.RWMutex.Lock] adaptation.(*Adaptation).requestPluginSync < adaptation.(*Adaptation).acceptPluginConnections.func1",
		StackSummary(dump, 5, "containerd/nri"))
}
