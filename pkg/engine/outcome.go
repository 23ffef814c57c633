package engine

import (
	"errors"

	"github.com/gpu-nri/gpu-nri/pkg/policy"
)

// Outcomes of one container's evaluation, as the daemon logs and counts
// them and as `gpu-nri explain` reports them.
const (
	OutcomeInjected = "injected" // the container gets edits
	OutcomeNotGPU   = "not-gpu"  // the container asked for nothing
	OutcomeRefused  = "refused"  // a policy rule or a requirement refused it
	OutcomeError    = "error"    // bad input, unknown device, no driver, ...
)

// Outcome classifies an evaluation: res and err as Evaluate returned them,
// err possibly replaced by a later conversion error.
func Outcome(res *Result, err error) string {
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
