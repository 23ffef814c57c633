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

func TestTallyFailureExcerpts(t *testing.T) {
	long := strings.Repeat("x", 300)
	in := `{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"=== RUN   TestF/leaf\n"}
{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"    f_test.go:7: phase one fine\n"}
{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"    f_test.go:42: \n"}
{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"        \tError Trace:\t/src/f_test.go:42\n"}
{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"        \t            \t/src/f_test.go:99\n"}
{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"        \tError:      \tburst stopped\n"}
{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"        \tTest:       \tTestF/leaf\n"}
{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"        \tMessages:   \t` + long + `\n"}
{"Action":"output","Package":"p","Test":"TestF/leaf","Output":"--- FAIL: TestF/leaf (1.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestF/leaf"}
{"Action":"output","Package":"p","Test":"TestF","Output":"    f_test.go:80: the table\n"}
{"Action":"fail","Package":"p","Test":"TestF"}
{"Action":"output","Package":"p","Test":"TestG","Output":"    g_test.go:3: boom\n"}
{"Action":"fail","Package":"p","Test":"TestG"}
{"Action":"output","Package":"p","Test":"TestH","Output":"panic: nil map\n"}
{"Action":"fail","Package":"p","Test":"TestH"}
{"Action":"fail","Package":"p"}
`
	var out bytes.Buffer
	r, err := tally(strings.NewReader(in), &out)
	require.NoError(t, err)
	require.Equal(t, 4, r.failed)
	require.Equal(t, []string{"f_test.go:42:", "Error: burst stopped", "Messages: " + strings.Repeat("x", excerptWidth-3-len("Messages: ")) + "..."},
		r.excerpts["TestF/leaf"], "from the last position, without the trace and test lines, cut")
	require.NotContains(t, r.excerpts, "TestF", "a parent failed by its subtest gets no excerpt")
	require.Equal(t, []string{"g_test.go:3: boom"}, r.excerpts["TestG"])
	require.NotContains(t, r.excerpts, "TestH", "no position, no excerpt")
	closing := out.String()[strings.LastIndex(out.String(), "Failed:"):]
	require.Equal(t, "Failed:\n  - TestF/leaf\n      f_test.go:42:\n      Error: burst stopped\n      Messages: "+strings.Repeat("x", excerptWidth-3-len("Messages: "))+"...\n"+
		"  - TestF\n  - TestG\n      g_test.go:3: boom\n  - TestH\n0 passed, 4 failed\n", closing)
}

func TestIsPosition(t *testing.T) {
	for s, want := range map[string]bool{
		"faults_test.go:420:": true, "a.go:1: boom": true, "a.go:x:": false, "a.go:12": false,
		"/src/a.go:12:": true, "/src/a.go:12": false, "see a b.go:1:": false, ".go:1:": false, "Messages: x": false,
	} {
		require.Equal(t, want, isPosition(s), s)
	}
}
