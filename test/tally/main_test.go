package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTally(t *testing.T) {
	ev := func(action, test string) string {
		return `{"Action":"` + action + `","Package":"p","Test":"` + test + `"}`
	}
	for _, tc := range []struct {
		name           string
		events         []string
		passed, failed int
		last           string
	}{
		{name: "leaves only", events: []string{ev("pass", "T/a"), ev("fail", "T/b"), ev("fail", "T")},
			passed: 1, failed: 1, last: "1 passed, 1 failed"},
		{name: "fixture failure counts once", events: []string{ev("pass", "T/a"), ev("fail", "T/c"), ev("fail", "T")},
			passed: 1, failed: 1, last: "1 passed, 1 failed"},
		{name: "parent fails on its own", events: []string{ev("pass", "T/a"), ev("fail", "T")},
			passed: 1, failed: 1, last: "1 passed, 1 failed"},
		{name: "skip is not a pass", events: []string{ev("skip", "T"), `{"Action":"pass","Package":"p"}`},
			passed: 0, failed: 0, last: "0 passed, 0 failed"},
		{name: "build failure", events: []string{"# p", "x.go:1: syntax error", `{"Action":"fail","Package":"p"}`},
			passed: 0, failed: 1, last: "0 passed, 1 failed"},
		{name: "output copied", events: []string{`{"Action":"output","Package":"p","Test":"T","Output":"hello\n"}`, ev("pass", "T")},
			passed: 1, failed: 0, last: "1 passed, 0 failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p, f, err := tally(strings.NewReader(strings.Join(tc.events, "\n")), &out)
			require.NoError(t, err)
			require.Equal(t, tc.passed, p)
			require.Equal(t, tc.failed, f)
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			require.Equal(t, tc.last, lines[len(lines)-1])
		})
	}
}
