package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// MaxRequirementLen caps the length of one NVIDIA_REQUIRE_* value.
const MaxRequirementLen = 4096

// maxVersionFields caps the number of dot-separated fields of a version.
const maxVersionFields = 8

// Requirement keys.
const (
	KeyCUDA   = "cuda"
	KeyDriver = "driver"
	KeyArch   = "arch"
	KeyBrand  = "brand"
)

// Op is a comparison operator of a requirement condition.
type Op string

// The operators, as written.
const (
	OpEq Op = "="
	OpNe Op = "!="
	OpLt Op = "<"
	OpLe Op = "<="
	OpGt Op = ">"
	OpGe Op = ">="
)

// Cond is one condition, e.g. cuda>=12.4.
type Cond struct {
	// Key is cuda, driver, arch or brand (lower case).
	Key string
	// Op is the operator.
	Op Op
	// Value is the value as written.
	Value string
	// version is Value parsed for the version keys.
	version []uint64
}

// String writes the condition back in the NVIDIA syntax.
func (c Cond) String() string { return c.Key + string(c.Op) + c.Value }

// Expr is a parsed NVIDIA_REQUIRE_* value: an OR (space) of ANDs (comma) of
// conditions. An empty Expr (blank value) constrains nothing.
type Expr struct {
	// Any holds the alternatives; one satisfied alternative satisfies Expr.
	Any [][]Cond
}

// ParseRequirement parses one NVIDIA_REQUIRE_* value: alternatives separated
// by spaces, each a comma-separated list of conditions KEY OP VALUE with
// KEY one of cuda, driver, arch, brand (case-insensitive) and OP one of
// = != < <= > >=. Versions are dot-separated decimal numbers; brand takes
// only = and !=. Only the space separates alternatives, as in
// libnvidia-container's dsl_evaluate: any other white space (a tab, a
// newline) would be read by NVIDIA as part of a condition, which it then
// refuses as an invalid expression (or, in a brand, never matches), so it
// is an error here. An empty condition (a trailing or doubled comma) is
// skipped, as NVIDIA skips it; an alternative of only commas is an error.
func ParseRequirement(expr string) (Expr, error) {
	return parseRequirement(expr, nil)
}

// parseRequirement is ParseRequirement; notes (when not nil) gets a note per
// empty condition skipped.
func parseRequirement(expr string, notes *[]string) (Expr, error) {
	if len(expr) > MaxRequirementLen {
		return Expr{}, fmt.Errorf("requirement is %d bytes long, the limit is %d", len(expr), MaxRequirementLen)
	}
	var e Expr
	for _, alt := range strings.Split(expr, " ") {
		if alt == "" {
			continue
		}
		if i := strings.IndexFunc(alt, unicode.IsSpace); i >= 0 {
			r, _ := utf8.DecodeRuneInString(alt[i:])
			return Expr{}, fmt.Errorf("%q contains %q: only spaces separate alternatives (NVIDIA reads any other white space as part of the condition, which makes it invalid)", alt, r)
		}
		var and []Cond
		for _, s := range strings.Split(alt, ",") {
			if s == "" {
				if notes != nil {
					*notes = append(*notes, fmt.Sprintf("empty condition in %q (a trailing or doubled comma): ignored, as NVIDIA ignores it", alt))
				}
				continue
			}
			c, err := parseCond(s)
			if err != nil {
				return Expr{}, err
			}
			and = append(and, c)
		}
		if len(and) == 0 {
			return Expr{}, fmt.Errorf("%q: no condition, only commas", alt)
		}
		e.Any = append(e.Any, and)
	}
	return e, nil
}

func parseCond(s string) (Cond, error) {
	i := strings.IndexAny(s, "=!<>")
	if i < 0 {
		return Cond{}, fmt.Errorf("condition %q has no operator (one of = != < <= > >=)", s)
	}
	key, rest := strings.ToLower(s[:i]), s[i:]
	var op Op
	switch {
	case strings.HasPrefix(rest, "!="):
		op = OpNe
	case strings.HasPrefix(rest, "<="):
		op = OpLe
	case strings.HasPrefix(rest, ">="):
		op = OpGe
	case strings.HasPrefix(rest, "="):
		op = OpEq
	case strings.HasPrefix(rest, "<"):
		op = OpLt
	case strings.HasPrefix(rest, ">"):
		op = OpGt
	default:
		return Cond{}, fmt.Errorf("condition %q: bad operator (one of = != < <= > >=)", s)
	}
	val := rest[len(op):]
	if val == "" {
		return Cond{}, fmt.Errorf("condition %q has no value", s)
	}
	if strings.ContainsAny(val, "=!<>") {
		return Cond{}, fmt.Errorf("condition %q: bad operator or value %q", s, val)
	}
	c := Cond{Key: key, Op: op, Value: val}
	switch key {
	case KeyCUDA, KeyDriver, KeyArch:
		v, err := parseVersion(val)
		if err != nil {
			return Cond{}, fmt.Errorf("condition %q: %w", s, err)
		}
		c.version = v
	case KeyBrand:
		if op != OpEq && op != OpNe {
			return Cond{}, fmt.Errorf("condition %q: brand takes only = and !=", s)
		}
		for _, r := range val {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' && r != '-' {
				return Cond{}, fmt.Errorf("condition %q: brand %q: only letters, digits, '-' and '_'", s, val)
			}
		}
	case "":
		return Cond{}, fmt.Errorf("condition %q has no key (cuda, driver, arch or brand)", s)
	default:
		return Cond{}, fmt.Errorf("condition %q: unknown key %q (cuda, driver, arch or brand)", s, key)
	}
	return c, nil
}

