package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// FuzzParseRequirement: no panic, bounded time, and a parsed expression
// prints back to text that parses to the same expression and evaluates the
// same way.
func FuzzParseRequirement(f *testing.F) {
	for _, s := range []string{"cuda>=12.4", "cuda>=12.4 brand=tesla,driver>=470,driver<471", "arch=9.0", "brand!=GeForce",
		"driver<=550.54.14", "cuda>12.9", "", ",", "cuda", "cuda==1", "brand<x"} {
		f.Add(s)
	}
	host := Facts{CUDA: "12.4", Driver: "550.54.14", Arch: "9.0", Brand: "Tesla"}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseRequirement(s)
		if err != nil {
			return
		}
		res := e.Eval(host)
		_ = e.Eval(Facts{})
		_, _ = CheckRequirements([]request.Requirement{{Name: "NVIDIA_REQUIRE_X", Expr: s}}, testInventory().GPUs, testInventory(),
			config.Requirements{Unverifiable: "allow"}, false)
		back, err := ParseRequirement(canonical(e))
		require.NoError(t, err, "canonical form %q of %q", canonical(e), s)
		require.Equal(t, canonical(e), canonical(back))
		require.Equal(t, res.OK, back.Eval(host).OK)
		require.LessOrEqual(t, len(canonical(e)), len(strings.TrimSpace(s))+1)
	})
}
