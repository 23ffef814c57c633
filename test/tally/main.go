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
	skipped        []string // "name: reason"
}

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
	var r result
	outputs := map[string][]string{} // test -> its output lines (for skip reasons)
	failedTests := map[string]int{}  // package -> failed tests seen
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
		if _, msg, ok := strings.Cut(l, ": "); ok && strings.Contains(l[:len(l)-len(msg)], ".go:") {
			return msg
		}
		return l
	}
	return "(no reason given)"
}
