package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

func TestParseRequirement(t *testing.T) {
	for _, tc := range []struct {
		name, expr, want, err string
	}{
		{name: "empty", expr: "", want: ""},
		{name: "blank", expr: "   ", want: ""},
		{name: "single", expr: "cuda>=12.4", want: "cuda>=12.4"},
		{name: "or and", expr: "cuda>=12.4 brand=tesla,driver>=470,driver<471", want: "cuda>=12.4 brand=tesla,driver>=470,driver<471"},
		{name: "many spaces", expr: "  cuda>=12    arch=8.0 ", want: "cuda>=12 arch=8.0"},
		// libnvidia-container's dsl_evaluate splits alternatives on ' ' only.
		{name: "tab between", expr: "cuda>=12.0\tbrand=tesla", err: `"cuda>=12.0\tbrand=tesla" contains '\t': only spaces separate alternatives`},
		{name: "tab alone", expr: "  \t ", err: `contains '\t'`},
		{name: "trailing newline", expr: "cuda>=12.0\n", err: `contains '\n'`},
		{name: "key case", expr: "CUDA>=12.4,Brand=Tesla", want: "cuda>=12.4,brand=Tesla"},
		{name: "all ops", expr: "driver=1,driver!=2,driver<3,driver<=4,driver>5,driver>=6", want: "driver=1,driver!=2,driver<3,driver<=4,driver>5,driver>=6"},
		{name: "no op", expr: "cuda12", err: "no operator"},
		{name: "no value", expr: "cuda>=", err: "no value"},
		{name: "no key", expr: ">=12", err: "no key"},
		{name: "unknown key", expr: "memory>=80", err: `unknown key "memory"`},
		{name: "double eq", expr: "cuda==12", err: "bad operator"},
		{name: "bad op", expr: "cuda=<12", err: "bad operator"},
		{name: "bang alone", expr: "cuda!12", err: "bad operator"},
		{name: "non numeric", expr: "cuda>=12.x", err: "not a decimal number"},
		{name: "empty field", expr: "cuda>=12..4", err: "not a decimal number"},
		{name: "negative", expr: "cuda>=-1", err: "not a decimal number"},
		{name: "overflow", expr: "driver>=99999999999", err: "out of range"},
		{name: "too many fields", expr: "driver>=1.2.3.4.5.6.7.8.9", err: "more than"},
		{name: "brand lt", expr: "brand<tesla", err: "only = and !="},
		{name: "brand junk", expr: "brand=te/sla", err: "only letters"},
		// dsl_evaluate skips empty conditions (CheckRequirements warns).
		{name: "double comma", expr: "cuda>=1,,driver>=2", want: "cuda>=1,driver>=2"},
		{name: "trailing comma", expr: "cuda>=1,", want: "cuda>=1"},
		{name: "only commas", expr: "cuda>=1 ,,", err: `",,": no condition, only commas`},
		{name: "too long", expr: strings.Repeat("a", MaxRequirementLen+1), err: "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseRequirement(tc.expr)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, canonical(e))
		})
	}
}

func TestCheckRequirementsEmptyConditionWarning(t *testing.T) {
	inv := testInventory()
	w, err := CheckRequirements([]request.Requirement{{Name: "NVIDIA_REQUIRE_CUDA", Expr: "cuda>=12.0,,brand=nvidia"}}, inv.GPUs[:1], inv, config.Requirements{Unverifiable: "refuse"}, false)
	require.NoError(t, err)
	require.Equal(t, []string{`NVIDIA_REQUIRE_CUDA="cuda>=12.0,,brand=nvidia": empty condition in "cuda>=12.0,,brand=nvidia" (a trailing or doubled comma): ignored, as NVIDIA ignores it`}, w)
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"12.10", "12.9", 1}, {"12.9", "12.10", -1}, {"12", "12.0", 0}, {"12.0.0", "12", 0},
		{"470.57.02", "470", 1}, {"470.57.02", "470.57.2", 0}, {"9.0", "10.0", -1}, {"1.2.3", "1.2.4", -1},
	} {
		a, err := parseVersion(tc.a)
		require.NoError(t, err)
		b, err := parseVersion(tc.b)
		require.NoError(t, err)
		require.Equal(t, tc.want, compareVersions(a, b), "%s vs %s", tc.a, tc.b)
	}
}

