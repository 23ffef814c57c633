package request

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"tags.cncf.io/container-device-interface/pkg/parser"
)

// kindAll is the internal kind of an "all" item (never returned).
const kindAll DeviceKind = -1

// String returns the kind's name.
func (k DeviceKind) String() string {
	switch k {
	case KindIndex:
		return "index"
	case KindUUID:
		return "uuid"
	case KindPCI:
		return "pci"
	case KindMIGUUID:
		return "mig-uuid"
	case KindMIGIndex:
		return "mig-index"
	case KindCDI:
		return "cdi"
	}
	return fmt.Sprintf("DeviceKind(%d)", int(k))
}

// ParseDevice parses one device list item: an index ("0"), "GPU-<uuid>", a
// PCI bus id ("0000:3b:00.0" or "3b:00.0"), "MIG-<uuid>",
// "MIG-GPU-<uuid>/<gi>/<ci>", "<gpu>:<mig>" or a fully-qualified CDI name.
// A CDI name of kind cdiKind ("" for none) is parsed into the GPU item it
// names ("nvidia.com/gpu=0" is index 0, Raw keeps the CDI name); "all" and
// "none" are list values, not items, and are refused here.
func ParseDevice(item, cdiKind string) (Device, error) {
	d, reason := parseItem(item, cdiKind, false)
	if reason != "" {
		return Device{}, errors.New(reason)
	}
	if d.Kind == kindAll {
		return Device{}, fmt.Errorf("%q is a list value, not a device", item)
	}
	return d, nil
}

// parseItem parses one item. cdiOnly accepts only qualified CDI names.
// The returned reason is "" on success. Only the error path allocates,
// plus a normalized ID when the item is not already canonical.
func parseItem(s, cdiKind string, cdiOnly bool) (Device, string) {
	if reason := checkPlain(s); reason != "" {
		return Device{}, reason
	}
	if strings.IndexByte(s, '=') >= 0 {
		return parseCDI(s, cdiKind)
	}
	if cdiOnly {
		return Device{}, fmt.Sprintf("%q is not a fully-qualified CDI device name (vendor.com/class=name)", s)
	}
	return parseID(s, s)
}

// checkPlain refuses the dangerous shapes every item must avoid.
func checkPlain(s string) string {
	switch {
	case s == "":
		return "empty item"
	case len(s) > MaxValueLen:
		return fmt.Sprintf("item is %d bytes, more than the %d allowed", len(s), MaxValueLen)
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	case s[0] == '/':
		return fmt.Sprintf("%s: an absolute path where a device id is expected", quote(s))
	case strings.Contains(s, ".."):
		return fmt.Sprintf(`%s: contains ".."`, quote(s))
	}
	return ""
}

// parseCDI parses a qualified CDI name, translating gpu-nri's own kind.
func parseCDI(s, cdiKind string) (Device, string) {
	vendor, class, name, err := parser.ParseQualifiedName(s)
	if err != nil {
		return Device{}, fmt.Sprintf("not a valid CDI device name: %v", err)
	}
	if cdiKind != "" && len(vendor)+1+len(class) == len(cdiKind) &&
		strings.HasPrefix(cdiKind, vendor) && cdiKind[len(vendor)] == '/' && strings.HasSuffix(cdiKind, class) {
		if name == "all" {
			return Device{Kind: kindAll, Raw: s}, ""
		}
		id := name
		// nvidia-ctk's "type-index" naming: gpu0, mig1:0.
		if rest, ok := strings.CutPrefix(name, "gpu"); ok && rest != "" && isDigits(rest) {
			id = rest
		} else if rest, ok := strings.CutPrefix(name, "mig"); ok && strings.IndexByte(rest, ':') > 0 && isDigits(rest[:strings.IndexByte(rest, ':')]) {
			id = rest
		}
		d, reason := parseID(id, s)
		if reason != "" {
			return Device{}, fmt.Sprintf("%s: %q is not a device name of kind %s (an index, GPU-/MIG-<uuid>, PCI bus id, <gpu>:<mig>, gpuN, migN:M or all): %s", quote(s), name, cdiKind, reason)
		}
		return d, ""
	}
	return Device{Kind: KindCDI, Raw: s, ID: s}, ""
}

