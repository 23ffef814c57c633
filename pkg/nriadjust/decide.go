package nriadjust

import (
	"github.com/containerd/nri/pkg/api"

	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// Answer is the daemon's whole answer to one CreateContainer: the engine's
// answer (a conversion error replaces its error and outcome) and the NRI
// adjustment.
type Answer struct {
	engine.Answer
	// Adjustment is what the runtime applies; nil unless Outcome is
	// engine.OutcomeInjected.
	Adjustment *api.ContainerAdjustment
	// Warnings are the engine's warnings, then the conversion's.
	Warnings []string
}

// Decide runs the engine's decision for in against h and converts the
// edits with o. The daemon's CreateContainer and `gpu-nri explain` both
// call it, so their adjustments and errors are the same by construction.
func Decide(eng *engine.Engine, h engine.Host, in *request.Input, o Options) Answer {
	return DecideQuery(eng, h, engine.Query{Input: in}, o)
}

// DecideQuery is Decide for any engine query (a Grant: a DRA claim's
// devices).
func DecideQuery(eng *engine.Engine, h engine.Host, q engine.Query, o Options) Answer {
	a := Answer{Answer: eng.Decide(h, q)}
	if a.Result != nil {
		a.Warnings = a.Result.Warnings
	}
	if a.Outcome != engine.OutcomeInjected {
		return a
	}
	adj, warnings, err := ToAdjustment(a.Result.Edits, o)
	if len(warnings) > 0 {
		a.Warnings = append(append([]string(nil), a.Warnings...), warnings...)
	}
	if err != nil {
		a.Fail(err)
		return a
	}
	a.Adjustment = adj
	return a
}
