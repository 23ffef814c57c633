package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/edits"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/policy"
	"github.com/gpu-nri/gpu-nri/pkg/request"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	cdi "tags.cncf.io/container-device-interface/specs-go"
)

// ErrNoDriver is returned when a container asks for GPUs and the host has no
// usable NVIDIA driver inventory.
var ErrNoDriver = errors.New("no NVIDIA driver inventory on this host")

// ErrUnknownDevice is wrapped by errors for device ids the inventory does not
// have (the daemon rediscovers the host once before failing on it).
var ErrUnknownDevice = errors.New("unknown device")

// ErrMIGEnabled is wrapped by errors for a whole GPU asked for while MIG is
// enabled on it (only its MIG devices can be given).
var ErrMIGEnabled = errors.New("MIG enabled")

// ErrNoDeviceNode is wrapped by errors for a device whose GPU has no usable
// device node on this host.
var ErrNoDeviceNode = errors.New("no usable device node")

// deviceError is a request error that also matches one of the sentinels.
type deviceError struct {
	err  *request.Error
	kind error
}

func (e deviceError) Error() string   { return e.err.Error() }
func (e deviceError) Unwrap() []error { return []error{e.err, e.kind} }

// Engine decides requests. Build it once per configuration; it holds no
// host state (the Host is passed to Decide).
type Engine struct {
	cfg      *config.Config
	reqOpts  request.Options
	policy   *policy.Policy
	editOpts edits.Options
}

