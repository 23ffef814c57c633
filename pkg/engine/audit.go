package engine

import (
	"errors"
	"strings"

	"github.com/gpu-nri/gpu-nri/pkg/policy"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// AuditFields returns the fields of the daemon's one audit line for the
// answer a to in's container, exactly as docs/logging.md ("One line per GPU
// decision") lists them, except duration_ms, which only the daemon can
// measure. The names are stable; every field is always present:
//
//	pod, namespace, container  string   the container
//	outcome                    string   a.Outcome (injected, refused, error)
//	source                     string   the honoured source; when refused, the refused sources (comma-separated)
//	where                      string   the exact input(s), same shape as source
//	rule                       string   the config key that granted or refused
//	devices                    []string the devices given (host ids); empty when refused or failed
//	refused                    []string sources refused beside a grant, or every refusal ("<where> refused by <rule>: <reason>")
//	reason                     string   the error when refused or failed, "" when injected
//
// A container that asked for nothing (OutcomeNotGPU) gets only pod,
// namespace, container and outcome.
func (a *Answer) AuditFields(in *request.Input) map[string]any {
	if in == nil {
		in = &request.Input{}
	}
	if a.Outcome == OutcomeNotGPU {
		return map[string]any{"pod": in.Pod, "namespace": in.Namespace, "container": in.Container, "outcome": a.Outcome}
	}
	var d policy.Decision
	if a.Result != nil {
		d = a.Result.Decision
	}
	// duration_ms, which the daemon adds, is counted in the size.
	f := make(map[string]any, 11)
	f["pod"], f["namespace"], f["container"], f["outcome"] = in.Pod, in.Namespace, in.Container, a.Outcome
	f["source"], f["where"], f["rule"] = "", "", d.Rule
	f["devices"], f["reason"] = []string{}, ""
	if d.Source != nil {
		f["source"], f["where"] = d.Source.Source, d.Source.Where
	}
	refusals := d.Refused
	var re *policy.RefusedError
	if errors.As(a.Err, &re) {
		refusals = re.Refused
	}
	refused := make([]string, len(refusals))
	for i, r := range refusals {
		refused[i] = r.String()
	}
	f["refused"] = refused
	if a.Err == nil {
		if a.Result != nil && a.Result.Devices != nil {
			f["devices"] = append([]string(nil), a.Result.Devices...)
		}
		return f
	}
	f["reason"] = a.Err.Error()
	if re != nil {
		var src, where, rule []string
		for _, r := range re.Refused {
			src = appendUnique(src, r.Source)
			where = append(where, r.Where)
			rule = appendUnique(rule, r.Rule)
		}
		f["source"], f["where"], f["rule"] = strings.Join(src, ","), strings.Join(where, ","), strings.Join(rule, ",")
	}
	return f
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
