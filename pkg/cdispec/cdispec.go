package cdispec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// DefaultKind is the CDI kind of the spec unless Options.Kind says otherwise.
const DefaultKind = "nvidia.com/gpu"

// Device name strategies.
const (
	NameIndex = "index" // "0", MIG "3:0"
	NameUUID  = "uuid"  // "GPU-...", MIG "MIG-..."
	NameBoth  = "both"  // both of the above, as separate devices
)

// AllDevice is the name of the device that holds every GPU and MIG device.
const AllDevice = "all"

// Formats of a written spec.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// Options shape the spec.
type Options struct {
	// Kind is "vendor/class" (default DefaultKind).
	Kind string
	// NameStrategy is NameIndex (default), NameUUID or NameBoth.
	NameStrategy string
	// Capabilities select the driver files, as for a container that asks
	// for them (already expanded, e.g. by request.ParseCapabilities).
	Capabilities []inventory.Capability
}

// device is one CDI device before hoisting.
type device struct {
	name  string
	edits *specs.ContainerEdits
}

// Generate builds the CDI spec for inv. Each device's edits are the
// engine's decision for a grant of that one device (eng carries the loader,
// hook path and the rest of the configuration), the "all" device's the
// decision for a grant of all of them, so a CDI device carries exactly what
// the daemon injects for the same device and capabilities. A device the
// decision refuses is left out with a warning naming why (a GPU without a
// usable node; a MIG-enabled GPU is offered through its MIG devices only,
// silently), as is a MIG device without a UUID under the uuid strategy
// (named by index). A host without any usable GPU is an error: CDI forbids
// a spec without devices.
func Generate(eng *engine.Engine, inv *inventory.Inventory, o Options) (*specs.Spec, []string, error) {
	if inv == nil {
		return nil, nil, errors.New("cdispec: no inventory (no NVIDIA driver on this host)")
	}
	kind := o.Kind
	if kind == "" {
		kind = DefaultKind
	}
	if err := ValidateKind(kind); err != nil {
		return nil, nil, err
	}
	strategy := o.NameStrategy
	if strategy == "" {
		strategy = NameIndex
	}
	if strategy != NameIndex && strategy != NameUUID && strategy != NameBoth {
		return nil, nil, fmt.Errorf("cdispec: device name strategy %q: want %s, %s or %s", strategy, NameIndex, NameUUID, NameBoth)
	}

	h := engine.Fixed(inv)
	decide := func(id string) engine.Answer {
		g := &engine.Grant{Where: "cdi device " + id, Capabilities: o.Capabilities}
		if id == AllDevice {
			g.All = true
		} else {
			g.Devices = []string{id}
		}
		return eng.Decide(h, engine.Query{Grant: g})
	}
	var warnings []string
	var devs []device
	// own holds the container paths of nodes that identify a device (the
	// nodes of every granted GPU, DRI node and MIG cap): they are never
	// hoisted, so that no device ends up with empty edits.
	own := map[string]bool{}
	add := func(names []string, a engine.Answer) {
		for _, g := range a.Result.Selection.GPUs {
			own[g.Node.Path] = true
			for _, d := range g.DRI {
				own[d.Path] = true
			}
		}
		for _, m := range a.Result.Selection.MIGs {
			for _, c := range m.Caps {
				own[c.Path] = true
			}
		}
		for _, n := range names {
			devs = append(devs, device{name: n, edits: a.Result.Edits})
		}
	}
	leftOut := func(id string, err error) {
		reason := err.Error()
		var re *request.Error
		if errors.As(err, &re) {
			reason = re.Reason
		}
		warnings = append(warnings, fmt.Sprintf("device %s left out: %s", id, reason))
	}
	for i := range inv.GPUs {
		g := &inv.GPUs[i]
		id := strconv.Itoa(g.Index)
		a := decide(id)
		switch {
		case a.Err == nil:
			add(names(strategy, id, g.UUID, &warnings), a)
		case errors.Is(a.Err, engine.ErrMIGEnabled):
			for j := range g.MIG {
				m := &g.MIG[j]
				id := fmt.Sprintf("%d:%d", m.GPU, m.Index)
				if a := decide(id); a.Err != nil {
					leftOut(id, a.Err)
				} else {
					add(names(strategy, id, m.UUID, &warnings), a)
				}
			}
		default:
			leftOut(id, a.Err)
		}
	}
	if len(devs) == 0 {
		return nil, warnings, errors.New("cdispec: the host has no usable GPU; a CDI spec needs at least one device")
	}
	a := decide(AllDevice)
	if a.Err != nil {
		return nil, warnings, fmt.Errorf("cdispec: device %s: %w", AllDevice, a.Err)
	}
	add([]string{AllDevice}, a) // its warnings repeat the devices' left out above

	spec := &specs.Spec{Version: specs.CurrentVersion, Kind: kind}
	spec.ContainerEdits, spec.Devices = hoist(devs, own)
	v, err := specs.MinimumRequiredVersion(spec)
	if err != nil {
		return nil, warnings, fmt.Errorf("cdispec: %w", err)
	}
	spec.Version = v
	return spec, warnings, nil
}

