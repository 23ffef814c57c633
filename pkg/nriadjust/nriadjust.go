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
	// Present is what the container already has when the plugin sees it:
	// what the runtime injected before NRI (CRI devices and mounts, CDI
	// devices the runtime resolved itself, OCI hooks). The adjustment adds
	// none of it again. Nil: the container has nothing (explain).
	Present *Present
}

// Present is a container's current device nodes, mounts and hooks, as the
// runtime shows them to an NRI plugin.
type Present struct {
	// Devices are the container paths of its device nodes.
	Devices map[string]bool
	// Mounts maps each mount destination to its source.
	Mounts map[string]string
	// Hooks are its hooks, each keyed by hookKey.
	Hooks map[string]bool
}

// PresentFromNRI reads what ctr already carries. Containerd and CRI-O show
// a plugin the devices, mounts and hooks that CRI and CDI (resolved by the
// runtime before NRI) put into the container.
func PresentFromNRI(ctr *api.Container) *Present {
	p := &Present{Devices: map[string]bool{}, Mounts: map[string]string{}, Hooks: map[string]bool{}}
	for _, d := range ctr.GetLinux().GetDevices() {
		p.Devices[d.GetPath()] = true
	}
	for _, m := range ctr.GetMounts() {
		p.Mounts[m.GetDestination()] = m.GetSource()
	}
	h := ctr.GetHooks()
	for _, st := range []struct {
		name  string
		hooks []*api.Hook
	}{
		{"prestart", h.GetPrestart()}, {"createRuntime", h.GetCreateRuntime()},
		{"createContainer", h.GetCreateContainer()}, {"startContainer", h.GetStartContainer()},
		{"poststart", h.GetPoststart()}, {"poststop", h.GetPoststop()},
	} {
		for _, hk := range st.hooks {
			var timeout *int
			if hk.GetTimeout() != nil {
				v := int(hk.GetTimeout().GetValue())
				timeout = &v
			}
			p.Hooks[hookKey(st.name, hk.GetPath(), hk.GetArgs(), hk.GetEnv(), timeout)] = true
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

func (p *Present) device(path string) bool { return p != nil && p.Devices[path] }

// mount reports an identical mount: the same destination from the same
// source. A different source at the destination is replaced by the
// adjustment's mount (the runtime's rule for a plugin mount), as before.
func (p *Present) mount(dest, source string) bool {
	if p == nil {
		return false
	}
	s, ok := p.Mounts[dest]
	return ok && s == source
}

func (p *Present) hook(hk *cdi.Hook) bool {
	return p != nil && p.Hooks[hookKey(hk.HookName, hk.Path, hk.Args, hk.Env, hk.Timeout)]
}

// ToAdjustment converts e. The returned warnings name what NRI cannot
// express.
func ToAdjustment(e *cdi.ContainerEdits, o Options) (*api.ContainerAdjustment, []string, error) {
	adj := &api.ContainerAdjustment{}
	if e == nil {
		return adj, nil, nil
	}
	for _, kv := range e.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("nriadjust: invalid environment entry %q", kv)
		}
		adj.AddEnv(k, v)
	}
	for _, d := range e.DeviceNodes {
		if o.Present.device(d.Path) {
			continue
		}
		if err := addDevice(adj, d, o); err != nil {
			return nil, nil, err
		}
	}
	for _, m := range e.Mounts {
		if o.Present.mount(m.ContainerPath, m.HostPath) {
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
			if o.Present.hook(hk) {
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
