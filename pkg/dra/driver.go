package dra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// MarkerEnvPrefix starts the variable each claim device's CDI spec sets
// (<prefix><claim uid>_<device>, "-" as "_", = its CDI name): CDI forbids
// empty edits, and a runtime that does not show the plugin CDI names
// (CRI-O) still shows it the environment.
const MarkerEnvPrefix = "GPU_NRI_DRA_DEVICE_"

// GuardDir is where, in the container, each claim device's CDI spec
// mounts its guard: GuardDir/<marker variable>, from GuardHostPath, which
// does not exist (nothing creates it). gpu-nri's NRI answer for the
// container removes the guard mounts (GuardMounts), so a claim container
// the runtime creates without gpu-nri's answer (gpu-nri not registered,
// or its answer too late, on a runtime that fails open: CRI-O 1.34 has no
// NRI validator) fails with the runtime's mount error naming GuardHostPath
// instead of starting without its GPUs.
const GuardDir = "/run/gpu-nri/dra-guard"

// GuardHostPath is the guard mounts' source: a path that must not exist
// on the host, whose name says what the runtime's error means.
const GuardHostPath = "/run/gpu-nri/dra-guard/NOT-INJECTED-gpu-nri-did-not-answer-for-this-claim-container"

// CheckpointFile is the checkpoint's name in Options.PluginDir.
const CheckpointFile = "checkpoint.json"

// Options configure a Driver.
type Options struct {
	// DriverName is the DRA driver name (config dra.driverName).
	DriverName string
	// NodeName is the node (and pool) served.
	NodeName string
	// PluginDir holds the plugin socket and the checkpoint.
	PluginDir string
	// RegistryDir is the kubelet's plugin registration directory.
	RegistryDir string
	// CDISpecDir receives each prepared claim's names-only CDI spec.
	CDISpecDir string
	// Inventory returns the host's current inventory (nil: no driver).
	Inventory func() *inventory.Inventory
	// Request parses the capabilities of a claim's opaque configuration.
	Request request.Options
	// OnError receives background errors (ResourceSlice publishing).
	OnError func(err error, msg string)
}

// OptionsFromConfig fills the Options that come from cfg.
func OptionsFromConfig(cfg *config.Config) Options {
	node := cfg.DRA.NodeName
	if node == "" {
		node = os.Getenv("NODE_NAME")
	}
	return Options{DriverName: cfg.DRA.DriverName, NodeName: node, PluginDir: cfg.DRA.PluginDir,
		RegistryDir: cfg.DRA.KubeletRegistryDir, CDISpecDir: cfg.DRA.CDISpecDir,
		Request: request.OptionsFromConfig(&cfg.Injection)}
}

// Driver is the kubelet plugin and the claim lookup of the NRI path.
type Driver struct {
	o      Options
	mu     sync.Mutex
	claims map[string]*PreparedClaim // by claim UID; each value immutable once stored
	helper *kubeletplugin.Helper
}

// New loads the checkpoint (prepared claims survive a restart).
func New(o Options) (*Driver, error) {
	switch {
	case o.DriverName == "":
		return nil, errors.New("dra: no driver name")
	case o.NodeName == "":
		return nil, errors.New("dra: no node name (set dra.nodeName or NODE_NAME)")
	case o.Inventory == nil:
		return nil, errors.New("dra: no inventory source")
	}
	claims, err := loadCheckpoint(filepath.Join(o.PluginDir, CheckpointFile))
	if err != nil {
		return nil, err
	}
	return &Driver{o: o, claims: claims}, nil
}

// Kind is the CDI kind of claim devices: <driver>/claim.
func (d *Driver) Kind() string { return d.o.DriverName + "/claim" }

// Prepared returns a copy of the prepared claims' records, by claim UID.
func (d *Driver) Prepared() map[string]PreparedClaim {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]PreparedClaim, len(d.claims))
	for k, v := range d.claims {
		out[k] = *v
	}
	return out
}

// Start registers with the kubelet and publishes the current inventory.
func (d *Driver) Start(ctx context.Context, kube kubernetes.Interface) error {
	h, err := kubeletplugin.Start(ctx, d,
		kubeletplugin.DriverName(d.o.DriverName), kubeletplugin.NodeName(d.o.NodeName),
		kubeletplugin.KubeClient(kube), kubeletplugin.PluginDataDirectoryPath(d.o.PluginDir),
		kubeletplugin.RegistrarDirectoryPath(d.o.RegistryDir), kubeletplugin.HealthService(false))
	if err != nil {
		return fmt.Errorf("dra: kubelet plugin: %w", err)
	}
	d.mu.Lock()
	d.helper = h
	d.mu.Unlock()
	return d.Publish(ctx, d.o.Inventory())
}