// parseVersion reads dot-separated decimal fields.
func parseVersion(s string) ([]uint64, error) {
	fields := strings.Split(s, ".")
	if len(fields) > maxVersionFields {
		return nil, fmt.Errorf("version %q has more than %d fields", s, maxVersionFields)
	}
	v := make([]uint64, len(fields))
	for i, f := range fields {
		if f == "" || strings.Trim(f, "0123456789") != "" {
			return nil, fmt.Errorf("version %q: field %q is not a decimal number", s, f)
		}
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("version %q: field %q is out of range", s, f)
		}
		v[i] = n
	}
	return v, nil
}

// compareVersions compares field by field, numerically; missing trailing
// fields count as 0 ("12" == "12.0", "12.10" > "12.9").
func compareVersions(a, b []uint64) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y uint64
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

func (o Op) holds(cmp int) bool {
	switch o {
	case OpEq:
		return cmp == 0
	case OpNe:
		return cmp != 0
	case OpLt:
		return cmp < 0
	case OpLe:
		return cmp <= 0
	case OpGt:
		return cmp > 0
	case OpGe:
		return cmp >= 0
	}
	return false
}

// Facts are the host properties a requirement is checked against. An empty
// string is a property the host cannot report.
type Facts struct {
	CUDA, Driver, Arch, Brand string
	// NoGPU makes arch and brand conditions hold vacuously (a request that
	// selected no GPU, e.g. "none").
	NoGPU bool
}

func (f Facts) value(key string) string {
	switch key {
	case KeyCUDA:
		return f.CUDA
	case KeyDriver:
		return f.Driver
	case KeyArch:
		return f.Arch
	case KeyBrand:
		return f.Brand
	}
	return ""
}

// tri is three-valued logic: a condition on an unknown property is unknown.
type tri int

const (
	triFalse tri = iota
	triUnknown
	triTrue
)

// Result is the outcome of evaluating an Expr.
type Result struct {
	// OK is true when the expression holds.
	OK bool
	// Unknown is true when it neither holds nor fails for certain because
	// a property it needs is unknown; Missing lists those keys.
	Unknown bool
	Missing []string
	// Failed are the failing condition of each alternative with the host's
	// value, e.g. "cuda>=12.4 (host cuda 12.2)", when the expression fails.
	Failed []string
}

// Eval evaluates the expression against facts. A host value that is not a
// valid version is treated as unknown.
func (e Expr) Eval(f Facts) Result {
	if len(e.Any) == 0 {
		return Result{OK: true}
	}
	var res Result
	overall := triFalse
	for _, and := range e.Any {
		all := triTrue
		var failed string
		for _, c := range and {
			t, miss := c.eval(f)
			if t == triUnknown {
				res.Missing = appendUnique(res.Missing, miss)
				if all == triTrue {
					all = triUnknown
				}
			}
			if t == triFalse {
				all = triFalse
				failed = fmt.Sprintf("%s (%s)", c, describe(c.Key, f))
				break
			}
		}
		switch all {
		case triTrue:
			return Result{OK: true}
		case triUnknown:
			overall = triUnknown
		case triFalse:
			res.Failed = append(res.Failed, failed)
		}
	}
	if overall == triUnknown {
		res.Unknown = true
		return res
	}
	res.Missing = nil
	return res
}

func (c Cond) eval(f Facts) (tri, string) {
	if f.NoGPU && (c.Key == KeyArch || c.Key == KeyBrand) {
		return triTrue, ""
	}
	host := f.value(c.Key)
	if host == "" {
		return triUnknown, c.Key
	}
	if c.Key == KeyBrand {
		if c.Op.holds(boolCmp(strings.EqualFold(host, c.Value))) {
			return triTrue, ""
		}
		return triFalse, ""
	}
	hv, err := parseVersion(host)
	if err != nil {
		return triUnknown, c.Key
	}
	if c.Op.holds(compareVersions(hv, c.version)) {
		return triTrue, ""
	}
	return triFalse, ""
}