// New compiles cfg into an Engine.
func New(cfg *config.Config) (*Engine, error) {
	p, err := policy.Compile(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return &Engine{
		cfg:      cfg,
		reqOpts:  request.OptionsFromConfig(&cfg.Injection),
		policy:   p,
		editOpts: edits.OptionsFromConfig(cfg),
	}, nil
}

// Query is one question to the engine: a container's request input, parsed
// and authorized by policy as the daemon does, or a Grant made elsewhere.
type Query struct {
	// Input is the container's request input. With a Grant it only names
	// the container (it may be nil) and is not parsed.
	Input *request.Input
	// Grant, when set, replaces parsing and authorization.
	Grant *Grant
}

// GrantSource is the request source of a Grant in Result.Request.
const GrantSource = "grant"

// Grant asks for devices an authority other than the container's own
// request already granted: `gpu-nri cdi generate` offering one device to
// whoever holds the spec, or a DRA claim the scheduler allocated. Every
// rule about the devices themselves (MIG-enabled GPUs only through their
// MIG devices, no GPU without a usable node, no duplicates) still applies.
type Grant struct {
	// Where names the grant in the result and in errors, e.g.
	// "cdi generate device 0".
	Where string
	// All asks for every usable GPU and MIG device; Devices for these
	// items (request.ParseDevice syntax: "0", "3:1", "GPU-...").
	All     bool
	Devices []string
	// Capabilities select the driver files (expanded, as
	// request.ParseCapabilities returns them).
	Capabilities []inventory.Capability
	// FromInput applies the container's own settings (Query.Input) to the
	// granted devices, as for any other request source: capabilities
	// (NVIDIA_DRIVER_CAPABILITIES, the capabilities annotation) when
	// Capabilities is empty, NVIDIA_REQUIRE_*, MIG management (with the
	// policy's managementNamespaces), IMEX channels and feature flags. The
	// devices the container names itself (NVIDIA_VISIBLE_DEVICES,
	// annotations, CDI names) are ignored: the grant alone says which.
	FromInput bool
}

// Answer is the engine's whole answer to one Query.
type Answer struct {
	// Result is the evaluation; nil only when the input could not be parsed.
	Result *Result
	// Outcome is one of the Outcome* constants.
	Outcome string
	// Err is the error the container must fail with (nil: it is created).
	Err error
}

// Fail records a later error (e.g. converting the edits for a runtime) and
// classifies the answer again.
func (a *Answer) Fail(err error) {
	a.Err = err
	a.Outcome = classify(a.Result, err)
}

// Decide answers q against h. When the request names a device the
// inventory lacks, or the host has no driver, it asks h to rediscover once
// (h rate-limits) and decides again on the new inventory. A failing request
// is an Answer with Outcome refused or error, never a panic or a partial
// result.
func (e *Engine) Decide(h Host, q Query) Answer {
	res, err := e.evaluate(h, q)
	if err != nil && (errors.Is(err, ErrNoDriver) || errors.Is(err, ErrUnknownDevice)) {
		if changed, rerr := h.RefreshIfStale(); rerr == nil && changed {
			res, err = e.evaluate(h, q)
		}
	}
	return Answer{Result: res, Outcome: classify(res, err), Err: err}
}

// Result is the full account of one evaluation.
type Result struct {
	// Request is the parsed request; nil when the container asks for nothing.
	Request *request.Request
	// Decision is the policy's decision.
	Decision policy.Decision
	// Selection is what the container gets from gpu-nri's own inventory.
	Selection edits.Selection
	// CDIDevices are the third-party CDI devices injected.
	CDIDevices []string
	// Devices names every injected device for audit lines ("0", "GPU-...").
	Devices []string
	// Edits are the container edits; nil when nothing is injected.
	Edits *cdi.ContainerEdits
	// Warnings are non-fatal findings (unverifiable requirements allowed, ...).
	Warnings []string
}

// Injected reports whether the container gets anything.
func (r *Result) Injected() bool { return r != nil && r.Edits != nil }

// evaluate decides q once against h's current inventory. A container
// that asks for nothing gets a Result with nil Request and nil Edits.
func (e *Engine) evaluate(h Host, q Query) (*Result, error) {
	in := q.Input
	if in == nil {
		in = &request.Input{}
	}
	var req *request.Request
	var dec policy.Decision
	var err error
	if q.Grant != nil {
		req, dec, err = e.grant(in, q.Grant)
		if err != nil {
			return nil, err
		}
	} else {
		req, err = request.Parse(in, e.reqOpts)
		if err != nil {
			return nil, err
		}
		if req == nil {
			return &Result{}, nil
		}
		dec, err = e.policy.Authorize(in, req)
		if err != nil {
			return &Result{Request: req, Decision: dec, Warnings: req.Warnings}, err
		}
		if err := e.policy.AllowManagement(in, req); err != nil {
			return &Result{Request: req, Decision: dec, Warnings: req.Warnings}, err
		}
	}
	// Parse warnings (untidy input accepted) reach the audit line and explain.
	res := &Result{Request: req, Decision: dec, Warnings: append([]string(nil), req.Warnings...)}
	var thirdParty []string
	sel := edits.Selection{Capabilities: req.Capabilities, MIGConfig: req.MIGConfig, MIGMonitor: req.MIGMonitor,
		IMEXChannels: req.IMEXChannels, IMEXAll: req.IMEXAll, Extra: req.Extras(),
		ImageLibraryPath: lastEnv(in.Env, "LD_LIBRARY_PATH")}
	src := res.Decision.Source
	if src != nil {
		sel.IMEXChannels = append(sel.IMEXChannels, src.IMEXChannels...)
		for _, d := range src.Devices {
			if d.Kind == request.KindCDI {
				thirdParty = append(thirdParty, d.ID)
			}
		}
	}
	ownRequest := src == nil || len(thirdParty) < len(src.Devices) || src.All || src.None
	if ownRequest {
		inv := h.Inventory()
		if inv == nil {
			return res, fmt.Errorf("gpu-nri: container %s: %s asks for NVIDIA GPUs: %w", in.Who(), where(src), ErrNoDriver)
		}
		if err := resolve(inv, in, src, &sel, res); err != nil {
			return res, err
		}
		for _, ch := range sel.IMEXChannels {
			if _, ok := inv.IMEXChannels[ch]; !ok {
				return res, &request.Error{Who: in.Who(), Input: "IMEX channel " + strconv.Itoa(ch), Reason: "no such channel on this host"}
			}
		}
		gpus := make([]inventory.GPU, 0, len(sel.GPUs)+len(sel.MIGs))
		for _, g := range sel.GPUs {
			gpus = append(gpus, *g)
		}
		for _, m := range sel.MIGs { // each parent once, even for several of its MIG devices
			if g, ok := inv.GPUByIndex(m.GPU); ok && !slices.ContainsFunc(gpus, func(x inventory.GPU) bool { return x.Index == g.Index }) {
				gpus = append(gpus, *g)
			}
		}
		warnings, err := policy.CheckRequirements(req.Requirements, gpus, inv, e.cfg.Requirements, req.DisableRequire)
		res.Warnings = append(res.Warnings, warnings...)
		if err != nil {
			return res, fmt.Errorf("gpu-nri: container %s: %w", in.Who(), err)
		}
		// Can CUDA run here (nvidia-uvm, userland = kernel module)? Computed
		// once by Discover; requirements.computeNotReady: allow warns instead.
		warning, err := inv.CheckCompute(sel.Capabilities, e.cfg.Requirements.ComputeNotReady == "allow")
		if err != nil {
			return res, fmt.Errorf("gpu-nri: container %s: %w", in.Who(), err)
		}
		if warning != "" {
			res.Warnings = append(res.Warnings, warning)
		}
		if e.cfg.Injection.LibraryDir != "" {
			sel.LibraryDir = h.LibraryDir(inv, sel.Capabilities)
		}
		res.Selection = sel
		res.Edits = edits.Build(inv, sel, e.editOpts)
	}
	if len(thirdParty) > 0 {
		merged, err := e.thirdParty(h, in, thirdParty, res.Edits)
		if err != nil {
			return res, err
		}
		res.Edits = merged
		res.CDIDevices = thirdParty
		res.Devices = append(res.Devices, thirdParty...)
	}
	return res, nil
}

// grant turns g into the request and decision it stands for.
func (e *Engine) grant(in *request.Input, g *Grant) (*request.Request, policy.Decision, error) {
	src := request.SourceRequest{Source: GrantSource, Where: g.Where, All: g.All}
	for _, item := range g.Devices {
		d, err := request.ParseDevice(item, e.cfg.Injection.CDIKind)
		if err != nil {
			return nil, policy.Decision{}, &request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", g.Where, item), Reason: err.Error()}
		}
		src.Devices = append(src.Devices, d)
	}
	if !src.All && len(src.Devices) == 0 {
		src.None = true
	}
	req := &request.Request{Sources: []request.SourceRequest{src}, Capabilities: g.Capabilities, CapabilitiesFrom: g.Where}
	if g.FromInput {
		own, err := e.ownSettings(in)
		if err != nil {
			return nil, policy.Decision{}, err
		}
		if len(req.Capabilities) == 0 {
			req.Capabilities, req.CapabilitiesFrom = own.Capabilities, own.CapabilitiesFrom
		}
		req.Requirements, req.DisableRequire = own.Requirements, own.DisableRequire
		req.MIGConfig, req.MIGMonitor = own.MIGConfig, own.MIGMonitor
		req.IMEXChannels, req.IMEXAll = own.IMEXChannels, own.IMEXAll
		req.GDS, req.MOFED, req.NVSwitch, req.GDRCopy = own.GDS, own.MOFED, own.NVSwitch, own.GDRCopy
		req.Warnings = own.Warnings
		if err := e.policy.AllowManagement(in, req); err != nil {
			return nil, policy.Decision{}, err
		}
	}
	return req, policy.Decision{Source: &req.Sources[0], Rule: g.Where}, nil
}

// ownSettings parses what in says besides its devices: the container's
// environment with NVIDIA_VISIBLE_DEVICES=none in place of every device
// source, so request.Parse reads capabilities, requirements, MIG
// management, IMEX and feature flags exactly as for any container.
func (e *Engine) ownSettings(in *request.Input) (*request.Request, error) {
	probe := request.Input{Namespace: in.Namespace, Pod: in.Pod, Container: in.Container,
		Env: make([]string, 0, len(in.Env)+1), PodAnnotations: map[string]string{}}
	for _, kv := range in.Env {
		if k, _, _ := strings.Cut(kv, "="); k != request.EnvVisibleDevices {
			probe.Env = append(probe.Env, kv)
		}
	}
	probe.Env = append(probe.Env, request.EnvVisibleDevices+"=none")
	capKey := request.CapabilitiesAnnotation + "." + e.cfg.Injection.AnnotationDomain
	for k, v := range in.PodAnnotations { // only the capabilities annotation: no device source
		if strings.HasPrefix(k, capKey) {
			probe.PodAnnotations[k] = v
		}
	}
	req, err := request.Parse(&probe, e.reqOpts)
	if err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("gpu-nri: container %s: cannot read its settings for a grant", in.Who())
	}
	return req, nil
}

