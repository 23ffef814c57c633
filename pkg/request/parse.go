package request

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// Source positions in a Request, in config.Sources() order (a test checks).
const (
	posCDIDevices = iota
	posCDIAnnotation
	posVolumeMounts
	posAnnotation
	posEnv
	numSources
)

var sourceNames = [numSources]string{
	config.SourceCDIDevices, config.SourceCDIAnnotation, config.SourceVolumeMounts,
	config.SourceAnnotation, config.SourceEnv,
}

// Where strings that need no formatting.
const (
	whereEnv       = "env " + EnvVisibleDevices
	whereLegacy    = "env " + EnvCUDAVersion + " (legacy CUDA image rule: " + EnvVisibleDevices + " unset, " + EnvRequireCUDA + " unset)"
	whereMounts    = "volume mounts under " + VolumeMountsRoot + "/"
	whereCDIDevs   = "CDIDevices"
	whereCapsEnv   = "env " + EnvDriverCapabilities
	whereCapsDflt  = "injection.defaultCapabilities"
	whereCapsLgcy  = "env " + EnvCUDAVersion + " (legacy CUDA image rule: " + EnvDriverCapabilities + " unset, " + EnvRequireCUDA + " unset: every supported capability)"
	legacyReqName  = "legacy " + EnvCUDAVersion
	volumeMountCDI = "cdi/"
	volumeMountIMX = "imex/"
)