// Publish replaces the node's ResourceSlices with inv's devices.
func (d *Driver) Publish(ctx context.Context, inv *inventory.Inventory) error {
	d.mu.Lock()
	h := d.helper
	d.mu.Unlock()
	if h == nil {
		return nil
	}
	if err := h.PublishResources(ctx, Resources(inv, d.o.NodeName)); err != nil {
		return fmt.Errorf("dra: publishing ResourceSlices: %w", err)
	}
	return nil
}

// Stop ends the kubelet plugin (the ResourceSlices stay for the next start).
func (d *Driver) Stop() {
	d.mu.Lock()
	h := d.helper
	d.helper = nil
	d.mu.Unlock()
	if h != nil {
		h.Stop()
	}
}

// HandleError passes background errors on (kubeletplugin.DRAPlugin).
func (d *Driver) HandleError(_ context.Context, err error, msg string) {
	if d.o.OnError != nil {
		d.o.OnError(err, msg)
	}
}

// WatchHealthStatus is not supported (kubeletplugin.DRAPlugin).
func (d *Driver) WatchHealthStatus(context.Context, chan<- kubeletplugin.DeviceHealthReport) error {
	return kubeletplugin.ErrHealthNotSupported
}

// PrepareResourceClaims prepares each claim (kubeletplugin.DRAPlugin).
func (d *Driver) PrepareResourceClaims(_ context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	out := make(map[types.UID]kubeletplugin.PrepareResult, len(claims))
	inv := d.o.Inventory()
	for _, c := range claims {
		pc, err := d.prepare(inv, c)
		if err != nil {
			out[c.UID] = kubeletplugin.PrepareResult{Err: err}
			continue
		}
		res := kubeletplugin.PrepareResult{}
		for _, dev := range pc.Devices {
			res.Devices = append(res.Devices, kubeletplugin.Device{Requests: dev.Requests, PoolName: dev.Pool,
				DeviceName: dev.Device, CDIDeviceIDs: []string{dev.CDIName}})
		}
		out[c.UID] = res
	}
	return out, nil
}

// prepare checks, records and returns one claim's devices.
func (d *Driver) prepare(inv *inventory.Inventory, c *resourceapi.ResourceClaim) (*PreparedClaim, error) {
	pc := &PreparedClaim{Namespace: c.Namespace, Name: c.Name, UID: string(c.UID)}
	where := pc.Where()
	if c.Status.Allocation == nil {
		return nil, fmt.Errorf("%s: not allocated", where)
	}
	for _, r := range c.Status.ReservedFor {
		if r.Resource == "pods" {
			pc.ReservedFor = append(pc.ReservedFor, string(r.UID))
		}
	}
	byName := map[string]Device{}
	for _, dev := range Devices(inv) {
		byName[dev.API.Name] = dev
	}
	for _, r := range c.Status.Allocation.Devices.Results {
		if r.Driver != d.o.DriverName {
			continue
		}
		if r.Pool != d.o.NodeName {
			return nil, fmt.Errorf("%s: device %s: pool %q is not this node's (%s)", where, r.Device, r.Pool, d.o.NodeName)
		}
		dev, ok := byName[r.Device]
		if !ok {
			return nil, fmt.Errorf("%s: device %s: %s", where, r.Device, missing(inv, r.Device))
		}
		i := slices.IndexFunc(pc.Devices, func(p PreparedDevice) bool { return p.Device == r.Device })
		if i >= 0 { // one device for several requests (AdminAccess aside, the scheduler does not do this; be exact)
			pc.Devices[i].Requests = append(pc.Devices[i].Requests, r.Request)
			continue
		}
		pc.Devices = append(pc.Devices, PreparedDevice{Requests: []string{r.Request}, Pool: r.Pool, Device: r.Device,
			ID: dev.ID, CDIName: d.Kind() + "=" + string(c.UID) + "-" + r.Device})
	}
	caps, err := d.capabilities(where, c.Status.Allocation.Devices.Config)
	if err != nil {
		return nil, err
	}
	pc.Capabilities = caps

	d.mu.Lock()
	defer d.mu.Unlock()
	for uid, other := range d.claims {
		if uid == pc.UID {
			continue
		}
		for _, od := range other.Devices {
			for _, nd := range pc.Devices {
				if od.Device == nd.Device {
					return nil, fmt.Errorf("%s: device %s: already prepared for %s", where, nd.Device, other.Where())
				}
			}
		}
	}
	if old, ok := d.claims[pc.UID]; ok {
		for _, p := range old.ReservedFor { // a pod prepared earlier keeps its claim
			if !slices.Contains(pc.ReservedFor, p) {
				pc.ReservedFor = append(pc.ReservedFor, p)
			}
		}
	}
	if err := d.writeSpec(pc); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	next := make(map[string]*PreparedClaim, len(d.claims)+1)
	for k, v := range d.claims {
		next[k] = v
	}
	next[pc.UID] = pc
	if err := saveCheckpoint(filepath.Join(d.o.PluginDir, CheckpointFile), next); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	d.claims = next
	return pc, nil
}