// parseID parses a non-CDI item s; raw is recorded as Device.Raw.
func parseID(s, raw string) (Device, string) {
	switch {
	case s == "all" || s == "none" || s == "void":
		return Device{}, fmt.Sprintf("%q cannot be combined with other items", s)
	case s[0] == '-' && len(s) > 1 && isDigits(s[1:]):
		return Device{}, fmt.Sprintf("%q: negative index", s)
	case isDigits(s):
		n, reason := parseIndex(s)
		if reason != "" {
			return Device{}, reason
		}
		return Device{Kind: KindIndex, Raw: raw, GPU: n}, ""
	case hasPrefixFold(s, "GPU-"):
		id, ok := normUUID("GPU-", s[4:], s)
		if !ok {
			return Device{}, fmt.Sprintf("%q: GPU- must be followed by a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hex)", s)
		}
		return Device{Kind: KindUUID, Raw: raw, ID: id}, ""
	case hasPrefixFold(s, "MIG-GPU-"):
		return parseLegacyMIG(s, raw)
	case hasPrefixFold(s, "MIG-"):
		id, ok := normUUID("MIG-", s[4:], s)
		if !ok {
			return Device{}, fmt.Sprintf("%q: MIG- must be followed by a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hex) or GPU-<uuid>/<gi>/<ci>", s)
		}
		return Device{Kind: KindMIGUUID, Raw: raw, ID: id}, ""
	case strings.IndexByte(s, '/') >= 0:
		return Device{}, fmt.Sprintf("%q: a path where a device id is expected", s)
	case strings.IndexByte(s, ':') >= 0 && strings.IndexByte(s, '.') >= 0:
		id, ok := inventory.NormalizePCIBusID(s)
		if !ok {
			return Device{}, fmt.Sprintf("%q: not a PCI bus id ([domain:]bus:device.function, e.g. 0000:3b:00.0)", s)
		}
		return Device{Kind: KindPCI, Raw: raw, ID: id}, ""
	case strings.IndexByte(s, ':') >= 0:
		g, m, _ := strings.Cut(s, ":")
		if !isDigits(g) || !isDigits(m) {
			return Device{}, fmt.Sprintf("%q: not a MIG index (<gpu>:<mig>, e.g. 0:1)", s)
		}
		gi, reason := parseIndex(g)
		if reason != "" {
			return Device{}, reason
		}
		mi, reason := parseIndex(m)
		if reason != "" {
			return Device{}, reason
		}
		return Device{Kind: KindMIGIndex, Raw: raw, GPU: gi, MIG: mi}, ""
	}
	return Device{}, fmt.Sprintf("%q: unknown device form (expected an index, GPU-<uuid>, a PCI bus id, MIG-<uuid>, <gpu>:<mig> or a CDI name vendor.com/class=name)", s)
}

// parseLegacyMIG parses MIG-GPU-<uuid>/<gi>/<ci>.
func parseLegacyMIG(s, raw string) (Device, string) {
	bad := fmt.Sprintf("%q: not a MIG device (MIG-GPU-<uuid>/<gi>/<ci>)", s)
	u, rest, ok := strings.Cut(s[8:], "/")
	if !ok {
		return Device{}, bad
	}
	gi, ci, ok := strings.Cut(rest, "/")
	if !ok || !isDigits(gi) || !isDigits(ci) {
		return Device{}, bad
	}
	if _, reason := parseIndex(gi); reason != "" {
		return Device{}, reason
	}
	if _, reason := parseIndex(ci); reason != "" {
		return Device{}, reason
	}
	if !isUUID(u) {
		return Device{}, bad
	}
	id := s
	if s[:8] != "MIG-GPU-" || !isLowerHex(u) {
		id = "MIG-GPU-" + strings.ToLower(u) + "/" + gi + "/" + ci
	}
	return Device{Kind: KindMIGUUID, Raw: raw, ID: id}, ""
}

// parseIndex parses a decimal index (already known to be digits).
func parseIndex(s string) (int, string) {
	// Leading zeros are allowed ("01"); cap the digits to avoid overflow.
	t := strings.TrimLeft(s, "0")
	if len(t) > 4 {
		return 0, fmt.Sprintf("%q: index larger than %d", s, MaxIndex)
	}
	n := 0
	for i := 0; i < len(t); i++ {
		n = n*10 + int(t[i]-'0')
	}
	if n > MaxIndex {
		return 0, fmt.Sprintf("%q: index larger than %d", s, MaxIndex)
	}
	return n, ""
}