func boolCmp(equal bool) int {
	if equal {
		return 0
	}
	return 1
}

func describe(key string, f Facts) string {
	switch key {
	case KeyCUDA:
		return "host CUDA driver API " + f.CUDA
	case KeyDriver:
		return "host driver " + f.Driver
	case KeyArch:
		return "GPU compute capability " + f.Arch
	default:
		return "GPU brand " + f.Brand
	}
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// RequirementError is an NVIDIA_REQUIRE_* value that is malformed, unmet,
// or (with requirements.unverifiable: refuse) cannot be checked.
type RequirementError struct {
	// Name is the variable, e.g. NVIDIA_REQUIRE_CUDA.
	Name string
	// Expr is its value.
	Expr string
	// GPU names the GPU checked ("GPU 0 (GPU-...)"); empty for a syntax error
	// or a request without GPU.
	GPU string
	// Reason says what failed and the host's actual value.
	Reason string
	// Err is the parse error, if any.
	Err error
}

func (e *RequirementError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s=%q", e.Name, e.Expr)
	if e.GPU != "" {
		b.WriteString(" on " + e.GPU)
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

// Unwrap returns the parse error.
func (e *RequirementError) Unwrap() error { return e.Err }

// unverifiableWhy says why the host cannot report the property key.
func unverifiableWhy(key string) string {
	switch key {
	case KeyCUDA:
		return "the host's CUDA driver API version is unknown (NVML unavailable)"
	case KeyDriver:
		return "the host's driver version is unknown"
	case KeyArch:
		return "the GPU's compute capability is unknown (NVML unavailable)"
	case KeyBrand:
		return "the GPU's brand is unknown (NVML unavailable)"
	}
	return ""
}

// CheckRequirements evaluates every requirement against every selected GPU
// (for a MIG device the caller passes its parent GPU). cuda and driver come
// from inv, arch and brand from each GPU. With no GPU selected only cuda and
// driver are checked. cfg.Disable or disable (NVIDIA_DISABLE_REQUIRE) skip
// every check.
//
// A requirement that can be decided neither way because the host cannot
// report a property it needs is an error under cfg.Unverifiable "refuse" and
// a warning (returned, never logged) under "allow". The error joins one
// *RequirementError per failing requirement and GPU.
func CheckRequirements(reqs []request.Requirement, gpus []inventory.GPU, inv *inventory.Inventory, cfg config.Requirements, disable bool) (warnings []string, err error) {
	if cfg.Disable || disable || len(reqs) == 0 {
		return nil, nil
	}
	var host Facts
	if inv != nil {
		host.CUDA, host.Driver = inv.CUDAVersion, inv.DriverVersion
	}
	allow := cfg.Unverifiable == "allow"
	var errs []error
	for _, r := range reqs {
		var notes []string
		e, perr := parseRequirement(r.Expr, &notes)
		for _, n := range notes {
			warnings = append(warnings, fmt.Sprintf("%s=%q: %s", r.Name, r.Expr, n))
		}
		if perr != nil {
			errs = append(errs, &RequirementError{Name: r.Name, Expr: r.Expr, Reason: perr.Error(), Err: perr})
			continue
		}
		check := func(f Facts, gpu string) {
			res := e.Eval(f)
			switch {
			case res.OK:
			case res.Unknown:
				why := make([]string, len(res.Missing))
				for i, k := range res.Missing {
					why[i] = unverifiableWhy(k)
				}
				reason := "cannot be checked: " + strings.Join(why, "; ")
				if allow {
					w := fmt.Sprintf("%s=%q", r.Name, r.Expr)
					if gpu != "" {
						w += " on " + gpu
					}
					warnings = append(warnings, w+": "+reason+"; allowed by requirements.unverifiable: allow")
					return
				}
				errs = append(errs, &RequirementError{Name: r.Name, Expr: r.Expr, GPU: gpu,
					Reason: reason + " (set requirements.unverifiable: allow or NVIDIA_DISABLE_REQUIRE=true to skip)"})
			default:
				errs = append(errs, &RequirementError{Name: r.Name, Expr: r.Expr, GPU: gpu,
					Reason: "unmet: " + strings.Join(res.Failed, "; ")})
			}
		}
		if len(gpus) == 0 {
			f := host
			f.NoGPU = true
			check(f, "")
			continue
		}
		for _, g := range gpus {
			f := host
			f.Arch, f.Brand = g.Arch, g.Brand
			check(f, fmt.Sprintf("GPU %d (%s)", g.Index, g.UUID))
		}
	}
	return warnings, errors.Join(errs...)
}
