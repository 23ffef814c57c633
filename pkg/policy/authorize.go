package policy

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// Refusal is one request source that was not honoured.
type Refusal struct {
	// Source is the request source (config.Source*).
	Source string
	// Where names the exact input, e.g. `env NVIDIA_VISIBLE_DEVICES`.
	Where string
	// Rule is the config key that refused it, e.g.
	// policy.sources.env.allowNamespaces.
	Rule string
	// Reason says why and which config change would allow it.
	Reason string
}

func (r Refusal) String() string {
	return fmt.Sprintf("%s refused by %s: %s", r.Where, r.Rule, r.Reason)
}

// Decision is the outcome of authorizing one container's request.
type Decision struct {
	// Source is the honoured request source; nil when the request names no
	// device source (e.g. only extras) or nothing was asked.
	Source *request.SourceRequest
	// Rule is the config key that granted Source.
	Rule string
	// Refused lists the sources not honoured. They are refused, not merged:
	// a granted Source with refusals beside it is still a grant.
	Refused []Refusal
}

// RefusedError is a request refused entirely. It names the container, every
// refused input, the rule and the config key that would allow it.
type RefusedError struct {
	// Who is namespace/pod/container.
	Who string
	// Refused lists every source and why.
	Refused []Refusal
}

func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		parts[i] = r.String()
	}
	return fmt.Sprintf("gpu-nri: container %s: GPU request refused by policy: %s", e.Who, strings.Join(parts, "; "))
}

// Policy is a compiled config.Policy. It is immutable; share it freely.
type Policy struct {
	profile string
	rules   map[string]*rule
	// management are policy.managementNamespaces.
	management []pattern
}

type rule struct {
	trusted bool
	all     bool
	allow   []pattern
	deny    []pattern
}

// pattern is a namespace pattern; literal ones are compared as strings.
type pattern struct {
	text    string
	literal bool
}

func (p pattern) match(ns string) bool {
	if p.literal {
		return p.text == ns
	}
	ok, _ := path.Match(p.text, ns) // syntax checked by Compile
	return ok
}

// Compile checks the policy with config.Policy.Validate (known sources,
// glob syntax of every namespace pattern) and prepares it for Authorize.
func Compile(p config.Policy) (*Policy, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &Policy{profile: p.Profile, rules: make(map[string]*rule, len(p.Sources))}
	for src, r := range p.Sources {
		c.rules[src] = &rule{trusted: r.Trusted, all: r.AllowAll,
			allow: compilePatterns(r.AllowNamespaces), deny: compilePatterns(r.DenyNamespaces)}
	}
	c.management = compilePatterns(p.ManagementNamespaces)
	return c, nil
}

// AllowManagement checks a MIG configuration or monitoring request
// (NVIDIA_MIG_CONFIG_DEVICES / NVIDIA_MIG_MONITOR_DEVICES) against
// policy.managementNamespaces; nil when req asks for neither.
func (p *Policy) AllowManagement(in *request.Input, req *request.Request) error {
	if !req.MIGConfig && !req.MIGMonitor {
		return nil
	}
	for _, m := range p.management {
		if m.match(in.Namespace) {
			return nil
		}
	}
	what := request.EnvMIGConfigDevices
	if !req.MIGConfig {
		what = request.EnvMIGMonitorDevices
	}
	return &RefusedError{Who: in.Who(), Refused: []Refusal{{
		Source: config.SourceEnv, Where: "env " + what, Rule: "policy.managementNamespaces",
		Reason: fmt.Sprintf("MIG management is for privileged tools only; add namespace %q to policy.managementNamespaces to allow it", in.Namespace)}}}
}