func TestEval(t *testing.T) {
	host := Facts{CUDA: "12.4", Driver: "550.54.14", Arch: "9.0", Brand: "Tesla"}
	for _, tc := range []struct {
		name, expr string
		facts      Facts
		ok         bool
		unknown    bool
	}{
		{"eq", "cuda=12.4", host, true, false},
		{"eq padded", "cuda=12.4.0", host, true, false},
		{"eq fails", "cuda=12.3", host, false, false},
		{"ne", "cuda!=12.3", host, true, false},
		{"ne fails", "cuda!=12.4", host, false, false},
		{"lt", "cuda<12.10", host, true, false},
		{"lt fails", "cuda<12.4", host, false, false},
		{"le", "cuda<=12.4", host, true, false},
		{"le fails", "cuda<=12.3", host, false, false},
		{"gt", "cuda>12.3", host, true, false},
		{"gt fails", "cuda>12.4", host, false, false},
		{"ge", "cuda>=12.4", host, true, false},
		{"ge fails", "cuda>=12.10", host, false, false},
		{"field by field", "cuda>12.9", Facts{CUDA: "12.10"}, true, false},
		{"driver three fields", "driver>=550.54.3", host, true, false},
		{"driver major", "driver>=470,driver<551", host, true, false},
		{"arch", "arch>=8.0", host, true, false},
		{"arch fails", "arch<9", host, false, false},
		{"brand case", "brand=TESLA", host, true, false},
		{"brand lower", "brand=tesla", Facts{Brand: "TESLA"}, true, false},
		{"brand ne", "brand!=geforce", host, true, false},
		{"brand ne fails", "brand!=tesla", host, false, false},
		{"or first", "cuda>=12.4 brand=geforce", host, true, false},
		{"or second", "cuda>=13 brand=tesla", host, true, false},
		{"or none", "cuda>=13 brand=geforce", host, false, false},
		{"and fails", "cuda>=12,driver>=560", host, false, false},
		{"and holds", "cuda>=12,driver>=550,arch=9.0,brand=tesla", host, true, false},
		{"unknown cuda", "cuda>=12", Facts{Driver: "550"}, false, true},
		{"unknown but other alt holds", "cuda>=12 driver>=500", Facts{Driver: "550"}, true, false},
		{"unknown but and false", "cuda>=12,driver>=600", Facts{Driver: "550"}, false, false},
		{"bad host version is unknown", "cuda>=12", Facts{CUDA: "n/a"}, false, true},
		{"no gpu arch vacuous", "arch>=9.0,cuda>=12", Facts{CUDA: "12.4", NoGPU: true}, true, false},
		{"empty expr", "", Facts{}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseRequirement(tc.expr)
			require.NoError(t, err)
			res := e.Eval(tc.facts)
			require.Equal(t, tc.ok, res.OK, "%+v", res)
			require.Equal(t, tc.unknown, res.Unknown, "%+v", res)
			if !tc.ok && !tc.unknown {
				require.NotEmpty(t, res.Failed)
			}
		})
	}
}

func testInventory() *inventory.Inventory {
	return &inventory.Inventory{DriverVersion: "550.54.14", CUDAVersion: "12.4", GPUs: []inventory.GPU{
		{Index: 0, UUID: "GPU-aaaa", Arch: "9.0", Brand: "nvidia"},
		{Index: 1, UUID: "GPU-bbbb", Arch: "8.0", Brand: "tesla"},
	}}
}