// Parse reads what the container asks for from every request source. It
// returns (nil, nil) for a container that asks for no GPU from any source,
// and an *Error naming the container, the input and the reason for anything
// malformed. Parse is pure: no file, network or clock access; it does not
// modify in.
func Parse(in *Input, opts Options) (*Request, error) {
	if in == nil {
		return nil, nil
	}
	p := parseState{in: in, opts: opts, kind: opts.cdiKind()}
	env := scanEnv(in.Env)
	if err := p.cdiDevices(); err != nil {
		return nil, err
	}
	if err := p.annotations(); err != nil {
		return nil, err
	}
	if err := p.volumeMounts(); err != nil {
		return nil, err
	}
	if err := p.envDevices(&env); err != nil {
		return nil, err
	}
	n := 0
	for _, h := range p.have {
		if h {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}

	// One allocation holds the request and the usual backing arrays.
	b := &struct {
		req  Request
		src  [2]SourceRequest
		caps [len(capNames)]inventory.Capability
		reqs [2]Requirement
	}{}
	r := &b.req
	r.Sources = b.src[:0]
	if n > len(b.src) {
		r.Sources = make([]SourceRequest, 0, n)
	}
	for i, h := range p.have {
		if h {
			p.src[i].Source = sourceNames[i]
			r.Sources = append(r.Sources, p.src[i])
		}
	}
	r.Legacy = p.legacy

	// Capabilities: gpu-nri's annotation, then the env var, then defaults.
	// A legacy CUDA image (CUDA_VERSION set, NVIDIA_REQUIRE_CUDA unset or
	// empty) that leaves NVIDIA_DRIVER_CAPABILITIES unset gets every
	// supported capability, whichever source asked for its devices, as
	// NVIDIA's hook gives it; set but empty is the defaults.
	capsValue, capsFrom, capsInput := env.caps, whereCapsEnv, EnvDriverCapabilities
	var caps capSet
	legacyCaps := false
	if key, v, ok := lookupOwn(in.PodAnnotations, CapabilitiesAnnotation, opts.domain(), in.Container); ok {
		capsValue, capsFrom, capsInput = v, "annotation "+key, "annotation "+key
	} else if !env.hasCaps && env.legacyImage() {
		capsFrom, legacyCaps = whereCapsLgcy, true
		caps = opts.supported()
	} else if strings.TrimSpace(env.caps) == "" {
		capsFrom = whereCapsDflt
	}
	if !legacyCaps {
		var notes []string
		var reason string
		caps, reason = parseCaps(capsValue, &opts, &notes)
		if reason != "" {
			return nil, p.fail(capsInput, capsValue, reason)
		}
		for _, n := range notes {
			p.warn(capsInput, capsValue, n)
		}
	}
	r.Capabilities = caps.list(b.caps[:0])
	r.CapabilitiesFrom = capsFrom

	if err := p.requirements(&env, r, b.reqs[:0]); err != nil {
		return nil, err
	}
	if err := p.extras(&env, r); err != nil {
		return nil, err
	}
	r.Warnings = p.warnings
	return r, nil
}

// parseState carries one Parse call.
type parseState struct {
	in     *Input
	opts   Options
	kind   string
	src    [numSources]SourceRequest
	have   [numSources]bool
	legacy bool
	// warnings are the notes on untidy input accepted (Request.Warnings).
	warnings []string
}

// warn records a note on input name=value.
func (p *parseState) warn(name, value, note string) {
	p.warnings = append(p.warnings, name+"="+quote(value)+": "+note)
}

// warnList records the notes parseList made on input name=value.
func (p *parseState) warnList(name, value string, notes []string) {
	for _, n := range notes {
		p.warn(name, value, n)
	}
}

// fail builds the *Error for input name=value.
func (p *parseState) fail(name, value, reason string) error {
	return &Error{Who: p.in.Who(), Input: name + "=" + quote(value), Reason: reason}
}

// failf builds an *Error whose input is described as is.
func (p *parseState) failf(input, format string, a ...any) error {
	return &Error{Who: p.in.Who(), Input: input, Reason: fmt.Sprintf(format, a...)}
}

// collector merges the lists of one source.
type collector struct {
	all, none bool
	devices   []Device
	where     []string
}

// add merges l (from where). Repeats across lists are dropped when dedupe
// is set and refused otherwise; all/none/devices may not be mixed.
func (c *collector) add(l deviceList, where string, dedupe bool) string {
	if reason := c.conflict(l.all, l.none, len(l.devices) > 0); reason != "" {
		return reason
	}
	c.all = c.all || l.all
	c.none = c.none || l.none
	if len(c.devices) == 0 && cap(c.devices) == 0 {
		c.devices = l.devices // parseList refused repeats within l already
	} else {
		for _, d := range l.devices {
			if j := indexOf(c.devices, d); j >= 0 {
				if dedupe {
					continue
				}
				return fmt.Sprintf("%q repeats %q", d.Raw, c.devices[j].Raw)
			}
			if len(c.devices) == MaxItems {
				return fmt.Sprintf("more than %d devices from this source", MaxItems)
			}
			c.devices = append(c.devices, d)
		}
	}
	if where != "" && !slices.Contains(c.where, where) {
		c.where = append(c.where, where)
	}
	return ""
}

// addItem merges one item (d.Kind kindAll for "all"). A repeat is counted
// once and returned as a note (NVIDIA selects a device once however often
// it is named).
func (c *collector) addItem(d Device) (note, reason string) {
	if d.Kind == kindAll {
		return "", c.add(deviceList{all: true}, "", false)
	}
	if reason := c.conflict(false, false, true); reason != "" {
		return "", reason
	}
	if j := indexOf(c.devices, d); j >= 0 {
		return fmt.Sprintf("%q repeats %q: counted once", d.Raw, c.devices[j].Raw), ""
	}
	if len(c.devices) == MaxItems {
		return "", fmt.Sprintf("more than %d devices from this source", MaxItems)
	}
	c.devices = append(c.devices, d)
	return "", ""
}

// conflict refuses mixing all, none and devices within one source.
func (c *collector) conflict(all, none, devices bool) string {
	var word string
	switch {
	case all && (c.none || len(c.devices) > 0), c.all && (none || devices):
		word = "all"
	case none && len(c.devices) > 0, c.none && devices:
		word = "none"
	default:
		return ""
	}
	others := "the other requests of this source"
	if len(c.where) > 0 {
		others += " (" + strings.Join(c.where, ", ") + ")"
	}
	return fmt.Sprintf("%q conflicts with %s", word, others)
}

func (p *parseState) set(pos int, c *collector, where string) {
	p.have[pos] = true
	p.src[pos] = SourceRequest{Where: where, All: c.all, None: c.none && len(c.devices) == 0}
	if !c.all && !p.src[pos].None {
		p.src[pos].Devices = c.devices
	}
}

// cdiDevices reads CRI/NRI Container.CDIDevices.
func (p *parseState) cdiDevices() error {
	names := p.in.CDIDevices
	if len(names) == 0 {
		return nil
	}
	if len(names) > MaxItems {
		return p.failf(fmt.Sprintf("CDIDevices (%d names)", len(names)), "more than %d names", MaxItems)
	}
	c := collector{devices: make([]Device, 0, len(names))}
	for i, name := range names {
		d, reason := parseItem(name, p.kind, true)
		note := ""
		if reason == "" {
			note, reason = c.addItem(d)
		}
		if reason != "" {
			return p.fail(fmt.Sprintf("CDIDevices[%d]", i), name, reason)
		}
		if note != "" {
			p.warn(fmt.Sprintf("CDIDevices[%d]", i), name, note)
		}
	}
	p.set(posCDIDevices, &c, whereCDIDevs)
	return nil
}

// annotations reads cdi.k8s.io/ container annotations (source
// cdi-annotation), gpu-nri's own pod annotations and cdi.k8s.io/ pod
// annotations (source annotation: the pod's author wrote them).
func (p *parseState) annotations() error {
	in, domain := p.in, p.opts.domain()
	var podCDI, ctrCDI []string
	var keyBuf [8]string
	for k := range in.PodAnnotations {
		if strings.HasPrefix(k, CDIAnnotationPrefix) {
			if podCDI == nil {
				podCDI = keyBuf[:0:4]
			}
			if len(podCDI) == MaxCDIAnnotations {
				return p.failf("pod annotations "+CDIAnnotationPrefix+"*", "more than %d keys", MaxCDIAnnotations)
			}
			podCDI = append(podCDI, k)
			continue
		}
		if reason := checkOwnKey(k, GPUsAnnotation, domain); reason != "" {
			return p.failf("pod annotation "+quote(k), "%s", reason)
		}
		if reason := checkOwnKey(k, CapabilitiesAnnotation, domain); reason != "" {
			return p.failf("pod annotation "+quote(k), "%s", reason)
		}
	}
	for k, v := range in.Annotations {
		if !strings.HasPrefix(k, CDIAnnotationPrefix) {
			continue
		}
		// A pod annotation the runtime copied to the container is still the
		// pod author's, not the kubelet's.
		if pv, ok := in.PodAnnotations[k]; ok && pv == v {
			continue
		}
		if ctrCDI == nil {
			ctrCDI = keyBuf[4:4:8]
		}
		if len(ctrCDI) == MaxCDIAnnotations {
			return p.failf("annotations "+CDIAnnotationPrefix+"*", "more than %d keys", MaxCDIAnnotations)
		}
		ctrCDI = append(ctrCDI, k)
	}

	if len(ctrCDI) > 0 {
		slices.Sort(ctrCDI)
		var c collector
		for _, k := range ctrCDI {
			if err := p.addCDIAnnotation(&c, "annotation "+k, in.Annotations[k]); err != nil {
				return err
			}
		}
		p.set(posCDIAnnotation, &c, strings.Join(c.where, ", "))
	}

	var c collector
	if key, v, ok := lookupOwn(in.PodAnnotations, GPUsAnnotation, domain, in.Container); ok {
		where := "annotation " + key
		var notes []string
		l, asked, reason := parseList(v, p.kind, false, &notes)
		if reason != "" {
			return p.fail(where, v, reason)
		}
		p.warnList(where, v, notes)
		if asked {
			c.add(l, where, true)
		}
	}
	slices.Sort(podCDI)
	for _, k := range podCDI {
		if err := p.addCDIAnnotation(&c, "pod annotation "+k, in.PodAnnotations[k]); err != nil {
			return err
		}
	}
	if len(c.where) > 0 {
		p.set(posAnnotation, &c, strings.Join(c.where, ", "))
	}
	return nil
}

func (p *parseState) addCDIAnnotation(c *collector, where, v string) error {
	var notes []string
	l, _, reason := parseList(v, p.kind, true, &notes)
	if reason == "" {
		reason = c.add(l, where, true)
	}
	if reason != "" {
		return p.fail(where, v, reason)
	}
	p.warnList(where, v, notes)
	return nil
}

// checkOwnKey refuses a key of gpu-nri's domain that is neither
// "<first>.<domain>/pod" nor "<first>.<domain>/container.<name>".
func checkOwnKey(k, first, domain string) string {
	n := len(first) + 1 + len(domain)
	if len(k) < n || k[:len(first)] != first || k[len(first)] != '.' || k[len(first)+1:n] != domain {
		return ""
	}
	rest := k[n:]
	if rest != "" && rest[0] != '/' {
		return "" // another domain, e.g. gpus.gpu-nri.io.example.com
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "pod" {
		return ""
	}
	if name, ok := strings.CutPrefix(rest, "container."); ok && name != "" {
		return ""
	}
	return fmt.Sprintf("unknown key form: use %s.%s/container.<name> or %s.%s/pod", first, domain, first, domain)
}

// lookupOwn finds "<first>.<domain>/container.<ctr>", then
// "<first>.<domain>/pod", without allocating unless one is found.
func lookupOwn(m map[string]string, first, domain, ctr string) (key, value string, ok bool) {
	if len(m) == 0 {
		return "", "", false
	}
	var buf [128]byte
	b := append(buf[:0], first...)
	b = append(b, '.')
	b = append(b, domain...)
	b = append(b, '/')
	n := len(b)
	if ctr != "" {
		b = append(b, "container."...)
		b = append(b, ctr...)
		if v, ok := m[string(b)]; ok {
			return string(b), v, true
		}
	}
	b = append(b[:n], "pod"...)
	if v, ok := m[string(b)]; ok {
		return string(b), v, true
	}
	return "", "", false
}

// volumeMounts reads the device plugin's volume-mounts strategy.
func (p *parseState) volumeMounts() error {
	var c collector
	var imex []int
	found := false
	for i := range p.in.Mounts {
		dst := p.in.Mounts[i].Destination
		rest, ok := strings.CutPrefix(dst, VolumeMountsRoot+"/")
		if !ok || rest == "" {
			continue
		}
		found = true
		input := "mount " + quote(dst)
		if len(dst) > MaxValueLen {
			return p.failf(input, "path is %d bytes, more than the %d allowed", len(dst), MaxValueLen)
		}
		if reason := checkPlain(rest); reason != "" {
			return p.failf(input, "%s", reason)
		}
		var d Device
		reason := ""
		switch {
		case rest == "all":
			d.Kind = kindAll
		case rest == "none":
			reason = c.add(deviceList{none: true}, "", false)
		case strings.HasPrefix(rest, volumeMountIMX):
			var ch int
			ch, reason = parseChannel(rest[len(volumeMountIMX):])
			switch {
			case reason != "":
			case slices.Contains(imex, ch):
				p.warnings = append(p.warnings, fmt.Sprintf("%s: IMEX channel %d repeats: counted once", input, ch))
			case len(imex) >= MaxItems:
				reason = fmt.Sprintf("more than %d IMEX channels", MaxItems)
			default:
				imex = append(imex, ch)
			}
		case strings.HasPrefix(rest, volumeMountCDI):
			// cdi/<vendor>/<class>/<device>, or the qualified name itself
			// (cdi/<vendor>/<class>=<device>), as NVIDIA reads both.
			name := rest[len(volumeMountCDI):]
			if strings.IndexByte(name, '=') < 0 {
				parts := strings.Split(name, "/")
				if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
					reason = fmt.Sprintf("expected %s/cdi/<vendor>/<class>/<device> or %s/cdi/<vendor>/<class>=<device>", VolumeMountsRoot, VolumeMountsRoot)
					break
				}
				name = parts[0] + "/" + parts[1] + "=" + parts[2]
			}
			d, reason = parseItem(name, p.kind, true)
		default:
			d, reason = parseItem(rest, p.kind, false)
		}
		note := ""
		if reason == "" && d.Kind != 0 {
			note, reason = c.addItem(d)
		}
		if reason != "" {
			return p.failf(input, "%s", reason)
		}
		if note != "" {
			p.warnings = append(p.warnings, input+": "+note)
		}
	}
	if !found {
		return nil
	}
	p.set(posVolumeMounts, &c, whereMounts)
	if len(imex) > 0 {
		slices.Sort(imex)
		p.src[posVolumeMounts].IMEXChannels = imex
	}
	return nil
}

// parseChannel parses an IMEX channel id.
func parseChannel(s string) (int, string) {
	if s == "" {
		return 0, "empty IMEX channel"
	}
	if s[0] == '-' {
		return 0, fmt.Sprintf("%s: negative IMEX channel", quote(s))
	}
	if !isDigits(s) {
		return 0, fmt.Sprintf("%s: not an IMEX channel number", quote(s))
	}
	t := strings.TrimLeft(s, "0")
	n := 0
	if len(t) > 6 {
		return 0, fmt.Sprintf("%s: IMEX channel larger than %d", quote(s), MaxIMEXChannel)
	}
	for i := 0; i < len(t); i++ {
		n = n*10 + int(t[i]-'0')
	}
	if n > MaxIMEXChannel {
		return 0, fmt.Sprintf("%s: IMEX channel larger than %d", quote(s), MaxIMEXChannel)
	}
	return n, ""
}

// envDevices reads NVIDIA_VISIBLE_DEVICES and the legacy CUDA image rule.
func (p *parseState) envDevices(env *envScan) error {
	if !env.hasVisible {
		// Legacy CUDA image rule: an implicit default, so it yields only
		// when no other source asked.
		if env.legacyImage() && !p.any() {
			p.legacy = true
			p.have[posEnv] = true
			p.src[posEnv] = SourceRequest{Where: whereLegacy, All: true}
		}
		return nil
	}
	v := strings.TrimSpace(env.visible)
	if v == VolumeMountsRoot || v == VolumeMountsRoot+"/" {
		if !p.have[posVolumeMounts] {
			return p.fail(EnvVisibleDevices, env.visible, "the device list should be in volume mounts under "+VolumeMountsRoot+"/ but the container has none (is the device plugin's volume-mounts strategy half configured?)")
		}
		return nil
	}
	var notes []string
	l, asked, reason := parseList(env.visible, p.kind, false, &notes)
	if reason != "" {
		return p.fail(EnvVisibleDevices, env.visible, reason)
	}
	p.warnList(EnvVisibleDevices, env.visible, notes)
	if asked {
		var c collector
		c.add(l, "", false)
		p.set(posEnv, &c, whereEnv)
	}
	return nil
}

func (p *parseState) any() bool {
	for _, h := range p.have {
		if h {
			return true
		}
	}
	return false
}

// requirements fills r.Requirements and r.DisableRequire.
func (p *parseState) requirements(env *envScan, r *Request, dst []Requirement) error {
	if env.nRequire > MaxRequirements {
		return p.failf(EnvRequirePrefix+"*", "%d variables, more than the %d allowed", env.nRequire, MaxRequirements)
	}
	if env.nRequire > 0 {
		for _, kv := range p.in.Env {
			if !strings.HasPrefix(kv, EnvRequirePrefix) {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.HasPrefix(k, EnvRequireJetpack) {
				continue
			}
			if len(v) > MaxValueLen {
				return p.fail(k, v, fmt.Sprintf("value is %d bytes, more than the %d allowed", len(v), MaxValueLen))
			}
			if strings.IndexByte(v, 0) >= 0 {
				return p.fail(k, v, "contains a NUL byte")
			}
			if i := slices.IndexFunc(dst, func(q Requirement) bool { return q.Name == k }); i >= 0 {
				dst[i].Expr = v // later wins
				continue
			}
			dst = append(dst, Requirement{Name: k, Expr: v})
		}
		// An empty value (or only spaces) is no requirement. Only spaces:
		// NVIDIA splits alternatives on spaces alone, so a tab is part of
		// a condition, and the policy package refuses it.
		dst = slices.DeleteFunc(dst, func(q Requirement) bool { return strings.Trim(q.Expr, " ") == "" })
		slices.SortFunc(dst, func(a, b Requirement) int { return strings.Compare(a.Name, b.Name) })
	}
	// Legacy CUDA images (CUDA_VERSION without NVIDIA_REQUIRE_CUDA) require
	// at least their CUDA version.
	if env.legacyImage() {
		mm, ok := majorMinor(env.cudaVersion)
		if !ok {
			return p.fail(EnvCUDAVersion, env.cudaVersion, "not a version (major[.minor[.patch]]) for the legacy CUDA image rule")
		}
		dst = append(dst, Requirement{Name: legacyReqName, Expr: "cuda>=" + mm})
	}
	if len(dst) > 0 {
		r.Requirements = dst
	}
	if env.hasDisableRequire && env.disableRequire != "" {
		// NVIDIA reads the value with strconv.ParseBool and takes anything
		// it cannot read as false: the requirements are then checked, which
		// is never less safe, but the author probably meant otherwise.
		v, err := strconv.ParseBool(env.disableRequire)
		r.DisableRequire = v
		if err != nil {
			p.warn(EnvDisableRequire, env.disableRequire, "not a boolean as NVIDIA reads it (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False): read as false, so the requirements are checked")
		}
	}
	return nil
}

// majorMinor returns "X.Y" of a version "X", "X.Y" or "X.Y.Z" (an optional
// leading "v" is dropped).
func majorMinor(v string) (string, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if len(v) > 32 {
		return "", false
	}
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return "", false
	}
	for _, s := range parts {
		if !isDigits(s) || len(s) > 6 {
			return "", false
		}
	}
	if len(parts) == 1 {
		return parts[0] + ".0", true
	}
	return parts[0] + "." + parts[1], true
}

// extras fills the MIG, IMEX and feature flags.
func (p *parseState) extras(env *envScan, r *Request) error {
	var reason string
	var notes []string
	if r.MIGConfig, reason = allOrNothing(env.migConfig, &notes); reason != "" {
		return p.fail(EnvMIGConfigDevices, env.migConfig, reason)
	}
	p.warnList(EnvMIGConfigDevices, env.migConfig, notes)
	notes = notes[:0]
	if r.MIGMonitor, reason = allOrNothing(env.migMonitor, &notes); reason != "" {
		return p.fail(EnvMIGMonitorDevices, env.migMonitor, reason)
	}
	p.warnList(EnvMIGMonitorDevices, env.migMonitor, notes)
	if err := p.imexEnv(env.imex, r); err != nil {
		return err
	}
	for _, f := range [...]struct {
		name, value string
		dst         *bool
	}{{EnvGDS, env.gds, &r.GDS}, {EnvMOFED, env.mofed, &r.MOFED}, {EnvNVSwitch, env.nvswitch, &r.NVSwitch}, {EnvGDRCopy, env.gdrcopy, &r.GDRCopy}} {
		switch strings.TrimSpace(f.value) {
		case "enabled":
			*f.dst = true
		case "", "disabled":
		default:
			return p.fail(f.name, f.value, `expected "enabled" (or "disabled")`)
		}
	}
	return nil
}

// allOrNothing reads NVIDIA_MIG_CONFIG_DEVICES / _MONITOR_DEVICES: "all",
// or nothing. As nvidia-container-cli reads them, empty items are skipped
// and "all" is compared case-insensitively (each with a note).
func allOrNothing(v string, notes *[]string) (bool, string) {
	t := strings.TrimSpace(v)
	switch t {
	case "all":
		return true, ""
	case "", "void", "none":
		return false, ""
	}
	all := false
	for i, item := range strings.Split(t, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			*notes = append(*notes, fmt.Sprintf("item %d is empty: ignored, as NVIDIA ignores it", i+1))
		case strings.EqualFold(item, "all"):
			if item != "all" {
				*notes = append(*notes, fmt.Sprintf("%q read as \"all\" (NVIDIA compares it case-insensitively); write \"all\"", item))
			}
			if all {
				*notes = append(*notes, fmt.Sprintf("item %d %q repeats: counted once", i+1, item))
			}
			all = true
		default:
			return false, `only "all" is supported`
		}
	}
	if !all {
		return false, `only "all" is supported`
	}
	return true, ""
}

