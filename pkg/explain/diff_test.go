package explain_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/explain"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name, a, b, want string
	}{
		{"equal", "x\ny\n", "x\ny\n", ""},
		{"insert", "a\nb\nc\n", "a\nb\nX\nc\n", "--- A\n+++ B\n@@ -2,2 +2,3 @@\n b\n+X\n c\n"},
		{"delete", "a\nb\nc\n", "a\nc\n", "--- A\n+++ B\n@@ -1,3 +1,2 @@\n a\n-b\n c\n"},
		{"replace", "a\nb\nc\n", "a\nB\nc\n", "--- A\n+++ B\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"from empty", "", "a\n", "--- A\n+++ B\n@@ -0,0 +1,1 @@\n+a\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\nX\n3\n4\n5\n6\n7\n8\nY\n10\n",
			"--- A\n+++ B\n@@ -1,3 +1,3 @@\n 1\n-2\n+X\n 3\n@@ -8,3 +8,3 @@\n 8\n-9\n+Y\n 10\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, explain.Diff("A", "B", tt.a, tt.b, 1))
		})
	}
	// Changes close together share one hunk.
	d := explain.Diff("A", "B", "1\n2\n3\n4\n", "X\n2\n3\nY\n", 1)
	require.Equal(t, 1, strings.Count(d, "@@ -"))
}