// ClaimConfig is the opaque configuration of a claim or class for this
// driver (DeviceClaimConfiguration.opaque.parameters).
type ClaimConfig struct {
	// APIVersion and Kind are "gpu.gpu-nri.io/v1alpha1" and "GpuConfig"
	// (the driver name is the group).
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// DriverCapabilities is an NVIDIA_DRIVER_CAPABILITIES value
	// ("compute,utility", "all"): the driver files the claim's containers get.
	DriverCapabilities string `json:"driverCapabilities,omitempty"`
}

// capabilities reads the driver capabilities from the allocation's
// configuration for this driver (class configuration first, the claim's
// after it: the last one that sets them wins).
func (d *Driver) capabilities(where string, cfgs []resourceapi.DeviceAllocationConfiguration) ([]config.Capability, error) {
	var caps []config.Capability
	for i, c := range cfgs {
		if c.Opaque == nil || c.Opaque.Driver != d.o.DriverName {
			continue
		}
		var cc ClaimConfig
		dec := json.NewDecoder(strings.NewReader(string(c.Opaque.Parameters.Raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cc); err != nil {
			return nil, fmt.Errorf("%s: config[%d] (%s) for %s: %w", where, i, c.Source, d.o.DriverName, err)
		}
		if want := d.o.DriverName + "/v1alpha1"; cc.APIVersion != want || cc.Kind != "GpuConfig" {
			return nil, fmt.Errorf("%s: config[%d] (%s): apiVersion %q kind %q, want %s GpuConfig", where, i, c.Source, cc.APIVersion, cc.Kind, want)
		}
		if cc.DriverCapabilities == "" {
			continue
		}
		parsed, err := request.ParseCapabilities(cc.DriverCapabilities, d.o.Request)
		if err != nil {
			return nil, fmt.Errorf("%s: config[%d] (%s): driverCapabilities %q: %w", where, i, c.Source, cc.DriverCapabilities, err)
		}
		caps = parsed
	}
	return caps, nil
}

// UnprepareResourceClaims forgets each claim and removes its CDI spec
// (kubeletplugin.DRAPlugin). A claim not prepared is no error.
func (d *Driver) UnprepareResourceClaims(_ context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	out := make(map[types.UID]error, len(claims))
	d.mu.Lock()
	defer d.mu.Unlock()
	next := make(map[string]*PreparedClaim, len(d.claims))
	for k, v := range d.claims {
		next[k] = v
	}
	for _, c := range claims {
		delete(next, string(c.UID))
		if err := os.Remove(d.specPath(string(c.UID))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			out[c.UID] = fmt.Errorf("dra: ResourceClaim %s/%s: %w", c.Namespace, c.Name, err)
			continue
		}
		out[c.UID] = nil
	}
	if err := saveCheckpoint(filepath.Join(d.o.PluginDir, CheckpointFile), next); err != nil {
		return nil, err
	}
	d.claims = next
	return out, nil
}

// specPath is the claim's CDI spec file.
func (d *Driver) specPath(uid string) string {
	return filepath.Join(d.o.CDISpecDir, strings.ReplaceAll(d.o.DriverName, ".", "_")+"-claim-"+uid+".json")
}

// writeSpec writes pc's names-only CDI spec: each device sets its marker
// variable and mounts its guard (GuardDir), so the runtime resolves the
// names the kubelet passes and injects no GPU; gpu-nri's NRI answer
// injects the devices, once, and removes the guards.
func (d *Driver) writeSpec(pc *PreparedClaim) error {
	sp := &specs.Spec{Version: specs.CurrentVersion, Kind: d.Kind(),
		Annotations: map[string]string{"gpu-nri.io/claim": pc.Namespace + "/" + pc.Name}}
	for _, dev := range pc.Devices {
		_, name, _ := strings.Cut(dev.CDIName, "=")
		marker := markerEnv(pc.UID, dev.Device)
		sp.Devices = append(sp.Devices, specs.Device{Name: name,
			ContainerEdits: specs.ContainerEdits{Env: []string{marker + "=" + dev.CDIName},
				Mounts: []*specs.Mount{{HostPath: GuardHostPath, ContainerPath: GuardDir + "/" + marker,
					Type: "bind", Options: []string{"ro", "nosuid", "nodev", "noexec", "bind"}}}}})
	}
	if len(sp.Devices) == 0 {
		return nil
	}
	v, err := specs.MinimumRequiredVersion(sp)
	if err != nil {
		return fmt.Errorf("CDI spec: %w", err)
	}
	sp.Version = v
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return fmt.Errorf("CDI spec: %w", err)
	}
	return writeAtomic(d.specPath(pc.UID), b)
}

// GuardMounts are the container paths of the guard mounts the claim specs
// of env's marker variables add (GuardDir), for the NRI answer to remove.
// String work only.
func GuardMounts(env []string) []string {
	var out []string
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, MarkerEnvPrefix) {
			out = append(out, GuardDir+"/"+k)
		}
	}
	return out
}

