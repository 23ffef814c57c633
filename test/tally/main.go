// Command tally reads `go test -json` on stdin, prints the tests' output as
// `go test -v` would, and ends with the suites' closing lines: the failed
// tests, the skipped ones with their reasons, and "N passed, M failed".
// Top-level tests and subtests are counted alike. The exit status is 1 when
// anything failed (a test, or a package that failed outside any test, e.g.
// a build error).
//
//	go test -tags e2e -json ./test/e2e/ | go run ./test/tally
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// result is the tally of one stream.
type result struct {
	passed, failed int
	failedNames    []string
	excerpts       map[string][]string // failed test -> its failure's excerpt
	skipped        []string            // "name: reason"
}

// The closing lines give excerpts for the first maxExcerpts failed tests
// without failed subtests, each at most excerptLines lines of excerptWidth
// characters.
const (
	maxExcerpts  = 4
	excerptLines = 12
	excerptWidth = 240
)

func main() {
	r, err := tally(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tally:", err)
		os.Exit(2)
	}
	if r.failed > 0 {
		os.Exit(1)
	}
}

func tally(in io.Reader, out io.Writer) (result, error) {
	r := result{excerpts: map[string][]string{}}
	outputs := map[string][]string{}   // test -> its output lines (for skip reasons and excerpts)
	failedTests := map[string]int{}    // package -> failed tests seen
	failedParents := map[string]bool{} // tests with a failed subtest
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil {
			// Not JSON (go vet or build output): pass it through.
			fmt.Fprintln(out, string(line))
			continue
		}
		key := ev.Package + " " + ev.Test
		switch ev.Action {
		case "output":
			fmt.Fprintf(out, "%s", ev.Output)
			if ev.Test != "" {
				outputs[key] = append(outputs[key], ev.Output)
			}
		case "pass":
			if ev.Test != "" {
				r.passed++
			}
		case "fail":
			if ev.Test != "" {
				r.failed++
				r.failedNames = append(r.failedNames, ev.Test)
				failedTests[ev.Package]++
				if i := strings.LastIndex(ev.Test, "/"); i > 0 {
					failedParents[ev.Package+" "+ev.Test[:i]] = true
				}
				if !failedParents[key] && len(r.excerpts) < maxExcerpts {
					if ex := failureExcerpt(outputs[key]); len(ex) > 0 {
						r.excerpts[ev.Test] = ex
					}
				}
			} else if failedTests[ev.Package] == 0 {
				r.failed++
				r.failedNames = append(r.failedNames, ev.Package+" (outside any test: build error, TestMain or timeout)")
			}
		case "skip":
			if ev.Test != "" {
				r.skipped = append(r.skipped, ev.Test+": "+skipReason(outputs[key]))
			}
		}
		if ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip" {
			delete(outputs, key)
		}
	}
	if err := sc.Err(); err != nil {
		return r, err
	}
	fmt.Fprintln(out)
	if len(r.failedNames) > 0 {
		fmt.Fprintln(out, "Failed:")
		for _, n := range r.failedNames {
			fmt.Fprintln(out, "  - "+n)
			for _, l := range r.excerpts[n] {
				fmt.Fprintln(out, "      "+l)
			}
		}
	}
	if len(r.skipped) > 0 {
		fmt.Fprintf(out, "Skipped (%d):\n", len(r.skipped))
		for _, s := range r.skipped {
			fmt.Fprintln(out, "  - "+s)
		}
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", r.passed, r.failed)
	return r, nil
}

// skipReason is the last message a skipped test logged (t.Skip's text,
// "file.go:NN: reason"), without the file position.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "=== ") {
			continue
		}
		if _, msg, ok := strings.Cut(l, ": "); ok && isPosition(l) {
			return msg
		}
		return l
	}
	return "(no reason given)"
}

// failureExcerpt is a failed test's own output from its last failure
// position ("file_test.go:NN: ..."): at most excerptLines lines, each with
// its runs of blanks made one and cut to excerptWidth, without the
// "=== RUN"/"--- FAIL" lines and testify's "Error Trace" and "Test" lines.
// It is nil when no line starts with a position.
func failureExcerpt(lines []string) []string {
	start := -1
	for i := len(lines) - 1; i >= 0 && start < 0; i-- {
		if isPosition(strings.TrimSpace(lines[i])) {
			start = i
		}
	}
	if start < 0 {
		return nil
	}
	var out []string
	inTrace := false
	for _, l := range lines[start:] {
		t := strings.Join(strings.Fields(l), " ")
		switch {
		case t == "", strings.HasPrefix(t, "=== "), strings.HasPrefix(t, "--- "), strings.HasPrefix(t, "Test: "):
			continue
		case strings.HasPrefix(t, "Error Trace:"):
			inTrace = true
			continue
		case inTrace && strings.HasPrefix(t, "/"):
			continue
		}
		inTrace = false
		if len(t) > excerptWidth {
			t = strings.ToValidUTF8(t[:excerptWidth-3], "") + "..."
		}
		if out = append(out, t); len(out) == excerptLines {
			break
		}
	}
	return out
}

// isPosition reports whether s starts with a Go source position
// ("name.go:12:").
func isPosition(s string) bool {
	file, rest, ok := strings.Cut(s, ".go:")
	if !ok || file == "" || strings.ContainsAny(file, " \t") {
		return false
	}
	digits, _, ok := strings.Cut(rest, ":")
	if !ok || digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
