package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTally(t *testing.T) {
	cases := []struct {
		name                 string
		in                   string
		passed, failed, skip int
		closing              string
		contains             []string
	}{
		{
			name: "subtests counted with their parents",
			in: `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA/x"}
{"Action":"output","Package":"p","Test":"TestA/y","Output":"    a_test.go:9: boom\n"}
{"Action":"fail","Package":"p","Test":"TestA/y"}
{"Action":"fail","Package":"p","Test":"TestA"}
{"Action":"fail","Package":"p"}
`,
			passed: 1, failed: 2, closing: "1 passed, 2 failed",
			contains: []string{"  - TestA/y\n", "  - TestA\n", "    a_test.go:9: boom\n"},
		},
		{
			name: "skips listed with their reason",
			in: `{"Action":"output","Package":"p","Test":"TestB","Output":"    harness.go:12: needs root: run it as root\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p"}
`,
			skip: 1, closing: "0 passed, 0 failed",
			contains: []string{"Skipped (1):\n  - TestB: needs root: run it as root\n"},
		},
		{
			name:     "a package failing outside tests counts",
			in:       "# build failed\n" + `{"Action":"fail","Package":"p"}` + "\n",
			failed:   1,
			closing:  "0 passed, 1 failed",
			contains: []string{"# build failed\n", "p (outside any test"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			r, err := tally(strings.NewReader(c.in), &out)
			require.NoError(t, err)
			require.Equal(t, c.passed, r.passed)
			require.Equal(t, c.failed, r.failed)
			require.Len(t, r.skipped, c.skip)
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			require.Equal(t, c.closing, lines[len(lines)-1])
			for _, s := range c.contains {
				require.Contains(t, out.String(), s)
			}
		})
	}
}