func markerEnv(uid, device string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return MarkerEnvPrefix + r.Replace(uid) + "_" + r.Replace(device)
}

// Grant is the engine grant for the claim devices in's container names
// (its CDI names of Kind, or the marker variables their specs set), for
// the pod podUID. ok is false when the container names none. A name of a
// claim not prepared here, or of a claim not reserved for the pod, is an
// error: the container fails rather than run without its devices or with
// another pod's.
func (d *Driver) Grant(podUID string, in *request.Input) (g *engine.Grant, ok bool, err error) {
	prefix := d.Kind() + "="
	var names []string
	for _, n := range in.CDIDevices {
		if strings.HasPrefix(n, prefix) && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, kv := range in.Env {
		if strings.HasPrefix(kv, MarkerEnvPrefix) {
			if _, v, _ := strings.Cut(kv, "="); strings.HasPrefix(v, prefix) && !slices.Contains(names, v) {
				names = append(names, v)
			}
		}
	}
	if len(names) == 0 {
		return nil, false, nil
	}
	d.mu.Lock()
	claims := d.claims
	d.mu.Unlock()
	g = &engine.Grant{FromInput: true}
	inv := d.o.Inventory() // the current inventory (an atomic load)
	var where []string
	capsSet := false
	for _, n := range names {
		rest := strings.TrimPrefix(n, prefix)
		if len(rest) < 38 || rest[36] != '-' {
			return nil, true, &request.Error{Who: in.Who(), Input: "CDI device " + n, Reason: "not a claim device name (<claim uid>-<device>)"}
		}
		pc, found := claims[rest[:36]]
		if !found {
			return nil, true, &request.Error{Who: in.Who(), Input: "CDI device " + n,
				Reason: "names a ResourceClaim that is not prepared on this node"}
		}
		if !pc.reservedFor(podUID) {
			return nil, true, &request.Error{Who: in.Who(), Input: "CDI device " + n,
				Reason: fmt.Sprintf("%s is not reserved for this pod (uid %s)", pc.Where(), podUID)}
		}
		i := slices.IndexFunc(pc.Devices, func(p PreparedDevice) bool { return p.CDIName == n })
		if i < 0 {
			return nil, true, &request.Error{Who: in.Who(), Input: "CDI device " + n,
				Reason: fmt.Sprintf("%s was not allocated this device", pc.Where())}
		}
		dev := pc.Devices[i]
		w := fmt.Sprintf("ResourceClaim %s/%s device %s", pc.Namespace, pc.Name, dev.Device)
		if stale(inv, dev) { // the host changed since prepare: say how, as prepare would
			return nil, true, &request.Error{Who: in.Who(), Input: fmt.Sprintf("%s %q", w, dev.ID),
				Reason: "changed since the claim was prepared: " + missing(inv, dev.Device)}
		}
		g.Devices = append(g.Devices, dev.ID)
		where = append(where, w)
		if len(pc.Capabilities) > 0 {
			g.Capabilities = union(g.Capabilities, pc.Capabilities)
			capsSet = true
		}
	}
	if !capsSet {
		g.Capabilities = nil // the container's own, or injection.defaultCapabilities
	}
	g.Where = strings.Join(where, ", ")
	return g, true, nil
}

// stale reports whether the prepared device dev is no longer in inv: its
// MIG UUID gone (the GPU left MIG mode or the instance was destroyed), or
// its GPU gone or now in MIG mode. A device known only by its index
// ("<gpu>:<mig>") is left to the engine, which resolves it.
func stale(inv *inventory.Inventory, dev PreparedDevice) bool {
	if inv == nil {
		return true
	}
	switch {
	case strings.HasPrefix(dev.ID, "MIG-"):
		_, ok := inv.MIGByUUID(dev.ID)
		return !ok
	case strings.HasPrefix(dev.ID, "GPU-"):
		g, ok := inv.GPUByUUID(dev.ID)
		return !ok || len(g.MIG) > 0
	}
	return false
}

func union(a, b []config.Capability) []config.Capability {
	out := slices.Clone(a)
	for _, c := range b {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
