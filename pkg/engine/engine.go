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

// unknownDeviceError is a request error that also matches ErrUnknownDevice.
type unknownDeviceError struct{ err *request.Error }

func (e unknownDeviceError) Error() string   { return e.err.Error() }
func (e unknownDeviceError) Unwrap() []error { return []error{e.err, ErrUnknownDevice} }

// CDIResolver finds third-party CDI devices by qualified name. The CDI
// library's *cdi.Cache implements it.
type CDIResolver interface {
	GetDevice(name string) *cdiapi.Device
}

// Engine evaluates requests. Build it once per configuration.
type Engine struct {
	cfg      *config.Config
	reqOpts  request.Options
	policy   *policy.Policy
	editOpts edits.Options
	cdi      CDIResolver
	stater   inventory.NodeStater
}

// Option configures an Engine.
type Option func(*Engine) error

// WithCDI sets the resolver of third-party CDI devices. Without it, any
// third-party CDI name is an error.
func WithCDI(r CDIResolver) Option {
	return func(e *Engine) error { e.cdi = r; return nil }
}

// WithNodeStater sets how third-party CDI device nodes that omit their
// major/minor numbers are read (default: stat at the host view path).
func WithNodeStater(s inventory.NodeStater) Option {
	return func(e *Engine) error { e.stater = s; return nil }
}

// New compiles cfg into an Engine.
func New(cfg *config.Config, opts ...Option) (*Engine, error) {
	p, err := policy.Compile(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e := &Engine{
		cfg:      cfg,
		reqOpts:  request.OptionsFromConfig(&cfg.Injection),
		policy:   p,
		editOpts: edits.OptionsFromConfig(cfg),
	}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	return e, nil
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

// Evaluate decides what the container described by in gets from inv. inv may
// be nil when the host has no driver; a GPU request then fails with
// ErrNoDriver. A container that asks for nothing gets a Result with nil
// Request and nil Edits.
func (e *Engine) Evaluate(inv *inventory.Inventory, in *request.Input) (*Result, error) {
	req, err := request.Parse(in, e.reqOpts)
	if err != nil {
		return nil, err
	}
	res := &Result{Request: req}
	if req == nil {
		return res, nil
	}
	res.Decision, err = e.policy.Authorize(in, req)
	if err != nil {
		return res, err
	}
	if err := e.policy.AllowManagement(in, req); err != nil {
		return res, err
	}
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
		if inv == nil {
			return res, fmt.Errorf("gpu-nri: container %s: %s asks for NVIDIA GPUs: %w", in.Who(), where(src), ErrNoDriver)
		}
		if err := resolve(inv, in, src, &sel, &res.Devices); err != nil {
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
		res.Selection = sel
		res.Edits = edits.Build(inv, sel, e.editOpts)
	}
	if len(thirdParty) > 0 {
		merged, err := e.thirdParty(in, thirdParty, res.Edits)
		if err != nil {
			return res, err
		}
		res.Edits = merged
		res.CDIDevices = thirdParty
		res.Devices = append(res.Devices, thirdParty...)
	}
	return res, nil
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
func resolve(inv *inventory.Inventory, in *request.Input, src *request.SourceRequest, sel *edits.Selection, names *[]string) error {
	if src == nil || src.None {
		return nil
	}
	if src.All {
		for i := range inv.GPUs {
			g := &inv.GPUs[i]
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
			return unknownDeviceError{&request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", src.Where, d.Raw),
				Reason: fmt.Sprintf("no such device on this host (%s)", hostSummary(inv))}}
		}
		if g != nil {
			if len(g.MIG) > 0 {
				return &request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", src.Where, d.Raw),
					Reason: fmt.Sprintf("GPU %d has MIG enabled; ask for its MIG devices (%d:0...) instead", g.Index, g.Index)}
			}
			if g.Node.HostPath == "" {
				return &request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", src.Where, d.Raw),
					Reason: fmt.Sprintf("GPU %d (%s) has no usable device node on this host", g.Index, g.UUID)}
			}
			if seenGPU[g.Index] {
				return &request.Error{Who: in.Who(), Input: src.Where, Reason: fmt.Sprintf("GPU %d is named twice (%q)", g.Index, d.Raw)}
			}
			seenGPU[g.Index] = true
			sel.GPUs = append(sel.GPUs, g)
			*names = append(*names, strconv.Itoa(g.Index)+"="+g.UUID)
			continue
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

func hostSummary(inv *inventory.Inventory) string {
	if len(inv.GPUs) == 0 {
		return "the host has no GPUs"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the host has %d GPU(s): indexes 0-%d", len(inv.GPUs), len(inv.GPUs)-1)
	return b.String()
}

// thirdParty merges the edits of third-party CDI devices into own.
func (e *Engine) thirdParty(in *request.Input, names []string, own *cdi.ContainerEdits) (*cdi.ContainerEdits, error) {
	if e.cdi == nil {
		return nil, &request.Error{Who: in.Who(), Input: "CDI device " + names[0], Reason: "no CDI spec directories are configured (injection.cdiSpecDirs)"}
	}
	merged := &cdiapi.ContainerEdits{ContainerEdits: own}
	if own == nil {
		merged.ContainerEdits = &cdi.ContainerEdits{}
	}
	seenSpec := map[*cdiapi.Spec]bool{}
	for _, n := range names {
		d := e.cdi.GetDevice(n)
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
		filled, err := e.fillNode(dn)
		if err != nil {
			return nil, &request.Error{Who: in.Who(), Input: "CDI device node " + dn.Path, Reason: err.Error()}
		}
		out.DeviceNodes[i] = filled
	}
	return out, nil
}

// fillNode reads major/minor of a CDI device node that omits them, as the
// runtimes do when they apply a CDI spec themselves.
func (e *Engine) fillNode(dn *cdi.DeviceNode) (*cdi.DeviceNode, error) {
	host := dn.HostPath
	if host == "" {
		host = dn.Path
	}
	st := e.stater
	if st == nil {
		return nil, fmt.Errorf("cannot read %s: no node reader configured", host)
	}
	info, err := st.StatNode(e.cfg.Host.View(host))
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
