package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// DumpStacks asks containerd for all its goroutines (SIGUSR1, on which
// containerd writes them to TempDir()/containerd.<pid>.stacks.log) and
// returns that file's text once containerd has written it.
func (c *Containerd) DumpStacks(ctx context.Context) (string, error) {
	pid := c.Pid()
	if pid <= 0 {
		return "", fmt.Errorf("harness: containerd stacks: containerd is not running")
	}
	path := filepath.Join(c.TempDir(), fmt.Sprintf("containerd.%d.stacks.log", pid))
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return "", fmt.Errorf("harness: containerd stacks: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var last int64 = -1
	for {
		// containerd creates the file, writes it in one call and closes it:
		// a size that holds for one poll is the whole dump.
		if st, err := os.Stat(path); err == nil && !st.ModTime().Before(t0.Truncate(time.Second)) && st.Size() > 0 {
			if st.Size() == last {
				data, err := os.ReadFile(path)
				if err != nil {
					return "", fmt.Errorf("harness: containerd stacks: %w", err)
				}
				return string(data), nil
			}
			last = st.Size()
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("harness: containerd stacks: %s not written within 5 s after SIGUSR1", path)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var (
	goroutineHeader = regexp.MustCompile(`^goroutine \d+ \[([^\]]*)\]:$`)
	minutesInState  = regexp.MustCompile(`, \d+ minutes?$`)
)

// StackSummary condenses a Go goroutine dump to the goroutines whose stack
// has a frame containing one of the substrings in match: one line per
// distinct stack, "N× [state] f1 < f2 < ..." with the innermost function
// first and only the frames that match; stacks waiting for a lock come
// first, then the most frequent, at most limit lines (and a count of those left out). States lose their "N
// minutes" so goroutines blocked the same way group together.
func StackSummary(dump string, limit int, match ...string) string {
	type group struct {
		key    string
		count  int
		onLock bool
	}
	counts := map[string]*group{}
	for _, g := range strings.Split(dump, "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		h := goroutineHeader.FindStringSubmatch(lines[0])
		if h == nil {
			continue
		}
		var frames []string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by ") {
				continue // file:line, or the creator
			}
			fn := l
			if i := strings.LastIndex(fn, "("); i > 0 {
				fn = fn[:i]
			}
			for _, m := range match {
				if strings.Contains(fn, m) {
					frames = append(frames, shortFunc(fn))
					break
				}
			}
		}
		if len(frames) == 0 {
			continue
		}
		state := minutesInState.ReplaceAllString(h[1], "")
		key := "[" + state + "] " + strings.Join(frames, " < ")
		if counts[key] == nil {
			counts[key] = &group{key: key, onLock: strings.HasPrefix(state, "sync.") || strings.Contains(state, "semacquire")}
		}
		counts[key].count++
	}
	groups := make([]*group, 0, len(counts))
	for _, g := range counts {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].onLock != groups[j].onLock {
			return groups[i].onLock
		}
		if groups[i].count != groups[j].count {
			return groups[i].count > groups[j].count
		}
		return groups[i].key < groups[j].key
	})
	var b strings.Builder
	for i, g := range groups {
		if i == limit {
			fmt.Fprintf(&b, "(%d more stacks)\n", len(groups)-limit)
			break
		}
		fmt.Fprintf(&b, "%d× %s\n", g.count, g.key)
	}
	return strings.TrimRight(b.String(), "\n")
}

// shortFunc drops a function's import path up to its package:
// "github.com/containerd/nri/pkg/adaptation.(*Adaptation).requestPluginSync"
// becomes "adaptation.(*Adaptation).requestPluginSync".
func shortFunc(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		return fn[i+1:]
	}
	return fn
}
