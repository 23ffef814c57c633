package nriadjust

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containerd/nri/pkg/api"

	"github.com/gpu-nri/gpu-nri/config"
	cdi "tags.cncf.io/container-device-interface/specs-go"
)

// Options shape the adjustment.
type Options struct {
	// CgroupRules adds an explicit device-cgroup allow rule for each device
	// node (applied by runtimes with NRI >= v0.10: containerd 2.2+, CRI-O
	// 1.35+; CRI-O 1.34 vendors NRI v0.9.1 and drops them).
	CgroupRules bool
	// Container is the container as the runtime shows it to the plugin:
	// with what CRI and the runtime's own CDI resolution (before NRI)
	// already put into it (devices, mounts, hooks). The adjustment adds
	// none of that again. Nil: the container has nothing (explain).
	Container *api.Container
}

// present is what a container already carries; nil maps when it has none
// of a kind, nil when it has nothing.
type present struct {
	devices map[string]bool   // container paths of device nodes
	mounts  map[string]string // mount destination -> source
	hooks   map[string]bool   // hookKey of each hook
}

// presentIn reads what ctr already carries (nothing for a nil ctr). Only
// called for an injection, so a container without GPUs pays nothing.
func presentIn(ctr *api.Container) *present {
	devs, mounts, h := ctr.GetLinux().GetDevices(), ctr.GetMounts(), ctr.GetHooks()
	stages := []struct {
		name  string
		hooks []*api.Hook
	}{
		{"prestart", h.GetPrestart()}, {"createRuntime", h.GetCreateRuntime()},
		{"createContainer", h.GetCreateContainer()}, {"startContainer", h.GetStartContainer()},
		{"poststart", h.GetPoststart()}, {"poststop", h.GetPoststop()},
	}
	nhooks := 0
	for _, st := range stages {
		nhooks += len(st.hooks)
	}
	if len(devs) == 0 && len(mounts) == 0 && nhooks == 0 {
		return nil
	}
	p := &present{}
	if len(devs) > 0 {
		p.devices = make(map[string]bool, len(devs))
		for _, d := range devs {
			p.devices[d.GetPath()] = true
		}
	}
	if len(mounts) > 0 {
		p.mounts = make(map[string]string, len(mounts))
		for _, m := range mounts {
			p.mounts[m.GetDestination()] = m.GetSource()
		}
	}
	if nhooks > 0 {
		p.hooks = make(map[string]bool, nhooks)
		for _, st := range stages {
			for _, hk := range st.hooks {
				var timeout *int
				if hk.GetTimeout() != nil {
					v := int(hk.GetTimeout().GetValue())
					timeout = &v
				}
				p.hooks[hookKey(st.name, hk.GetPath(), hk.GetArgs(), hk.GetEnv(), timeout)] = true
			}
		}
	}
	return p
}

// hookKey identifies a hook by stage, path, arguments, environment and
// timeout: two hooks with the same key are the same hook run twice.
func hookKey(stage, path string, args, env []string, timeout *int) string {
	var b strings.Builder
	b.WriteString(stage)
	for _, s := range append(append([]string{path, strconv.Itoa(len(args))}, args...), env...) {
		b.WriteByte(0)
		b.WriteString(s)
	}
	b.WriteByte(0)
	if timeout != nil {
		b.WriteString(strconv.Itoa(*timeout))
	}
	return b.String()
}

func (p *present) device(path string) bool { return p != nil && p.devices[path] }

// mount reports an identical mount: the same destination from the same
// source. A different source at the destination is replaced by the
// adjustment's mount (the runtime's rule for a plugin mount), as before.
func (p *present) mount(dest, source string) bool {
	if p == nil {
		return false
	}
	s, ok := p.mounts[dest]
	return ok && s == source
}

func (p *present) hook(hk *cdi.Hook) bool {
	return p != nil && p.hooks != nil && p.hooks[hookKey(hk.HookName, hk.Path, hk.Args, hk.Env, hk.Timeout)]
}