// compilePatterns prepares namespace patterns whose syntax
// config.Policy.Validate checked.
func compilePatterns(list []string) []pattern {
	out := make([]pattern, 0, len(list))
	for _, s := range list {
		out = append(out, pattern{text: s, literal: !strings.ContainsAny(s, `*?[\`)})
	}
	return out
}

func key(src, field string) string {
	if field == "" {
		return "policy.sources." + src
	}
	return "policy.sources." + src + "." + field
}

// Authorize decides which request source of a container is honoured.
//
// Each source is checked against its rule: a source without a rule is
// refused; the container's namespace must match allowNamespaces (when set)
// and no denyNamespaces pattern (deny wins); "all" needs allowAll. When
// several permitted sources ask for different things, the trusted one wins
// and the untrusted ones are refused (not merged); trusted sources that
// disagree, or only untrusted ones that disagree, refuse the request. Sources
// asking for the same devices agree and the first (most trusted by
// config.Sources() order) is honoured.
//
// A request whose every source is refused returns a *RefusedError.
// Authorize does no I/O and does not modify its arguments.
func (p *Policy) Authorize(in *request.Input, req *request.Request) (Decision, error) {
	var d Decision
	if req == nil || len(req.Sources) == 0 {
		return d, nil
	}
	if in == nil {
		in = &request.Input{}
	}
	ns := in.Namespace
	var ok []granted
	for i := range req.Sources {
		sr := &req.Sources[i]
		r, ref := p.check(sr, ns)
		if ref != nil {
			d.Refused = append(d.Refused, *ref)
			continue
		}
		k := key(sr.Source, "")
		switch {
		case sr.All:
			k = key(sr.Source, "allowAll")
		case len(r.allow) > 0:
			k = key(sr.Source, "allowNamespaces")
		}
		ok = append(ok, granted{sr, r, k})
	}
	if len(ok) == 0 {
		return d, &RefusedError{Who: in.Who(), Refused: d.Refused}
	}
	// Do the permitted sources agree?
	if allAgree(ok) {
		d.Source, d.Rule = ok[0].sr, ok[0].key
		return d, nil
	}
	var trusted []granted
	for _, g := range ok {
		if g.rule.trusted {
			trusted = append(trusted, g)
		}
	}
	switch {
	case len(trusted) == 0:
		for _, g := range ok {
			d.Refused = append(d.Refused, Refusal{Source: g.sr.Source, Where: g.sr.Where, Rule: key(g.sr.Source, "trusted"),
				Reason: fmt.Sprintf("untrusted sources disagree (%s) and none is trusted to decide; gpu-nri does not merge requests: set one of %s: true, or remove the other request", wheres(ok), trustedKeys(ok))})
		}
		return d, &RefusedError{Who: in.Who(), Refused: d.Refused}
	case !allAgree(trusted):
		for _, g := range trusted {
			d.Refused = append(d.Refused, Refusal{Source: g.sr.Source, Where: g.sr.Where, Rule: key(g.sr.Source, "trusted"),
				Reason: fmt.Sprintf("trusted sources disagree (%s); gpu-nri does not merge requests: set %s: false on all but one, or remove one request", wheres(trusted), trustedKeys(trusted))})
		}
		return d, &RefusedError{Who: in.Who(), Refused: d.Refused}
	}
	win := trusted[0]
	d.Source, d.Rule = win.sr, win.key
	for _, g := range ok {
		if g.rule.trusted || sameRequest(win.sr, g.sr) {
			continue
		}
		d.Refused = append(d.Refused, Refusal{Source: g.sr.Source, Where: g.sr.Where, Rule: key(g.sr.Source, "trusted"),
			Reason: fmt.Sprintf("disagrees with trusted %s, which wins; requests are not merged (set %s: true to make this source decide)", win.sr.Where, key(g.sr.Source, "trusted"))})
	}
	return d, nil
}

// check applies a source's own rule; it returns the rule or a refusal.
func (p *Policy) check(sr *request.SourceRequest, ns string) (*rule, *Refusal) {
	r := p.rules[sr.Source]
	if r == nil {
		return nil, &Refusal{Source: sr.Source, Where: sr.Where, Rule: key(sr.Source, ""),
			Reason: fmt.Sprintf("the policy (profile %q) has no rule for source %q; add %s to allow it", p.profile, sr.Source, key(sr.Source, ""))}
	}
	for _, pat := range r.deny {
		if pat.match(ns) {
			return nil, &Refusal{Source: sr.Source, Where: sr.Where, Rule: key(sr.Source, "denyNamespaces"),
				Reason: fmt.Sprintf("namespace %q matches %q; remove it from %s to allow it", ns, pat.text, key(sr.Source, "denyNamespaces"))}
		}
	}
	if len(r.allow) > 0 {
		matched := false
		for _, pat := range r.allow {
			if pat.match(ns) {
				matched = true
				break
			}
		}
		if !matched {
			return nil, &Refusal{Source: sr.Source, Where: sr.Where, Rule: key(sr.Source, "allowNamespaces"),
				Reason: fmt.Sprintf("namespace %q is not allowed; add the namespace to %s to allow it", ns, key(sr.Source, "allowNamespaces"))}
		}
	}
	if sr.All && !r.all {
		return nil, &Refusal{Source: sr.Source, Where: sr.Where, Rule: key(sr.Source, "allowAll"),
			Reason: fmt.Sprintf(`"all" is not allowed from this source; set %s: true to allow it`, key(sr.Source, "allowAll"))}
	}
	return r, nil
}

// granted is a source its own rule permits.
type granted struct {
	sr   *request.SourceRequest
	rule *rule
	key  string
}

func allAgree(list []granted) bool {
	for _, g := range list[1:] {
		if !sameRequest(list[0].sr, g.sr) {
			return false
		}
	}
	return true
}

func trustedKeys(list []granted) string {
	var s []string
	for _, g := range list {
		s = appendUnique(s, key(g.sr.Source, "trusted"))
	}
	return strings.Join(s, ", ")
}

func wheres(list []granted) string {
	s := make([]string, len(list))
	for i, g := range list {
		s[i] = g.sr.Where
	}
	return strings.Join(s, ", ")
}

// sameRequest reports whether two sources ask for the same thing: both
// "all", both "none", or the same set of devices as written (normalized ids;
// order and repeats ignored). Different spellings of one GPU (index and
// UUID) are different requests: resolving them is not the policy's job.
func sameRequest(a, b *request.SourceRequest) bool {
	if a.All != b.All || a.None != b.None {
		return false
	}
	if a.All || a.None {
		return true
	}
	ka, kb := deviceKeys(a.Devices), deviceKeys(b.Devices)
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}

func deviceKeys(devs []request.Device) []string {
	keys := make([]string, 0, len(devs))
	for _, d := range devs {
		var k string
		switch d.Kind {
		case request.KindIndex:
			k = "i:" + strconv.Itoa(d.GPU)
		case request.KindMIGIndex:
			k = "m:" + strconv.Itoa(d.GPU) + ":" + strconv.Itoa(d.MIG)
		default:
			id := d.ID
			if id == "" {
				id = d.Raw
			}
			k = strconv.Itoa(int(d.Kind)) + ":" + id
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := keys[:0]
	for i, k := range keys {
		if i == 0 || k != keys[i-1] {
			out = append(out, k)
		}
	}
	return out
}
