package explain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rgen "github.com/opencontainers/runtime-tools/generate"
	"sigs.k8s.io/yaml"
	cdi "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/nriadjust"
	"github.com/gpu-nri/gpu-nri/pkg/policy"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// Options shape a report.
type Options struct {
	// CgroupRules is what the daemon would pass to nriadjust for the target
	// runtime (injection.deviceCgroupRules; "auto" =
	// nriadjust.CgroupRulesApplied(runtime, version)).
	CgroupRules bool
	// OCI applies the adjustment to a minimal OCI spec and records the change.
	OCI bool
}

// Report is the full account of one container's request.
type Report struct {
	// Container is namespace/pod/container.
	Container string `json:"container"`
	// Outcome is one of engine's Outcome* constants.
	Outcome string `json:"outcome"`
	// Error is the error the daemon would fail the container with.
	Error string `json:"error,omitempty"`
	// Request is the parsed request (nil: the container asks for nothing,
	// or the request could not be parsed).
	Request *Request `json:"request,omitempty"`
	// Decision is the policy's decision (nil when nothing was asked).
	Decision *Decision `json:"decision,omitempty"`
	// Devices names every injected device ("0=GPU-...", "3:0", CDI names).
	Devices []string `json:"devices,omitempty"`
	// CDIDevices are the third-party CDI devices injected.
	CDIDevices []string `json:"cdiDevices,omitempty"`
	// Edits are the container edits (nil when nothing is injected).
	Edits *cdi.ContainerEdits `json:"edits,omitempty"`
	// Adjustment is the NRI adjustment the daemon returns.
	Adjustment *api.ContainerAdjustment `json:"adjustment,omitempty"`
	// Warnings are non-fatal findings (engine and NRI conversion).
	Warnings []string `json:"warnings,omitempty"`
	// OCI is the OCI spec change (Options.OCI).
	OCI *OCIChange `json:"oci,omitempty"`

	err error
}

// Err returns the error the daemon would fail the container with (nil when
// the container would be created).
func (r *Report) Err() error { return r.err }

// Request is the parsed request.
type Request struct {
	Sources          []Source      `json:"sources,omitempty"`
	Capabilities     []string      `json:"capabilities"`
	CapabilitiesFrom string        `json:"capabilitiesFrom"`
	Requirements     []Requirement `json:"requirements,omitempty"`
	DisableRequire   bool          `json:"disableRequire,omitempty"`
	Legacy           bool          `json:"legacy,omitempty"`
	MIGConfig        bool          `json:"migConfig,omitempty"`
	MIGMonitor       bool          `json:"migMonitor,omitempty"`
	IMEXChannels     []int         `json:"imexChannels,omitempty"`
	IMEXAll          bool          `json:"imexAll,omitempty"`
	Extras           []string      `json:"extras,omitempty"`
}

// Source is what one request source asks for.
type Source struct {
	Source  string   `json:"source"`
	Where   string   `json:"where"`
	All     bool     `json:"all,omitempty"`
	None    bool     `json:"none,omitempty"`
	Devices []string `json:"devices,omitempty"`
}

// Requirement is one NVIDIA_REQUIRE_* expression.
type Requirement struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
}

// Decision is the policy's decision.
type Decision struct {
	// Granted is false when every source was refused.
	Granted bool `json:"granted"`
	// Source and Where name the honoured source; Rule the config key that
	// granted it.
	Source  string    `json:"source,omitempty"`
	Where   string    `json:"where,omitempty"`
	Rule    string    `json:"rule,omitempty"`
	Refused []Refusal `json:"refused,omitempty"`
}