// ToAdjustment converts e. The returned warnings name what NRI cannot
// express.
func ToAdjustment(e *cdi.ContainerEdits, o Options) (*api.ContainerAdjustment, []string, error) {
	adj := &api.ContainerAdjustment{}
	if e == nil {
		return adj, nil, nil
	}
	have := presentIn(o.Container)
	for _, kv := range e.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("nriadjust: invalid environment entry %q", kv)
		}
		adj.AddEnv(k, v)
	}
	for _, d := range e.DeviceNodes {
		if have.device(d.Path) {
			continue
		}
		if err := addDevice(adj, d, o); err != nil {
			return nil, nil, err
		}
	}
	for _, m := range e.Mounts {
		if have.mount(m.ContainerPath, m.HostPath) {
			continue
		}
		typ := m.Type
		if typ == "" {
			typ = "bind"
		}
		adj.AddMount(&api.Mount{
			Destination: m.ContainerPath,
			Type:        typ,
			Source:      m.HostPath,
			Options:     append([]string(nil), m.Options...),
		})
	}
	if len(e.Hooks) > 0 {
		h := &api.Hooks{}
		added := false
		for _, hk := range e.Hooks {
			if have.hook(hk) {
				continue
			}
			added = true
			ah := &api.Hook{Path: hk.Path, Args: append([]string(nil), hk.Args...), Env: append([]string(nil), hk.Env...)}
			if hk.Timeout != nil {
				ah.Timeout = api.Int(*hk.Timeout)
			}
			switch hk.HookName {
			case "createContainer":
				h.CreateContainer = append(h.CreateContainer, ah)
			case "createRuntime":
				h.CreateRuntime = append(h.CreateRuntime, ah)
			case "startContainer":
				h.StartContainer = append(h.StartContainer, ah)
			case "prestart":
				h.Prestart = append(h.Prestart, ah)
			case "poststart":
				h.Poststart = append(h.Poststart, ah)
			case "poststop":
				h.Poststop = append(h.Poststop, ah)
			default:
				return nil, nil, fmt.Errorf("nriadjust: unknown hook name %q", hk.HookName)
			}
		}
		if added {
			adj.AddHooks(h)
		}
	}
	var warnings []string
	if len(e.AdditionalGIDs) > 0 {
		gids := make([]string, len(e.AdditionalGIDs))
		for i, g := range e.AdditionalGIDs {
			gids[i] = strconv.FormatUint(uint64(g), 10)
		}
		warnings = append(warnings, "NRI cannot add supplementary groups; the container may need group(s) "+
			strings.Join(gids, ",")+" to open device nodes that are not world read-writable")
	}
	return adj, warnings, nil
}

func addDevice(adj *api.ContainerAdjustment, d *cdi.DeviceNode, o Options) error {
	typ := d.Type
	if typ == "" {
		typ = "c"
	}
	if typ != "c" && typ != "b" {
		return fmt.Errorf("nriadjust: device %s: unsupported type %q", d.Path, typ)
	}
	dev := &api.LinuxDevice{Path: d.Path, Type: typ, Major: d.Major, Minor: d.Minor}
	if d.FileMode != nil {
		dev.FileMode = api.FileMode(os.FileMode(*d.FileMode))
	}
	if d.UID != nil {
		dev.Uid = api.UInt32(uint32(*d.UID))
	}
	if d.GID != nil {
		dev.Gid = api.UInt32(uint32(*d.GID))
	}
	adj.AddDevice(dev)
	if o.CgroupRules {
		access := d.Permissions
		if access == "" {
			access = "rwm"
		}
		if adj.Linux == nil {
			adj.Linux = &api.LinuxContainerAdjustment{}
		}
		if adj.Linux.Resources == nil {
			adj.Linux.Resources = &api.LinuxResources{}
		}
		adj.Linux.Resources.Devices = append(adj.Linux.Resources.Devices, &api.LinuxDeviceCgroup{
			Allow:  true,
			Type:   typ,
			Major:  api.Int64(int64(d.Major)),
			Minor:  api.Int64(int64(d.Minor)),
			Access: access,
		})
	}
	return nil
}

// CgroupRules decides injection.deviceCgroupRules for a runtime: "always"
// adds the rules, "never" does not, "auto" adds them when the runtime
// applies them (CgroupRulesApplied).
func CgroupRules(mode config.CgroupRuleMode, runtime, version string) bool {
	switch mode {
	case config.CgroupRulesAlways:
		return true
	case config.CgroupRulesAuto:
		return CgroupRulesApplied(runtime, version)
	}
	return false
}

// CgroupRulesApplied reports whether runtime (name and version as given to
// the plugin's Configure) applies explicit device-cgroup rules from NRI
// adjustments: containerd 2.2+ and CRI-O 1.35+, the first releases that
// vendor NRI v0.10 (CRI-O 1.34.0 vendors NRI v0.9.1 and drops the rules;
// CRI-O took NRI v0.10.0 in cri-o/cri-o#9415 for 1.35; every 1.34.x is
// treated as 1.34.0, the safe side).
func CgroupRulesApplied(runtime, version string) bool {
	major, minor, ok := majorMinor(version)
	if !ok {
		return false
	}
	switch strings.ToLower(runtime) {
	case "containerd", "io.containerd":
		return major > 2 || (major == 2 && minor >= 2)
	case "cri-o", "crio":
		return major > 1 || (major == 1 && minor >= 35)
	}
	return false
}

func majorMinor(v string) (int, int, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return ma, mi, true
}