func TestCheckRequirements(t *testing.T) {
	inv := testInventory()
	noNVML := &inventory.Inventory{DriverVersion: "550.54.14", GPUs: []inventory.GPU{{Index: 0, UUID: "GPU-aaaa"}}}
	refuse, allow := config.Requirements{Unverifiable: "refuse"}, config.Requirements{Unverifiable: "allow"}
	req := func(name, expr string) []request.Requirement { return []request.Requirement{{Name: name, Expr: expr}} }
	for _, tc := range []struct {
		name     string
		reqs     []request.Requirement
		gpus     []inventory.GPU
		inv      *inventory.Inventory
		cfg      config.Requirements
		disable  bool
		errs     []string
		warnings int
	}{
		{name: "met", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12.0"), gpus: inv.GPUs, inv: inv, cfg: refuse},
		{name: "unmet cuda names everything", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12.6"), gpus: inv.GPUs[:1], inv: inv, cfg: refuse,
			errs: []string{`NVIDIA_REQUIRE_CUDA="cuda>=12.6"`, "GPU 0 (GPU-aaaa)", "cuda>=12.6", "host CUDA driver API 12.4"}},
		{name: "per GPU arch", reqs: req("NVIDIA_REQUIRE_ARCH", "arch>=9.0"), gpus: inv.GPUs, inv: inv, cfg: refuse,
			errs: []string{"GPU 1 (GPU-bbbb)", "compute capability 8.0"}},
		{name: "per GPU brand", reqs: req("NVIDIA_REQUIRE_BRAND", "brand=TESLA"), gpus: inv.GPUs[1:], inv: inv, cfg: refuse},
		{name: "legacy cuda", reqs: req("legacy CUDA_VERSION", "cuda>=12.8"), gpus: inv.GPUs[:1], inv: inv, cfg: refuse,
			errs: []string{"legacy CUDA_VERSION", "cuda>=12.8"}},
		{name: "several ANDed", reqs: []request.Requirement{{Name: "NVIDIA_REQUIRE_A", Expr: "cuda>=12"}, {Name: "NVIDIA_REQUIRE_B", Expr: "driver>=560"}},
			gpus: inv.GPUs[:1], inv: inv, cfg: refuse, errs: []string{"NVIDIA_REQUIRE_B", "host driver 550.54.14"}},
		{name: "config disable", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=99"), gpus: inv.GPUs, inv: inv, cfg: config.Requirements{Disable: true, Unverifiable: "refuse"}},
		{name: "NVIDIA_DISABLE_REQUIRE", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=99"), gpus: inv.GPUs, inv: inv, cfg: refuse, disable: true},
		{name: "empty condition warns once", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12.0,"), gpus: inv.GPUs, inv: inv, cfg: refuse, warnings: 1},
		{name: "syntax error", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>>12"), gpus: inv.GPUs, inv: inv, cfg: refuse, errs: []string{"NVIDIA_REQUIRE_CUDA", "bad operator"}},
		{name: "unverifiable refuse", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12.0"), gpus: noNVML.GPUs, inv: noNVML, cfg: refuse,
			errs: []string{"cannot be checked", "CUDA driver API version is unknown (NVML unavailable)", "requirements.unverifiable"}},
		{name: "unverifiable arch refuse", reqs: req("NVIDIA_REQUIRE_ARCH", "arch>=8.0"), gpus: noNVML.GPUs, inv: noNVML, cfg: refuse,
			errs: []string{"compute capability is unknown"}},
		{name: "unverifiable allow warns", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12.0 brand=tesla"), gpus: noNVML.GPUs, inv: noNVML, cfg: allow, warnings: 1},
		{name: "unverifiable but known alt holds", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12.0 driver>=500"), gpus: noNVML.GPUs, inv: noNVML, cfg: refuse},
		{name: "unverifiable but unmet is unmet", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12.0,driver>=600"), gpus: noNVML.GPUs, inv: noNVML, cfg: allow, errs: []string{"unmet"}},
		{name: "no GPU checks cuda", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=13,arch>=1"), inv: inv, cfg: refuse, errs: []string{"cuda>=13"}},
		{name: "no GPU skips arch", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12,arch>=10"), inv: inv, cfg: refuse},
		{name: "nil inventory refuses", reqs: req("NVIDIA_REQUIRE_CUDA", "cuda>=12"), cfg: refuse, errs: []string{"cannot be checked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := CheckRequirements(tc.reqs, tc.gpus, tc.inv, tc.cfg, tc.disable)
			require.Len(t, w, tc.warnings)
			if len(tc.errs) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var re *RequirementError
			require.True(t, errors.As(err, &re))
			for _, s := range tc.errs {
				require.ErrorContains(t, err, s)
			}
		})
	}
}

// canonical writes e back in the NVIDIA syntax, alternatives separated by
// one space, conditions by commas.
func canonical(e Expr) string {
	alts := make([]string, len(e.Any))
	for i, and := range e.Any {
		conds := make([]string, len(and))
		for j, c := range and {
			conds[j] = c.String()
		}
		alts[i] = strings.Join(conds, ",")
	}
	return strings.Join(alts, " ")
}
