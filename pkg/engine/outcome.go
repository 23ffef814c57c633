package engine

import (
	"errors"

	"github.com/gpu-nri/gpu-nri/pkg/policy"
)

// Outcomes of one decision: the audit line's outcome field, the metrics'
// outcome label and `gpu-nri explain`'s Outcome, everywhere the same words.
const (
	OutcomeInjected = "injected" // the container gets edits
	OutcomeNotGPU   = "not-gpu"  // the container asked for nothing
	OutcomeRefused  = "refused"  // a policy rule or a requirement refused it
	OutcomeError    = "error"    // bad input, unknown device, no driver, ...
	// OutcomeLate is the daemon's word for an answer that came after the
	// runtime's deadline for the request: the runtime has already given up
	// (created the container without gpu-nri, or failed it), so whatever
	// the decision was, nothing was granted. Decide never returns it.
	OutcomeLate = "late"
)

// classify gives the outcome of res and err.
func classify(res *Result, err error) string {
	var re *policy.RefusedError
	var qe *policy.RequirementError
	switch {
	case err != nil && (errors.As(err, &re) || errors.As(err, &qe)):
		return OutcomeRefused
	case err != nil:
		return OutcomeError
	case res.Injected():
		return OutcomeInjected
	}
	return OutcomeNotGPU
}