func (p *parseState) imexEnv(v string, r *Request) error {
	if len(v) > MaxValueLen {
		return p.fail(EnvIMEXChannels, v, fmt.Sprintf("value is %d bytes, more than the %d allowed", len(v), MaxValueLen))
	}
	t := strings.TrimSpace(v)
	switch t {
	case "", "void", "none":
		return nil
	case "all":
		r.IMEXAll = true
		return nil
	}
	n := strings.Count(t, ",") + 1
	if n > MaxItems {
		return p.fail(EnvIMEXChannels, v, fmt.Sprintf("%d items, more than the %d allowed", n, MaxItems))
	}
	chs := make([]int, 0, n)
	for i := 1; ; i++ {
		item, rest, more := strings.Cut(t, ",")
		item = strings.TrimSpace(item)
		if item == "" {
			p.warn(EnvIMEXChannels, v, fmt.Sprintf("item %d is empty: ignored, as NVIDIA ignores it", i))
		} else {
			ch, reason := parseChannel(item)
			if reason != "" {
				return p.fail(EnvIMEXChannels, v, fmt.Sprintf("item %d: %s", i, reason))
			}
			if slices.Contains(chs, ch) {
				p.warn(EnvIMEXChannels, v, fmt.Sprintf("item %d %q repeats: counted once", i, item))
			} else {
				chs = append(chs, ch)
			}
		}
		if !more {
			break
		}
		t = rest
	}
	if len(chs) == 0 {
		return p.fail(EnvIMEXChannels, v, "no channel in the list, only commas")
	}
	slices.Sort(chs)
	r.IMEXChannels = chs
	return nil
}