// names returns a device's names under strategy.
func names(strategy, index, uuid string, warnings *[]string) []string {
	switch strategy {
	case NameUUID:
		if uuid == "" {
			*warnings = append(*warnings, fmt.Sprintf("device %s has no UUID on this host; named by index", index))
			return []string{index}
		}
		return []string{uuid}
	case NameBoth:
		if uuid == "" {
			*warnings = append(*warnings, fmt.Sprintf("device %s has no UUID on this host; named by index only", index))
			return []string{index}
		}
		return []string{index, uuid}
	}
	return []string{index}
}

// hoist moves what every device shares to the spec's top level, keeping the
// order of the first device's edits.
func hoist(devs []device, own map[string]bool) (specs.ContainerEdits, []specs.Device) {
	common := func(key func(e *specs.ContainerEdits) []string) map[string]bool {
		count := map[string]int{}
		for _, d := range devs {
			seen := map[string]bool{}
			for _, k := range key(d.edits) {
				if !seen[k] {
					seen[k] = true
					count[k]++
				}
			}
		}
		out := map[string]bool{}
		for k, n := range count {
			if n == len(devs) {
				out[k] = true
			}
		}
		return out
	}
	nodeKeys := func(e *specs.ContainerEdits) []string {
		out := make([]string, 0, len(e.DeviceNodes))
		for _, n := range e.DeviceNodes {
			if !own[n.Path] {
				out = append(out, jsonKey(n))
			}
		}
		return out
	}
	cNodes := common(nodeKeys)
	cMounts := common(func(e *specs.ContainerEdits) []string { return mapKeys(e.Mounts) })
	cHooks := common(func(e *specs.ContainerEdits) []string { return mapKeys(e.Hooks) })
	cEnv := common(func(e *specs.ContainerEdits) []string { return e.Env })
	cGIDs := common(func(e *specs.ContainerEdits) []string {
		out := make([]string, len(e.AdditionalGIDs))
		for i, g := range e.AdditionalGIDs {
			out[i] = strconv.FormatUint(uint64(g), 10)
		}
		return out
	})

	var top specs.ContainerEdits
	first := devs[0].edits
	for _, n := range first.DeviceNodes {
		if !own[n.Path] && cNodes[jsonKey(n)] {
			top.DeviceNodes = append(top.DeviceNodes, n)
		}
	}
	for _, m := range first.Mounts {
		if cMounts[jsonKey(m)] {
			top.Mounts = append(top.Mounts, m)
		}
	}
	for _, h := range first.Hooks {
		if cHooks[jsonKey(h)] {
			top.Hooks = append(top.Hooks, h)
		}
	}
	for _, e := range first.Env {
		if cEnv[e] {
			top.Env = append(top.Env, e)
		}
	}
	for _, g := range first.AdditionalGIDs {
		if cGIDs[strconv.FormatUint(uint64(g), 10)] {
			top.AdditionalGIDs = append(top.AdditionalGIDs, g)
		}
	}

	out := make([]specs.Device, 0, len(devs))
	for _, d := range devs {
		var e specs.ContainerEdits
		for _, n := range d.edits.DeviceNodes {
			if own[n.Path] || !cNodes[jsonKey(n)] {
				e.DeviceNodes = append(e.DeviceNodes, n)
			}
		}
		for _, m := range d.edits.Mounts {
			if !cMounts[jsonKey(m)] {
				e.Mounts = append(e.Mounts, m)
			}
		}
		for _, h := range d.edits.Hooks {
			if !cHooks[jsonKey(h)] {
				e.Hooks = append(e.Hooks, h)
			}
		}
		for _, v := range d.edits.Env {
			if !cEnv[v] {
				e.Env = append(e.Env, v)
			}
		}
		for _, g := range d.edits.AdditionalGIDs {
			if !cGIDs[strconv.FormatUint(uint64(g), 10)] {
				e.AdditionalGIDs = append(e.AdditionalGIDs, g)
			}
		}
		out = append(out, specs.Device{Name: d.name, ContainerEdits: e})
	}
	return top, out
}

