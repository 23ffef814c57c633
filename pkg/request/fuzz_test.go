package request

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"tags.cncf.io/container-device-interface/pkg/parser"
)

// checkDevice reports why d is not a syntactically valid Device.
func checkDevice(d Device, cdiKind string) error {
	if d.Raw == "" || strings.IndexByte(d.Raw, 0) >= 0 || strings.Contains(d.Raw, "..") || d.Raw[0] == '/' {
		return fmt.Errorf("bad Raw %q", d.Raw)
	}
	switch d.Kind {
	case KindIndex:
		if d.GPU < 0 || d.GPU > MaxIndex || d.MIG != 0 || d.ID != "" {
			return fmt.Errorf("bad index device %+v", d)
		}
	case KindMIGIndex:
		if d.GPU < 0 || d.GPU > MaxIndex || d.MIG < 0 || d.MIG > MaxIndex || d.ID != "" {
			return fmt.Errorf("bad MIG index device %+v", d)
		}
	case KindUUID:
		if !strings.HasPrefix(d.ID, "GPU-") || !isUUID(d.ID[4:]) || !isLowerHex(d.ID[4:]) {
			return fmt.Errorf("bad UUID %q", d.ID)
		}
	case KindMIGUUID:
		if u, ok := strings.CutPrefix(d.ID, "MIG-GPU-"); ok {
			u, gi, _ := strings.Cut(u, "/")
			gi, ci, _ := strings.Cut(gi, "/")
			a, errA := strconv.Atoi(gi)
			b, errB := strconv.Atoi(ci)
			if !isUUID(u) || !isLowerHex(u) || errA != nil || errB != nil || a < 0 || b < 0 || a > MaxIndex || b > MaxIndex {
				return fmt.Errorf("bad legacy MIG id %q", d.ID)
			}
		} else if !strings.HasPrefix(d.ID, "MIG-") || !isUUID(d.ID[4:]) || !isLowerHex(d.ID[4:]) {
			return fmt.Errorf("bad MIG UUID %q", d.ID)
		}
	case KindPCI:
		dom, rest, _ := strings.Cut(d.ID, ":")
		if len(dom) < 4 || len(dom) > 8 || !allHex(dom) || !isLowerHex(d.ID) || (len(dom) > 4 && dom[0] == '0') ||
			len(rest) != len("3b:00.0") || !allHex(rest[:2]) || rest[2] != ':' || !allHex(rest[3:5]) || rest[5] != '.' ||
			rest[6] < '0' || rest[6] > '7' || hexVal(rest[3])*16+hexVal(rest[4]) > 0x1f {
			return fmt.Errorf("bad PCI id %q", d.ID)
		}
	case KindCDI:
		vendor, class, _, err := parser.ParseQualifiedName(d.ID)
		if err != nil || d.ID != d.Raw || vendor+"/"+class == cdiKind {
			return fmt.Errorf("bad CDI device %+v: %w", d, err)
		}
	default:
		return fmt.Errorf("bad kind %d", d.Kind)
	}
	if d.Kind != KindCDI && d.Kind != KindIndex && d.Kind != KindMIGIndex {
		// Normalized ids parse to themselves.
		again, err := ParseDevice(d.ID, "")
		if err != nil || again.ID != d.ID || again.Kind != d.Kind {
			return fmt.Errorf("ID %q does not round-trip: %+v %w", d.ID, again, err)
		}
	}
	return nil
}

// checkRequest checks the invariants of a Parse result.
func checkRequest(t *testing.T, in *Input, opts Options, r *Request, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Who != in.Who() || e.Input == "" || e.Reason == "" {
			t.Fatalf("error is not a complete *Error: %#v", err)
		}
		if r != nil {
			t.Fatal("both a request and an error")
		}
		return
	}
	if r == nil {
		return
	}
	if len(r.Sources) == 0 || len(r.Capabilities) == 0 && opts.DefaultCapabilities == nil {
		t.Fatalf("incomplete request %+v", r)
	}
	for i, s := range r.Sources {
		if s.Source == "" || s.Where == "" {
			t.Fatalf("source %d unnamed: %+v", i, s)
		}
		if i > 0 && indexOfSource(s.Source) <= indexOfSource(r.Sources[i-1].Source) {
			t.Fatalf("sources out of order: %+v", r.Sources)
		}
		if s.All && (s.None || len(s.Devices) > 0) || s.None && len(s.Devices) > 0 || len(s.Devices) > MaxItems {
			t.Fatalf("inconsistent source %+v", s)
		}
		for j, d := range s.Devices {
			if err := checkDevice(d, opts.cdiKind()); err != nil {
				t.Fatalf("source %s device %d: %v", s.Source, j, err)
			}
			if indexOf(s.Devices[:j], d) >= 0 {
				t.Fatalf("source %s repeats %+v", s.Source, d)
			}
		}
		for _, ch := range s.IMEXChannels {
			if ch < 0 || ch > MaxIMEXChannel {
				t.Fatalf("bad channel %d", ch)
			}
		}
	}
	for _, ch := range r.IMEXChannels {
		if ch < 0 || ch > MaxIMEXChannel {
			t.Fatalf("bad channel %d", ch)
		}
	}
	for _, q := range r.Requirements {
		if len(q.Expr) > MaxValueLen || q.Expr == "" {
			t.Fatalf("bad requirement %+v", q)
		}
	}
}