// lastEnv returns the value of the last KEY=VALUE entry for key in env.
func lastEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

func where(src *request.SourceRequest) string {
	if src == nil {
		return "the request"
	}
	return src.Where
}

// resolve looks every device of src up in inv.
func resolve(inv *inventory.Inventory, in *request.Input, src *request.SourceRequest, sel *edits.Selection, res *Result) error {
	names := &res.Devices
	if src == nil || src.None {
		return nil
	}
	if src.All {
		for i := range inv.GPUs {
			g := &inv.GPUs[i]
			if g.Node.HostPath == "" {
				res.Warnings = append(res.Warnings, fmt.Sprintf("GPU %d (%s) has no usable device node on this host; left out", g.Index, g.UUID))
				continue
			}
			sel.GPUs = append(sel.GPUs, g)
			*names = append(*names, g.UUID)
			for j := range g.MIG {
				sel.MIGs = append(sel.MIGs, &g.MIG[j])
			}
		}
		return nil
	}
	seenGPU := map[int]bool{}
	seenMIG := map[[2]int]bool{}
	for _, d := range src.Devices {
		var g *inventory.GPU
		var m *inventory.MIGDevice
		var ok bool
		switch d.Kind {
		case request.KindCDI:
			continue
		case request.KindIndex:
			g, ok = inv.GPUByIndex(d.GPU)
		case request.KindUUID:
			g, ok = inv.GPUByUUID(d.ID)
		case request.KindPCI:
			g, ok = inv.GPUByPCI(d.ID)
		case request.KindMIGIndex:
			m, ok = inv.MIGByIndex(d.GPU, d.MIG)
		case request.KindMIGUUID:
			m, ok = inv.MIGByUUID(d.ID)
		}
		if !ok {
			summary := hostSummary(inv)
			if d.Kind == request.KindMIGUUID {
				summary += migUUIDHint(inv)
			}
			return deviceError{&request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", src.Where, d.Raw),
				Reason: fmt.Sprintf("no such device on this host (%s)", summary)}, ErrUnknownDevice}
		}
		if g != nil {
			if len(g.MIG) > 0 {
				return deviceError{&request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", src.Where, d.Raw),
					Reason: fmt.Sprintf("GPU %d has MIG enabled; ask for its MIG devices (%d:0...) instead", g.Index, g.Index)}, ErrMIGEnabled}
			}
			if g.Node.HostPath == "" {
				return deviceError{&request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", src.Where, d.Raw),
					Reason: fmt.Sprintf("GPU %d (%s) has no usable device node on this host", g.Index, g.UUID)}, ErrNoDeviceNode}
			}
			if seenGPU[g.Index] {
				return &request.Error{Who: in.Who(), Input: src.Where, Reason: fmt.Sprintf("GPU %d is named twice (%q)", g.Index, d.Raw)}
			}
			seenGPU[g.Index] = true
			sel.GPUs = append(sel.GPUs, g)
			*names = append(*names, strconv.Itoa(g.Index)+"="+g.UUID)
			continue
		}
		if g, ok := inv.GPUByIndex(m.GPU); !ok || g.Node.HostPath == "" {
			return deviceError{&request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", src.Where, d.Raw),
				Reason: fmt.Sprintf("MIG device %d:%d: its GPU has no usable device node on this host", m.GPU, m.Index)}, ErrNoDeviceNode}
		}
		k := [2]int{m.GPU, m.Index}
		if seenMIG[k] {
			return &request.Error{Who: in.Who(), Input: src.Where, Reason: fmt.Sprintf("MIG device %d:%d is named twice (%q)", m.GPU, m.Index, d.Raw)}
		}
		seenMIG[k] = true
		sel.MIGs = append(sel.MIGs, m)
		*names = append(*names, fmt.Sprintf("%d:%d", m.GPU, m.Index))
	}
	return nil
}

