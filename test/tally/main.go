// Command tally reads `go test -json` on stdin, prints the tests' output as
// it comes and closes with one line "N passed, M failed" (and the failed
// tests' names before it). It counts leaf tests: a test with subtests counts
// only when it failed without a failed subtest (a fixture that failed). It
// exits 1 when anything failed or a package failed to build.
//
//	go test -json ./test/k8s/ | go run ./test/tally
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type result struct {
	action       string
	children     int
	failedChilds int
}

func main() {
	_, failed, err := tally(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tally:", err)
		os.Exit(2)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// tally copies the output and prints the summary; it returns the counts.
func tally(in io.Reader, out io.Writer) (int, int, error) {
	results := map[string]*result{} // "pkg test" -> result
	var order []string
	pkgFailed := []string{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, string(line)) // build errors and the like
			continue
		}
		if e.Action == "output" {
			fmt.Fprint(out, e.Output)
			continue
		}
		if e.Test == "" {
			if e.Action == "fail" {
				pkgFailed = append(pkgFailed, e.Package)
			}
			continue
		}
		if e.Action != "pass" && e.Action != "fail" && e.Action != "skip" {
			continue
		}
		key := e.Package + " " + e.Test
		r := results[key]
		if r == nil {
			r = &result{}
			results[key] = r
			order = append(order, key)
		}
		r.action = e.Action
		if i := strings.LastIndex(e.Test, "/"); i > 0 {
			parent := e.Package + " " + e.Test[:i]
			if results[parent] == nil {
				results[parent] = &result{}
				order = append(order, parent)
			}
			results[parent].children++
			if e.Action == "fail" {
				results[parent].failedChilds++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	var passed, skipped int
	var failedNames []string
	for _, k := range order {
		r := results[k]
		switch {
		case r.action == "fail" && r.failedChilds == 0:
			failedNames = append(failedNames, k)
		case r.children > 0:
		case r.action == "pass":
			passed++
		case r.action == "skip":
			skipped++
		}
	}
	// A package that failed with no failed test (build error, panic in init) counts as one failure.
	for _, p := range pkgFailed {
		has := false
		for _, k := range failedNames {
			has = has || strings.HasPrefix(k, p+" ")
		}
		if !has {
			failedNames = append(failedNames, p+" (package)")
		}
	}
	fmt.Fprintln(out)
	if len(failedNames) > 0 {
		fmt.Fprintln(out, "Failed:")
		for _, k := range failedNames {
			fmt.Fprintln(out, "  -", k)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(out, "(%d skipped)\n", skipped)
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", passed, len(failedNames))
	return passed, len(failedNames), nil
}