func mapKeys[T any](items []T) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = jsonKey(it)
	}
	return out
}

// jsonKey identifies an edit by value.
func jsonKey(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// The specs-go types always marshal; fall back to a unique key.
		return fmt.Sprintf("%p", v)
	}
	return string(b)
}

// ValidateKind checks a "vendor/class" kind with the CDI parser.
func ValidateKind(kind string) error {
	vendor, class := parser.ParseQualifier(kind)
	if vendor == "" || class == "" {
		return fmt.Errorf("cdispec: kind %q: want vendor/class, e.g. %s", kind, DefaultKind)
	}
	if err := parser.ValidateVendorName(vendor); err != nil {
		return fmt.Errorf("cdispec: kind %q: %w", kind, err)
	}
	if err := parser.ValidateClassName(class); err != nil {
		return fmt.Errorf("cdispec: kind %q: %w", kind, err)
	}
	return nil
}

// QualifiedNames returns the qualified names of spec's devices
// ("nvidia.com/gpu=0"), in spec order.
func QualifiedNames(spec *specs.Spec) []string {
	vendor, class := parser.ParseQualifier(spec.Kind)
	out := make([]string, len(spec.Devices))
	for i, d := range spec.Devices {
		out[i] = parser.QualifiedName(vendor, class, d.Name)
	}
	return out
}

// FileName is the spec's file name for kind and format:
// "nvidia.com-gpu.yaml".
func FileName(kind, format string) string {
	vendor, class := parser.ParseQualifier(kind)
	return cdiapi.GenerateSpecName(vendor, class) + "." + format
}

// Marshal encodes spec as YAML or JSON (indented, newline-terminated).
func Marshal(spec *specs.Spec, format string) ([]byte, error) {
	switch format {
	case FormatYAML, "":
		b, err := yaml.Marshal(spec)
		if err != nil {
			return nil, fmt.Errorf("cdispec: encoding YAML: %w", err)
		}
		return b, nil
	case FormatJSON:
		b, err := json.MarshalIndent(spec, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("cdispec: encoding JSON: %w", err)
		}
		return append(b, '\n'), nil
	}
	return nil, fmt.Errorf("cdispec: format %q: want %s or %s", format, FormatYAML, FormatJSON)
}

// Validate checks data, an encoded spec, with the CDI library's loader
// (cdi.ReadSpec: strict parsing, version, kind, device names and every
// edit). The library validates only files, so data goes through a
// temporary file in dir (os.TempDir() when empty) whose name the CDI cache
// ignores.
func Validate(data []byte, format, dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, ".gpu-nri-validate-*."+format)
	if err != nil {
		return fmt.Errorf("cdispec: validating: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("cdispec: validating: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cdispec: validating: %w", err)
	}
	if _, err := cdiapi.ReadSpec(f.Name(), 0); err != nil {
		return fmt.Errorf("cdispec: the generated spec is invalid: %w", err)
	}
	return nil
}

// Write has the CDI library (cdi.Cache.WriteSpec) validate spec and
// replace dir/FileName(spec.Kind, format) with it: the library writes a
// temporary file in dir whose name CDI caches ignore and renames it into
// place, so a runtime never reads a half-written or invalid spec; an
// invalid spec leaves the existing file unchanged. The file is then made
// world-readable (0644: rootless consumers read spec directories too). It
// returns the path written; dir is created (0755) when missing.
func Write(spec *specs.Spec, dir, format string) (string, error) {
	if format == "" {
		format = FormatYAML
	}
	if format != FormatYAML && format != FormatJSON {
		return "", fmt.Errorf("cdispec: format %q: want %s or %s", format, FormatYAML, FormatJSON)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cdispec: creating spec dir: %w", err)
	}
	name := FileName(spec.Kind, format)
	path := filepath.Join(dir, name)
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(dir), cdiapi.WithAutoRefresh(false))
	if cache == nil {
		return "", fmt.Errorf("cdispec: writing %s: %w", path, err)
	}
	// err only reports other specs in dir that do not load: not ours to fix.
	if err := cache.WriteSpec(spec, name); err != nil {
		return "", fmt.Errorf("cdispec: writing %s (left unchanged): %w", path, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return "", fmt.Errorf("cdispec: writing %s: %w", path, err)
	}
	return path, nil
}

// Summary is a one-line description of spec for logs and the CLI.
func Summary(spec *specs.Spec) string {
	n := QualifiedNames(spec)
	return fmt.Sprintf("%s (CDI %s): %d devices: %s", spec.Kind, spec.Version, len(n), strings.Join(n, ", "))
}
