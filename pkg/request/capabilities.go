package request

import (
	"fmt"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// capSet is a set of capabilities, one bit per capNames entry.
type capSet uint8

// capNames is config.AllCapabilities (sorted by name); bit i is capNames[i].
// It is an array value, never written.
var capNames = config.AllCapabilities()

// capAll overflows capSet (a compile error) if capNames outgrows it.
const capAll capSet = 1<<len(capNames) - 1

func capBit(name string) capSet {
	for i, c := range capNames {
		if string(c) == name {
			return 1 << i
		}
	}
	return 0
}

// expand adds the capabilities others imply: video => compute,
// display => graphics.
func (s capSet) expand() capSet {
	if s&capBit(string(inventory.Video)) != 0 {
		s |= capBit(string(inventory.Compute))
	}
	if s&capBit(string(inventory.Display)) != 0 {
		s |= capBit(string(inventory.Graphics))
	}
	return s
}

func (s capSet) list(dst []inventory.Capability) []inventory.Capability {
	for i, c := range capNames {
		if s&(1<<i) != 0 {
			dst = append(dst, c)
		}
	}
	return dst
}

func (s capSet) String() string {
	var b strings.Builder
	for i, c := range capNames {
		if s&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(string(c))
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// setOf returns the set of names; unknown names are ignored (config
// validation refuses them).
func setOf(names []string) capSet {
	var s capSet
	for _, n := range names {
		s |= capBit(n)
	}
	return s
}

func (o *Options) supported() capSet {
	if o.SupportedCapabilities == nil {
		return capAll
	}
	return setOf(o.SupportedCapabilities)
}

func (o *Options) defaults() capSet {
	if o.DefaultCapabilities == nil {
		return capBit(string(inventory.Utility)) | capBit(string(inventory.Compute))
	}
	return setOf(o.DefaultCapabilities)
}

// ParseCapabilities parses a NVIDIA_DRIVER_CAPABILITIES value: a comma list
// of capabilities or "all" (spaces around items, empty items and repeats
// ignored, as NVIDIA ignores them); empty means opts' defaults. The result is expanded (video => compute,
// display => graphics), deduplicated and sorted. An unknown capability, or
// one outside opts.SupportedCapabilities, is an error.
func ParseCapabilities(value string, opts Options) ([]inventory.Capability, error) {
	s, reason := parseCaps(value, &opts, nil)
	if reason != "" {
		return nil, fmt.Errorf("%s", reason)
	}
	return s.list(nil), nil
}

// parseCaps parses value; notes (when not nil) gets a note per empty or
// repeated item, which is ignored.
func parseCaps(value string, o *Options, notes *[]string) (capSet, string) {
	if len(value) > MaxValueLen {
		return 0, fmt.Sprintf("value is %d bytes, more than the %d allowed", len(value), MaxValueLen)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return 0, "contains a NUL byte"
	}
	v := strings.TrimSpace(value)
	supported := o.supported()
	if v == "" {
		return o.defaults().expand(), ""
	}
	var s capSet
	for i := 1; ; i++ {
		item, rest, more := strings.Cut(v, ",")
		item = strings.TrimSpace(item)
		switch b := capBit(item); {
		case item == "":
			if notes != nil {
				*notes = append(*notes, fmt.Sprintf("item %d is empty: ignored, as NVIDIA ignores it", i))
			}
		case item == "all":
			s |= supported
		case b == 0:
			return 0, fmt.Sprintf("item %d: unknown capability %q (known: %s, all)", i, item, capAll)
		default:
			if s&b != 0 && notes != nil {
				*notes = append(*notes, fmt.Sprintf("item %d %q repeats: counted once", i, item))
			}
			s |= b
		}
		if !more {
			break
		}
		v = rest
	}
	if s == 0 {
		return 0, "no capability in the list, only commas"
	}
	asked := s
	s = s.expand()
	if bad := s &^ supported; bad != 0 {
		implied := ""
		if bad&^asked != 0 {
			implied = fmt.Sprintf(" (%s implied: video needs compute, display needs graphics)", bad&^asked)
		}
		return 0, fmt.Sprintf("capability %s not in injection.supportedCapabilities (%s)%s", bad, supported, implied)
	}
	return s, ""
}