// normUUID validates u as 8-4-4-4-12 hex and returns prefix+lower(u),
// reusing full (the whole item) when it is already canonical.
func normUUID(prefix, u, full string) (string, bool) {
	if !isUUID(u) {
		return "", false
	}
	if full[:len(prefix)] == prefix && isLowerHex(u) {
		return full, true
	}
	return prefix + strings.ToLower(u), true
}

// isUUID reports whether u is xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex).
func isUUID(u string) bool {
	if len(u) != 36 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// isLowerHex reports whether s has no upper-case letters.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// quote quotes s for a message, cutting it after 128 bytes.
func quote(s string) string {
	const max = 128
	if len(s) > max {
		return fmt.Sprintf("%q... (%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// deviceList is the result of parsing one device list value.
type deviceList struct {
	all, none bool
	devices   []Device
}

// parseList parses a device list value ("all", "none", "void", "" or a
// comma list). void/empty returns a zero list and ok=false. cdiOnly
// accepts only qualified CDI names as items. Untidy input with one obvious
// meaning, read as NVIDIA reads it, appends a note to notes instead of
// failing: empty items of a non-CDI list (NVIDIA skips them), a repeated
// item (counted once) and "all" in another case (NVIDIA's
// nvidia-container-cli compares it case-insensitively).
func parseList(value, cdiKind string, cdiOnly bool, notes *[]string) (l deviceList, ok bool, reason string) {
	if len(value) > MaxValueLen {
		return l, false, fmt.Sprintf("value is %d bytes, more than the %d allowed", len(value), MaxValueLen)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return l, false, "contains a NUL byte"
	}
	v := strings.TrimSpace(value)
	if cdiOnly {
		if v == "" {
			return l, false, "empty value"
		}
	} else {
		switch v {
		case "", "void":
			return l, false, ""
		case "all":
			return deviceList{all: true}, true, ""
		case "none":
			return deviceList{none: true}, true, ""
		}
		if strings.EqualFold(v, "all") {
			*notes = append(*notes, fmt.Sprintf("%q read as \"all\" (NVIDIA compares it case-insensitively); write \"all\"", v))
			return deviceList{all: true}, true, ""
		}
	}
	n := strings.Count(v, ",") + 1
	if n > MaxItems {
		return l, false, fmt.Sprintf("%d items, more than the %d allowed", n, MaxItems)
	}
	l.devices = make([]Device, 0, n)
	for i := 1; ; i++ {
		item, rest, more := strings.Cut(v, ",")
		item = strings.TrimSpace(item)
		switch {
		case item == "" && cdiOnly:
			return deviceList{}, false, fmt.Sprintf("item %d is empty", i)
		case item == "":
			*notes = append(*notes, fmt.Sprintf("item %d is empty: ignored, as NVIDIA ignores it", i))
		default:
			d, reason := parseItem(item, cdiKind, cdiOnly)
			if reason != "" {
				return deviceList{}, false, fmt.Sprintf("item %d: %s", i, reason)
			}
			if d.Kind == kindAll {
				if n == 1 {
					return deviceList{all: true}, true, ""
				}
				return deviceList{}, false, fmt.Sprintf("item %d: %q cannot be combined with other items", i, item)
			}
			if j := indexOf(l.devices, d); j >= 0 {
				*notes = append(*notes, fmt.Sprintf("item %d %q repeats %q: counted once", i, item, l.devices[j].Raw))
			} else {
				l.devices = append(l.devices, d)
			}
		}
		if !more {
			break
		}
		v = rest
	}
	if len(l.devices) == 0 {
		return deviceList{}, false, "no device in the list, only commas"
	}
	return l, true, ""
}

// sameDevice reports whether a and b name the same device in the same way.
func sameDevice(a, b Device) bool {
	return a.Kind == b.Kind && a.GPU == b.GPU && a.MIG == b.MIG && a.ID == b.ID
}

func indexOf(list []Device, d Device) int {
	for i := range list {
		if sameDevice(list[i], d) {
			return i
		}
	}
	return -1
}
