package policy

import (
	"errors"
	"strings"

	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// Audit outcomes.
const (
	OutcomeGranted = "granted"
	OutcomeRefused = "refused"
)

// AuditFields returns the fields of the one structured audit line the daemon
// logs per decision. The names are stable (documented in
// docs/policy-*.md); every field is always present:
//
//	pod, namespace, container  string   the container
//	outcome                    string   "granted" or "refused"
//	source                     string   the honoured source; when refused, the refused sources (comma-separated)
//	where                      string   the exact input(s), same shape as source
//	rule                       string   the config key that granted or refused
//	devices                    []string the devices given (host ids); empty when refused
//	refused                    []string sources refused beside a grant, or every refusal ("<where> refused by <rule>: <reason>")
//	reason                     string   the error when refused, "" when granted
//
// err is the error that ended the create (policy, requirement or
// resolution); nil means granted. d may be the zero Decision.
func AuditFields(in *request.Input, d Decision, devices []string, err error) map[string]any {
	f := map[string]any{
		"pod": "", "namespace": "", "container": "",
		"outcome": OutcomeGranted, "source": "", "where": "", "rule": d.Rule,
		"devices": []string{}, "refused": []string{}, "reason": "",
	}
	if in != nil {
		f["pod"], f["namespace"], f["container"] = in.Pod, in.Namespace, in.Container
	}
	if d.Source != nil {
		f["source"], f["where"] = d.Source.Source, d.Source.Where
	}
	refusals := d.Refused
	var re *RefusedError
	if errors.As(err, &re) {
		refusals = re.Refused
	}
	refused := make([]string, len(refusals))
	for i, r := range refusals {
		refused[i] = r.String()
	}
	f["refused"] = refused
	if err == nil {
		if devices != nil {
			f["devices"] = append([]string(nil), devices...)
		}
		return f
	}
	f["outcome"], f["reason"] = OutcomeRefused, err.Error()
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