// Refusal is one source the policy did not honour.
type Refusal struct {
	Source string `json:"source"`
	Where  string `json:"where"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// OCIChange is what the adjustment does to a minimal OCI spec.
type OCIChange struct {
	Before *rspec.Spec `json:"before"`
	After  *rspec.Spec `json:"after"`
	// Diff is a unified diff of the indented JSON of Before and After.
	Diff string `json:"diff"`
}

// Build answers in with eng against h through the daemon's own
// evaluate -> convert sequence (nriadjust.Decide) and returns the report. A
// failing request is a report with Outcome refused or error, not an error.
func Build(eng *engine.Engine, h engine.Host, in *request.Input, o Options) *Report {
	a := nriadjust.Decide(eng, h, in, nriadjust.Options{CgroupRules: o.CgroupRules})
	r := &Report{Container: in.Who(), Outcome: a.Outcome, Warnings: a.Warnings, Adjustment: a.Adjustment}
	if a.Result != nil {
		r.fill(a.Result)
	}
	if a.Err != nil {
		r.err = a.Err
		r.Error = a.Err.Error()
		var re *policy.RefusedError
		if errors.As(a.Err, &re) && r.Decision != nil && len(r.Decision.Refused) == 0 {
			r.Decision.Refused = refusals(re.Refused)
		}
		return r
	}
	if o.OCI {
		c, oerr := ApplyOCI(in, a.Adjustment)
		if oerr != nil {
			r.Outcome, r.err, r.Error = engine.OutcomeError, oerr, oerr.Error()
			return r
		}
		r.OCI = c
	}
	return r
}

func (r *Report) fill(res *engine.Result) {
	if q := res.Request; q != nil {
		rq := &Request{CapabilitiesFrom: q.CapabilitiesFrom, DisableRequire: q.DisableRequire, Legacy: q.Legacy,
			MIGConfig: q.MIGConfig, MIGMonitor: q.MIGMonitor, IMEXChannels: q.IMEXChannels, IMEXAll: q.IMEXAll}
		for _, c := range q.Capabilities {
			rq.Capabilities = append(rq.Capabilities, string(c))
		}
		for _, s := range q.Sources {
			src := Source{Source: s.Source, Where: s.Where, All: s.All, None: s.None}
			for _, d := range s.Devices {
				src.Devices = append(src.Devices, d.Raw)
			}
			rq.Sources = append(rq.Sources, src)
		}
		for _, x := range q.Requirements {
			rq.Requirements = append(rq.Requirements, Requirement{Name: x.Name, Expr: x.Expr})
		}
		rq.Extras = q.Extras()
		r.Request = rq
		d := &Decision{Rule: res.Decision.Rule, Refused: refusals(res.Decision.Refused)}
		if s := res.Decision.Source; s != nil {
			d.Granted, d.Source, d.Where = true, s.Source, s.Where
		} else if len(d.Refused) == 0 {
			d.Granted = true // extras or capabilities only
		}
		r.Decision = d
	}
	r.Devices = res.Devices
	r.CDIDevices = res.CDIDevices
	r.Edits = res.Edits
}

func refusals(in []policy.Refusal) []Refusal {
	var out []Refusal
	for _, x := range in {
		out = append(out, Refusal{Source: x.Source, Where: x.Where, Rule: x.Rule, Reason: x.Reason})
	}
	return out
}

// BaseSpec is the minimal OCI spec explain applies adjustments to:
// runtime-tools' Linux default with the container's environment and
// bind mounts, as a runtime builds it before calling NRI.
func BaseSpec(in *request.Input) (*rspec.Spec, error) {
	g, err := rgen.New("linux")
	if err != nil {
		return nil, fmt.Errorf("explain: default OCI spec: %w", err)
	}
	g.Config.Process.Env = append(g.Config.Process.Env, in.Env...)
	for _, m := range in.Mounts {
		g.Config.Mounts = append(g.Config.Mounts, rspec.Mount{Destination: m.Destination, Type: "bind", Source: m.Source,
			Options: []string{"rbind", "rprivate"}})
	}
	return g.Config, nil
}

// ApplyOCI applies adj (may be nil) to BaseSpec(in) with NRI's runtime-tools
// generator and returns both specs and their diff.
func ApplyOCI(in *request.Input, adj *api.ContainerAdjustment) (*OCIChange, error) {
	spec, err := BaseSpec(in)
	if err != nil {
		return nil, err
	}
	before, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("explain: encoding OCI spec: %w", err)
	}
	var beforeSpec rspec.Spec
	if err := json.Unmarshal(before, &beforeSpec); err != nil {
		return nil, fmt.Errorf("explain: copying OCI spec: %w", err)
	}
	g := rgen.NewFromSpec(spec)
	if adj != nil {
		if err := nrigen.SpecGenerator(&g).Adjust(adj); err != nil {
			return nil, fmt.Errorf("explain: applying the NRI adjustment to the OCI spec: %w", err)
		}
	}
	after, err := json.MarshalIndent(g.Config, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("explain: encoding OCI spec: %w", err)
	}
	return &OCIChange{Before: &beforeSpec, After: g.Config, Diff: Diff("before/config.json", "after/config.json", string(before), string(after), 3)}, nil
}

// Formats of Write.
const (
	FormatText = "text"
	FormatJSON = "json"
	FormatYAML = "yaml"
)

// Write renders r in format to w.
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("explain: encoding JSON: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case FormatYAML:
		b, err := yaml.Marshal(r)
		if err != nil {
			return fmt.Errorf("explain: encoding YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	case FormatText, "":
		_, err := io.WriteString(w, r.Text())
		return err
	}
	return fmt.Errorf("explain: output format %q: want text, json or yaml", format)
}

// Text is the readable summary: sections Request, Decision, Devices,
// Mounts, Env, Hooks, Warnings (and OCI spec diff).
func (r *Report) Text() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("Container  %s\n", r.Container)
	p("Outcome    %s\n", outcomeLine(r))
	if r.Error != "" {
		p("Error      %s\n", r.Error)
	}

	p("\nRequest\n")
	switch q := r.Request; {
	case q == nil && r.Outcome == engine.OutcomeNotGPU:
		p("  (none: no NVIDIA_VISIBLE_DEVICES, gpu-nri annotation, CDI device or device-plugin mount asks for a GPU)\n")
	case q == nil:
		p("  (not parsed: see Error)\n")
	default:
		for _, s := range q.Sources {
			p("  %-14s %s: %s\n", s.Source, s.Where, sourceValue(s))
		}
		p("  %-14s %s (from %s)\n", "capabilities", strings.Join(q.Capabilities, ", "), q.CapabilitiesFrom)
		for _, x := range q.Requirements {
			p("  %-14s %s: %s\n", "requirement", x.Name, x.Expr)
		}
		if q.DisableRequire {
			p("  %-14s NVIDIA_DISABLE_REQUIRE=true\n", "requirements")
		}
		if q.Legacy {
			p("  %-14s legacy CUDA image (CUDA_VERSION set, NVIDIA_VISIBLE_DEVICES unset): all GPUs\n", "legacy")
		}
		var extra []string
		if q.MIGConfig {
			extra = append(extra, "mig-config")
		}
		if q.MIGMonitor {
			extra = append(extra, "mig-monitor")
		}
		if q.IMEXAll {
			extra = append(extra, "imex:all")
		}
		for _, c := range q.IMEXChannels {
			extra = append(extra, "imex:"+strconv.Itoa(c))
		}
		extra = append(extra, q.Extras...)
		if len(extra) > 0 {
			p("  %-14s %s\n", "extras", strings.Join(extra, ", "))
		}
	}

	p("\nDecision\n")
	if d := r.Decision; d == nil {
		p("  (nothing to decide)\n")
	} else {
		if d.Source != "" {
			p("  granted        %s (source %s) by %s\n", d.Where, d.Source, d.Rule)
		} else if d.Granted {
			p("  granted        no device source; capabilities/extras only\n")
		}
		for _, x := range d.Refused {
			p("  refused        %s (source %s) by %s: %s\n", x.Where, x.Source, x.Rule, x.Reason)
		}
	}

	p("\nDevices\n")
	if r.Edits == nil || (len(r.Devices) == 0 && len(r.Edits.DeviceNodes) == 0) {
		p("  (none)\n")
	}
	if len(r.Devices) > 0 {
		p("  selected       %s\n", strings.Join(r.Devices, ", "))
	}
	if r.Edits != nil {
		for _, n := range r.Edits.DeviceNodes {
			mode := ""
			if n.FileMode != nil {
				mode = fmt.Sprintf(" %04o", n.FileMode.Perm())
			}
			p("  %-28s %s %d:%d%s  from %s\n", n.Path, n.Type, n.Major, n.Minor, mode, orSame(n.HostPath, n.Path))
		}
	}

	p("\nMounts\n")
	if r.Edits == nil || len(r.Edits.Mounts) == 0 {
		p("  (none)\n")
	} else {
		for _, m := range r.Edits.Mounts {
			p("  %s <- %s (%s)\n", m.ContainerPath, m.HostPath, strings.Join(m.Options, ","))
		}
	}

	p("\nEnv\n")
	if r.Edits == nil || len(r.Edits.Env) == 0 {
		p("  (none)\n")
	} else {
		for _, e := range r.Edits.Env {
			p("  %s\n", e)
		}
	}

	p("\nHooks\n")
	if r.Edits == nil || len(r.Edits.Hooks) == 0 {
		p("  (none)\n")
	} else {
		for _, h := range r.Edits.Hooks {
			timeout := ""
			if h.Timeout != nil {
				timeout = fmt.Sprintf(" (timeout %ds)", *h.Timeout)
			}
			p("  %s %s%s\n", h.HookName, h.Path, timeout)
			p("    argv %s\n", strings.Join(h.Args, " "))
			p("    env  %s\n", strings.Join(h.Env, " "))
		}
	}
	if r.Edits != nil && len(r.Edits.AdditionalGIDs) > 0 {
		gids := make([]string, len(r.Edits.AdditionalGIDs))
		for i, g := range r.Edits.AdditionalGIDs {
			gids[i] = strconv.FormatUint(uint64(g), 10)
		}
		p("\nAdditional GIDs\n  %s\n", strings.Join(gids, ", "))
	}

	p("\nWarnings\n")
	if len(r.Warnings) == 0 {
		p("  (none)\n")
	}
	for _, w := range r.Warnings {
		p("  %s\n", w)
	}

	if r.OCI != nil {
		p("\nOCI spec diff (NRI runtime-tools generate applied to a minimal spec)\n")
		if r.OCI.Diff == "" {
			p("  (unchanged)\n")
		} else {
			b.WriteString(r.OCI.Diff)
		}
	}
	return b.String()
}

func outcomeLine(r *Report) string {
	switch r.Outcome {
	case engine.OutcomeInjected:
		return "injected: the container gets the edits below"
	case engine.OutcomeNotGPU:
		return "not-gpu: gpu-nri leaves the container unchanged"
	case engine.OutcomeRefused:
		return "refused: the runtime fails CreateContainer with the error below"
	default:
		return "error: the runtime fails CreateContainer with the error below"
	}
}

func sourceValue(s Source) string {
	switch {
	case s.All:
		return "all"
	case s.None:
		return "none (driver files and control nodes, no GPU)"
	}
	return strings.Join(s.Devices, ",")
}

func orSame(host, path string) string {
	if host == "" {
		return path
	}
	return host
}