// envScan holds the last value of each variable Parse reads.
type envScan struct {
	visible, caps, cudaVersion, requireCUDA, disableRequire    string
	migConfig, migMonitor, imex, gds, mofed, nvswitch, gdrcopy string
	hasVisible, hasCaps, hasDisableRequire                     bool
	nRequire                                                   int
}

// legacyImage reports NVIDIA's legacy CUDA image: CUDA_VERSION set and
// NVIDIA_REQUIRE_CUDA unset or empty.
func (e *envScan) legacyImage() bool { return e.cudaVersion != "" && e.requireCUDA == "" }

// scanEnv finds the variables in one pass without allocating. Entries
// without "=" are ignored.
func scanEnv(env []string) envScan {
	var e envScan
	for _, kv := range env {
		if len(kv) < 8 {
			continue
		}
		if kv[0] == 'C' {
			if v, ok := strings.CutPrefix(kv, EnvCUDAVersion+"="); ok {
				e.cudaVersion = v
			}
			continue
		}
		if kv[:7] != "NVIDIA_" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch k {
		case EnvVisibleDevices:
			e.visible, e.hasVisible = v, true
		case EnvDriverCapabilities:
			e.caps, e.hasCaps = v, true
		case EnvDisableRequire:
			e.disableRequire, e.hasDisableRequire = v, true
		case EnvMIGConfigDevices:
			e.migConfig = v
		case EnvMIGMonitorDevices:
			e.migMonitor = v
		case EnvIMEXChannels:
			e.imex = v
		case EnvGDS:
			e.gds = v
		case EnvMOFED:
			e.mofed = v
		case EnvNVSwitch:
			e.nvswitch = v
		case EnvGDRCopy:
			e.gdrcopy = v
		default:
			if strings.HasPrefix(k, EnvRequirePrefix) && !strings.HasPrefix(k, EnvRequireJetpack) {
				e.nRequire++
				if k == EnvRequireCUDA {
					e.requireCUDA = v
				}
			}
		}
	}
	return e
}