func indexOfSource(s string) int {
	for i, n := range sourceNames {
		if n == s {
			return i
		}
	}
	return -1
}

// FuzzParse feeds one fuzzed string into every input Parse reads.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"all", "none", "void", "", "0", "0,1", "0,,1", "GPU-" + uuid0[4:], mig0, "MIG-" + uuid0 + "/1/0",
		"0000:3b:00.0", "3b:00.0", "1:0", "nvidia.com/gpu=0", "nvidia.com/gpu=all", "vendor.com/c=d", "../x", "/dev/null",
		"-1", "99999", "a\x00b", "compute,utility", "all,0", "imex/1", "cdi/nvidia.com/gpu/0", "12.4.1"} {
		f.Add(s, s)
	}
	opts := testOpts()
	f.Fuzz(func(t *testing.T, a, b string) {
		inputs := []*Input{
			newInput("NVIDIA_VISIBLE_DEVICES="+a, "NVIDIA_DRIVER_CAPABILITIES="+b),
			newInput("CUDA_VERSION="+a, "NVIDIA_REQUIRE_X="+b, "NVIDIA_IMEX_CHANNELS="+b),
			newInput("NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS="+a, "NVIDIA_DISABLE_REQUIRE="+b, "NVIDIA_MIG_CONFIG_DEVICES="+b),
			{Container: "main", PodAnnotations: map[string]string{"gpus.gpu-nri.io/container.main": a, "capabilities.gpu-nri.io/pod": b}},
			{Container: a, PodAnnotations: map[string]string{a: b, "cdi.k8s.io/" + a: b}, Annotations: map[string]string{"cdi.k8s.io/x": a}},
			{Mounts: []Mount{{Destination: VolumeMountsRoot + "/" + a}, {Destination: VolumeMountsRoot + "/" + b}}},
			{CDIDevices: []string{a, b}},
		}
		for _, in := range inputs {
			r, err := Parse(in, opts)
			checkRequest(t, in, opts, r, err)
		}
	})
}

// FuzzDeviceList checks the device list grammar on its own.
func FuzzDeviceList(f *testing.F) {
	for _, s := range []string{"all", "none", "0,1", "GPU-" + uuid0[4:] + ",1:0", "0000:3B:00.0", "MIG-GPU-" + uuid0[4:] + "/1/0",
		"nvidia.com/gpu=gpu0,nvidia.com/gpu=mig1:2", "a.b/c=d,e.f/g=h", " 0 , 1 ", "0,0", ",", "void,0"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, v string, cdiOnly bool) {
		var notes []string
		l, ok, reason := parseList(v, DefaultCDIKind, cdiOnly, &notes)
		if reason != "" {
			if ok || l.all || l.none || len(l.devices) > 0 {
				t.Fatalf("error with a result: %q", reason)
			}
			return
		}
		if !ok && (l.all || l.none || len(l.devices) > 0) || l.all && l.none || (l.all || l.none) && len(l.devices) > 0 {
			t.Fatalf("inconsistent list %+v ok=%v", l, ok)
		}
		if len(l.devices) > MaxItems {
			t.Fatalf("%d devices", len(l.devices))
		}
		for i, d := range l.devices {
			if err := checkDevice(d, DefaultCDIKind); err != nil {
				t.Fatal(err)
			}
			if cdiOnly && strings.IndexByte(d.Raw, '=') < 0 {
				t.Fatalf("cdiOnly accepted %q", d.Raw)
			}
			if indexOf(l.devices[:i], d) >= 0 {
				t.Fatalf("repeat %+v", d)
			}
		}
	})
}

// FuzzCapabilities checks the capability grammar.
func FuzzCapabilities(f *testing.F) {
	for _, s := range []string{"", "all", "compute,utility", " video ", "display,compat32", "gpu", "compute,,x"} {
		f.Add(s)
	}
	opts := testOpts()
	opts.SupportedCapabilities = []string{"compute", "utility", "video", "graphics"}
	f.Fuzz(func(t *testing.T, v string) {
		caps, err := ParseCapabilities(v, opts)
		if err != nil {
			return
		}
		if len(caps) == 0 && strings.TrimSpace(v) != "" {
			t.Fatalf("no capabilities from %q", v)
		}
		for i, c := range caps {
			if i > 0 && caps[i-1] >= c {
				t.Fatalf("not sorted and unique: %v", caps)
			}
			if capBit(string(c)) == 0 || capBit(string(c))&opts.supported() == 0 && strings.TrimSpace(v) != "" {
				t.Fatalf("unsupported %q from %q", c, v)
			}
		}
	})
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}
