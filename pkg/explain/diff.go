package explain

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the LCS table (lines(a) x lines(b)); larger inputs get
// a whole-file replacement diff instead.
const maxDiffCells = 16 << 20

// Diff returns a unified diff of a and b, line by line, with ctx lines of
// context around each change, under the file names from and to. Equal
// inputs give "".
func Diff(from, to, a, b string, ctx int) string {
	if a == b {
		return ""
	}
	al, bl := splitLines(a), splitLines(b)
	ops := lcsOps(al, bl)

	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", from, to)
	// Group ops into hunks: changes plus ctx lines around them.
	n := len(ops)
	for i := 0; i < n; {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-ctx, 0)
		end := i
		for end < n {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			// A run of equal lines: does another change follow within 2*ctx?
			j := end
			for j < n && ops[j].kind == ' ' {
				j++
			}
			if j < n && j-end <= 2*ctx {
				end = j
				continue
			}
			end = min(end+ctx, n)
			break
		}
		aStart, bStart := ops[start].ai, ops[start].bi
		var aN, bN int
		var body strings.Builder
		for _, op := range ops[start:end] {
			switch op.kind {
			case ' ':
				aN++
				bN++
				body.WriteString(" " + al[op.ai] + "\n")
			case '-':
				aN++
				body.WriteString("-" + al[op.ai] + "\n")
			case '+':
				bN++
				body.WriteString("+" + bl[op.bi] + "\n")
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n%s", hunkRange(aStart, aN), hunkRange(bStart, bN), body.String())
		i = end
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

type diffOp struct {
	kind   byte // ' ', '-', '+'
	ai, bi int  // line index in a and b (position before which an insert lands)
}

// lcsOps returns the edit script from a to b by longest common subsequence.
func lcsOps(a, b []string) []diffOp {
	// Trim the common prefix and suffix: the table then covers only the
	// changed middle.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	am, bm := a[pre:len(a)-suf], b[pre:len(b)-suf]
	var ops []diffOp
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{' ', i, i})
	}
	if len(am)*len(bm) > maxDiffCells {
		for i := range am {
			ops = append(ops, diffOp{'-', pre + i, pre})
		}
		for j := range bm {
			ops = append(ops, diffOp{'+', pre + len(am), pre + j})
		}
	} else {
		// t[i][j] = LCS length of am[i:] and bm[j:].
		w := len(bm) + 1
		t := make([]int32, (len(am)+1)*w)
		for i := len(am) - 1; i >= 0; i-- {
			for j := len(bm) - 1; j >= 0; j-- {
				if am[i] == bm[j] {
					t[i*w+j] = t[(i+1)*w+j+1] + 1
				} else {
					t[i*w+j] = max(t[(i+1)*w+j], t[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(am) || j < len(bm) {
			switch {
			case i < len(am) && j < len(bm) && am[i] == bm[j]:
				ops = append(ops, diffOp{' ', pre + i, pre + j})
				i++
				j++
			case i < len(am) && (j == len(bm) || t[(i+1)*w+j] >= t[i*w+j+1]):
				ops = append(ops, diffOp{'-', pre + i, pre + j})
				i++
			default:
				ops = append(ops, diffOp{'+', pre + i, pre + j})
				j++
			}
		}
	}
	for k := 0; k < suf; k++ {
		ops = append(ops, diffOp{' ', len(a) - suf + k, len(b) - suf + k})
	}
	return ops
}