// migUUIDHint says, for a MIG UUID not found, how many MIG devices have no
// known UUID (the driver's nvidia-smi could not name them at discovery).
func migUUIDHint(inv *inventory.Inventory) string {
	unnamed := 0
	for _, g := range inv.GPUs {
		for _, m := range g.MIG {
			if m.UUID == "" {
				unnamed++
			}
		}
	}
	if unnamed == 0 {
		return ""
	}
	return fmt.Sprintf("; the UUIDs of %d MIG device(s) are unknown: the driver's nvidia-smi did not name them (see the inventory's warnings, gpu-nri doctor); ask by <gpu>:<mig> index", unnamed)
}

func hostSummary(inv *inventory.Inventory) string {
	if len(inv.GPUs) == 0 {
		return "the host has no GPUs"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the host has %d GPU(s): indexes 0-%d", len(inv.GPUs), len(inv.GPUs)-1)
	return b.String()
}

// thirdParty merges the edits of third-party CDI devices into own.
func (e *Engine) thirdParty(h Host, in *request.Input, names []string, own *cdi.ContainerEdits) (*cdi.ContainerEdits, error) {
	if len(e.cfg.Injection.CDISpecDirs) == 0 {
		return nil, &request.Error{Who: in.Who(), Input: "CDI device " + names[0], Reason: "no CDI spec directories are configured (injection.cdiSpecDirs)"}
	}
	merged := &cdiapi.ContainerEdits{ContainerEdits: own}
	if own == nil {
		merged.ContainerEdits = &cdi.ContainerEdits{}
	}
	seenSpec := map[*cdiapi.Spec]bool{}
	for _, n := range names {
		d := h.CDIDevice(n)
		if d == nil {
			return nil, &request.Error{Who: in.Who(), Input: "CDI device " + n,
				Reason: fmt.Sprintf("unresolvable CDI device: no spec in %s defines it", strings.Join(e.cfg.Injection.CDISpecDirs, ", "))}
		}
		if s := d.GetSpec(); s != nil && !seenSpec[s] {
			seenSpec[s] = true
			merged.Append(&cdiapi.ContainerEdits{ContainerEdits: &s.ContainerEdits})
		}
		merged.Append(&cdiapi.ContainerEdits{ContainerEdits: &d.ContainerEdits})
	}
	out := merged.ContainerEdits
	for i, dn := range out.DeviceNodes {
		if dn.Major != 0 || dn.Minor != 0 {
			continue
		}
		filled, err := fillNode(h, dn)
		if err != nil {
			return nil, &request.Error{Who: in.Who(), Input: "CDI device node " + dn.Path, Reason: err.Error()}
		}
		out.DeviceNodes[i] = filled
	}
	return out, nil
}

// fillNode reads major/minor of a CDI device node that omits them, as the
// runtimes do when they apply a CDI spec themselves.
func fillNode(h Host, dn *cdi.DeviceNode) (*cdi.DeviceNode, error) {
	host := dn.HostPath
	if host == "" {
		host = dn.Path
	}
	info, err := h.StatNode(host)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("host device %s does not exist", host)
		}
		return nil, err
	}
	c := *dn
	c.HostPath = host
	c.Major, c.Minor = info.Major, info.Minor
	if c.Type == "" {
		switch {
		case info.IsChar:
			c.Type = "c"
		case info.IsBlock:
			c.Type = "b"
		default:
			return nil, fmt.Errorf("host path %s is not a device node", host)
		}
	}
	if c.FileMode == nil {
		m := info.Perm
		c.FileMode = &m
	}
	return &c, nil
}
