package dra_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/dra"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

const (
	node    = "node-a"
	driver  = "gpu.gpu-nri.io"
	podA    = "11111111-1111-1111-1111-111111111111"
	podB    = "22222222-2222-2222-2222-222222222222"
	claimA  = "aaaaaaaa-0000-0000-0000-000000000001"
	claimB  = "bbbbbbbb-0000-0000-0000-000000000002"
	claimC  = "cccccccc-0000-0000-0000-000000000003"
	migGPU  = 1
	numGPUs = 4
)

// host is a simulated 4-GPU host, MIG on GPU 1 (2 MIG devices).
func host(t testing.TB, mig map[int]int) (*simhost.Host, *inventory.Inventory) {
	t.Helper()
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(t.TempDir(), "host"), GPUs: numGPUs, MIG: mig})
	require.NoError(t, err)
	inv, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater()))
	require.NoError(t, err)
	inv.CUDAVersion = h.CUDAVersion
	for i := range inv.GPUs {
		inv.GPUs[i].Brand, inv.GPUs[i].Arch = "tesla", "9.0"
		if i != 3 { // GPU 3: a driver that reported no memory size
			inv.GPUs[i].MemoryMiB = simhost.DefaultMemoryMiB
		}
		for j := range inv.GPUs[i].MIG { // as nvidia-smi names them (pkg/nvmlfacts)
			m := &inv.GPUs[i].MIG[j]
			m.UUID, m.Profile = simhost.MIGUUID(i, m.GI, m.CI), simhost.MIGProfile
			if j == 0 { // the second MIG device: a driver that reported no memory for it
				m.MemoryMiB = simhost.MIGMemoryMiB
			}
		}
	}
	inv, err = inventory.New(inv) // the lookup indexes, with the MIG UUIDs
	require.NoError(t, err)
	return h, inv
}

func attr(t *testing.T, d resourceapi.Device, name string) any {
	t.Helper()
	a, ok := d.Attributes[resourceapi.QualifiedName(name)]
	require.True(t, ok, "device %s has attribute %s", d.Name, name)
	switch {
	case a.StringValue != nil:
		return *a.StringValue
	case a.IntValue != nil:
		return *a.IntValue
	case a.VersionValue != nil:
		return "v" + *a.VersionValue
	case a.BoolValue != nil:
		return *a.BoolValue
	}
	t.Fatalf("attribute %s of %s has no value", name, d.Name)
	return nil
}

func TestResources(t *testing.T) {
	_, inv := host(t, map[int]int{migGPU: 2})
	res := dra.Resources(inv, node)
	require.Len(t, res.Pools, 1)
	pool := res.Pools[node]
	require.Len(t, pool.Slices, 1)
	devs := pool.Slices[0].Devices
	var names []string
	for _, d := range devs {
		names = append(names, d.Name)
	}
	g1 := inv.GPUs[migGPU]
	require.Len(t, g1.MIG, 2)
	want := []string{"gpu-0", dra.MIGName(1, g1.MIG[0].GI, g1.MIG[0].CI), dra.MIGName(1, g1.MIG[1].GI, g1.MIG[1].CI), "gpu-2", "gpu-3"}
	require.Equal(t, want, names, "every GPU without MIG and every MIG device, never a MIG-enabled GPU itself")

	g0 := devs[0]
	require.Equal(t, "gpu", attr(t, g0, "type"))
	require.Equal(t, inv.GPUs[0].UUID, attr(t, g0, "uuid"))
	require.Equal(t, int64(0), attr(t, g0, "index"))
	require.Equal(t, int64(inv.GPUs[0].Minor), attr(t, g0, "minor"))
	require.Equal(t, simhost.DefaultModel, attr(t, g0, "productName"))
	require.Equal(t, "tesla", attr(t, g0, "brand"))
	require.Equal(t, "Hopper", attr(t, g0, "architecture"))
	require.Equal(t, "v9.0.0", attr(t, g0, "cudaComputeCapability"))
	require.Equal(t, "v"+inv.DriverVersion, attr(t, g0, "driverVersion"))
	require.Equal(t, "v"+inv.CUDAVersion+".0", attr(t, g0, "cudaDriverVersion"))
	require.Equal(t, inv.GPUs[0].PCIBusID, attr(t, g0, "resource.kubernetes.io/pciBusID"))
	require.Len(t, g0.Capacity, 1)
	mem := g0.Capacity["memory"].Value
	require.Equal(t, "81559Mi", mem.String(), "memory as a capacity (bytes)")
	require.Equal(t, int64(81559)<<20, mem.Value())
	require.Empty(t, devs[4].Capacity, "gpu-3: no memory size reported, no capacity")

	m := devs[1]
	require.Equal(t, "mig", attr(t, m, "type"))
	require.Equal(t, g1.MIG[0].UUID, attr(t, m, "uuid"))
	require.Equal(t, g1.UUID, attr(t, m, "parentUUID"))
	require.Equal(t, int64(1), attr(t, m, "parentIndex"))
	require.Equal(t, int64(g1.MIG[0].GI), attr(t, m, "gi"))
	require.Equal(t, int64(g1.MIG[0].CI), attr(t, m, "ci"))
	require.Equal(t, "1g.10gb", attr(t, m, "migProfile"))
	require.Len(t, m.Capacity, 1)
	mem = m.Capacity["memory"].Value
	require.Equal(t, "9984Mi", mem.String(), "a MIG device's memory as a capacity (bytes), as NVIDIA's DRA driver publishes it")
	require.Equal(t, int64(simhost.MIGMemoryMiB)<<20, mem.Value())
	require.Empty(t, devs[2].Capacity, "the second MIG device: no memory size reported, no capacity")

	require.Equal(t, []resourceapi.Device{}, dra.Resources(nil, node).Pools[node].Slices[0].Devices,
		"no driver: an empty pool, so nothing stale stays published")
}

// claim is an allocated claim of devices, reserved for pods.
func claim(uid, name string, devices []string, pods []string, cfg ...string) *resourceapi.ResourceClaim {
	c := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)}}
	alloc := &resourceapi.AllocationResult{}
	for _, d := range devices {
		alloc.Devices.Results = append(alloc.Devices.Results, resourceapi.DeviceRequestAllocationResult{
			Request: "gpus", Driver: driver, Pool: node, Device: d})
	}
	for _, raw := range cfg {
		alloc.Devices.Config = append(alloc.Devices.Config, resourceapi.DeviceAllocationConfiguration{
			Source: resourceapi.AllocationConfigSourceClaim,
			DeviceConfiguration: resourceapi.DeviceConfiguration{Opaque: &resourceapi.OpaqueDeviceConfiguration{
				Driver: driver, Parameters: runtime.RawExtension{Raw: []byte(raw)}}}})
	}
	c.Status.Allocation = alloc
	for _, p := range pods {
		c.Status.ReservedFor = append(c.Status.ReservedFor, resourceapi.ResourceClaimConsumerReference{Resource: "pods", Name: "p", UID: types.UID(p)})
	}
	return c
}

type fixture struct {
	dir, cdiDir string
	inv         *inventory.Inventory
}

func (f *fixture) driver(t testing.TB) *dra.Driver {
	t.Helper()
	cfg := config.Default()
	d, err := dra.New(dra.Options{DriverName: driver, NodeName: node, PluginDir: f.dir, CDISpecDir: f.cdiDir,
		Inventory: func() *inventory.Inventory { return f.inv }, Request: request.OptionsFromConfig(&cfg.Injection)})
	require.NoError(t, err)
	return d
}

func prepare(t testing.TB, d *dra.Driver, c *resourceapi.ResourceClaim) kubeletplugin.PrepareResult {
	t.Helper()
	res, err := d.PrepareResourceClaims(context.Background(), []*resourceapi.ResourceClaim{c})
	require.NoError(t, err)
	require.Len(t, res, 1)
	return res[c.UID]
}

func cdiIDs(r kubeletplugin.PrepareResult) []string {
	var out []string
	for _, d := range r.Devices {
		out = append(out, d.CDIDeviceIDs...)
	}
	return out
}

func TestPrepareGrantUnprepare(t *testing.T) {
	h, inv := host(t, map[int]int{migGPU: 2})
	f := &fixture{dir: t.TempDir(), cdiDir: t.TempDir(), inv: inv}
	d := f.driver(t)

	a := claim(claimA, "two", []string{"gpu-0", "gpu-2"}, []string{podA})
	r := prepare(t, d, a)
	require.NoError(t, r.Err)
	wantIDs := []string{driver + "/claim=" + claimA + "-gpu-0", driver + "/claim=" + claimA + "-gpu-2"}
	require.Equal(t, wantIDs, cdiIDs(r))
	require.Equal(t, "gpu-0", r.Devices[0].DeviceName)
	require.Equal(t, node, r.Devices[0].PoolName)
	require.Equal(t, []string{"gpus"}, r.Devices[0].Requests)

	again := prepare(t, d, a)
	require.Equal(t, r, again, "prepare is idempotent")

	// The runtime resolves the names the kubelet passes: a valid CDI spec
	// whose devices only set their marker variable and mount their guard
	// (a source that does not exist; the NRI answer removes it).
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(f.cdiDir), cdiapi.WithAutoRefresh(false))
	require.NoError(t, err)
	require.Empty(t, cache.GetErrors())
	require.ElementsMatch(t, wantIDs, cache.ListDevices())
	dev := cache.GetDevice(wantIDs[1])
	require.NotNil(t, dev)
	require.Empty(t, dev.ContainerEdits.DeviceNodes)
	require.Empty(t, dev.ContainerEdits.Hooks)
	require.Len(t, dev.ContainerEdits.Env, 1)
	marker := dev.ContainerEdits.Env[0]
	markerName, _, _ := strings.Cut(marker, "=")
	require.Equal(t, []*specs.Mount{{HostPath: dra.GuardHostPath, ContainerPath: dra.GuardDir + "/" + markerName,
		Type: "bind", Options: []string{"ro", "nosuid", "nodev", "noexec", "bind"}}}, dev.ContainerEdits.Mounts)
	require.NoFileExists(t, dra.GuardHostPath, "the guard's source must not exist")
	require.Equal(t, []string{dra.GuardDir + "/" + markerName}, dra.GuardMounts([]string{"PATH=/bin", marker}))
	require.Empty(t, dra.GuardMounts([]string{"PATH=/bin", "GPU_NRI_DRA_DEVICE_X"}), "a marker without a value names no guard")

	// A second claim for a device the first holds is refused; a different one is fine.
	r = prepare(t, d, claim(claimB, "clash", []string{"gpu-2"}, []string{podB}))
	require.EqualError(t, r.Err, "ResourceClaim ns/clash (uid "+claimB+"): device gpu-2: already prepared for ResourceClaim ns/two (uid "+claimA+")")

	// gpu-nri restarts between prepare and container creation: the checkpoint has the claim.
	d = f.driver(t)
	require.Contains(t, d.Prepared(), claimA)

	cfg := config.Default()
	cfg.Host = h.Config
	eng, err := engine.New(cfg)
	require.NoError(t, err)
	decide := func(pod string, in *request.Input) engine.Answer {
		t.Helper()
		g, ok, err := d.Grant(pod, in)
		require.True(t, ok)
		if err != nil {
			var a engine.Answer
			a.Fail(err)
			return a
		}
		return eng.Decide(engine.Fixed(f.inv), engine.Query{Input: in, Grant: g})
	}
	in := &request.Input{Namespace: "ns", Pod: "p", Container: "c", CDIDevices: wantIDs,
		Env: []string{"NVIDIA_VISIBLE_DEVICES=all"}} // the image's default: the claim alone decides
	ans := decide(podA, in)
	require.NoError(t, ans.Err)
	require.Equal(t, engine.OutcomeInjected, ans.Outcome)
	require.Equal(t, []string{"/dev/nvidia0", "/dev/nvidia2"}, gpuNodes(ans.Result))
	require.Equal(t, []inventory.Capability{inventory.Compute, inventory.Utility}, ans.Result.Request.Capabilities, "injection.defaultCapabilities")
	require.Equal(t, "ResourceClaim ns/two device gpu-0, ResourceClaim ns/two device gpu-2", ans.Result.Decision.Source.Where)

	// The marker variable alone (a runtime that does not show CDI names) names the same device.
	ans = decide(podA, &request.Input{Namespace: "ns", Pod: "p", Container: "c", Env: []string{marker}})
	require.NoError(t, ans.Err)
	require.Equal(t, []string{"/dev/nvidia2"}, gpuNodes(ans.Result))

	// The container's own settings still apply.
	ans = decide(podA, &request.Input{Namespace: "ns", Pod: "p", Container: "c", CDIDevices: wantIDs[:1],
		Env: []string{"NVIDIA_DRIVER_CAPABILITIES=utility", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"}})
	require.Equal(t, engine.OutcomeRefused, ans.Outcome, "NVIDIA_REQUIRE_CUDA is checked for claim devices: %v", ans.Err)

	// Another pod naming the claim's devices gets nothing.
	ans = decide(podB, in)
	require.Equal(t, engine.OutcomeError, ans.Outcome)
	require.ErrorContains(t, ans.Err, "ResourceClaim ns/two (uid "+claimA+") is not reserved for this pod (uid "+podB+")")
	ans = decide(podA, &request.Input{Namespace: "ns", Pod: "p", Container: "c", CDIDevices: []string{driver + "/claim=" + claimC + "-gpu-3"}})
	require.ErrorContains(t, ans.Err, "names a ResourceClaim that is not prepared on this node")

	_, ok, err := d.Grant(podA, &request.Input{CDIDevices: []string{"nvidia.com/gpu=0"}, Env: []string{"NVIDIA_VISIBLE_DEVICES=0"}})
	require.NoError(t, err)
	require.False(t, ok, "a container without claim devices is decided as before")

	// Unprepare removes the record and the spec; twice is fine.
	for range 2 {
		res, err := d.UnprepareResourceClaims(context.Background(), []kubeletplugin.NamespacedObject{{
			NamespacedName: types.NamespacedName{Namespace: "ns", Name: "two"}, UID: claimA}})
		require.NoError(t, err)
		require.NoError(t, res[claimA])
		require.Empty(t, d.Prepared())
		entries, err := os.ReadDir(f.cdiDir)
		require.NoError(t, err)
		require.Empty(t, entries, "no CDI spec left")
	}
	require.Empty(t, f.driver(t).Prepared(), "the checkpoint is empty after unprepare")
	var cp map[string]any
	b, err := os.ReadFile(filepath.Join(f.dir, dra.CheckpointFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cp))
	require.Equal(t, map[string]any{}, cp["claims"])

	// The freed device can be prepared for another claim.
	require.NoError(t, prepare(t, d, claim(claimB, "next", []string{"gpu-2"}, []string{podB})).Err)
}

func TestPrepareMIGAndConfig(t *testing.T) {
	h, inv := host(t, map[int]int{migGPU: 2})
	f := &fixture{dir: t.TempDir(), cdiDir: t.TempDir(), inv: inv}
	d := f.driver(t)
	m := inv.GPUs[migGPU].MIG[1]
	name := dra.MIGName(migGPU, m.GI, m.CI)
	r := prepare(t, d, claim(claimA, "mig", []string{name}, []string{podA},
		`{"apiVersion":"gpu.gpu-nri.io/v1alpha1","kind":"GpuConfig","driverCapabilities":"utility"}`))
	require.NoError(t, r.Err)
	cfg := config.Default()
	cfg.Host = h.Config
	eng, err := engine.New(cfg)
	require.NoError(t, err)
	in := &request.Input{Namespace: "ns", Pod: "p", Container: "c", CDIDevices: cdiIDs(r),
		Env: []string{"NVIDIA_DRIVER_CAPABILITIES=all"}}
	g, ok, err := d.Grant(podA, in)
	require.NoError(t, err)
	require.True(t, ok)
	ans := eng.Decide(engine.Fixed(inv), engine.Query{Input: in, Grant: g})
	require.NoError(t, ans.Err)
	require.Equal(t, []inventory.Capability{inventory.Utility}, ans.Result.Request.Capabilities, "the claim's opaque config wins over the container's")
	require.Equal(t, []string{"/dev/nvidia1"}, gpuNodes(ans.Result), "the MIG device's parent GPU node")
	require.Equal(t, []string{m.UUID}, g.Devices)

	for _, tc := range []struct{ cfg, want string }{
		{`{"apiVersion":"gpu.gpu-nri.io/v1alpha1","kind":"GpuConfig","driverCapabilities":"compute,bogus"}`, `driverCapabilities "compute,bogus"`},
		{`{"apiVersion":"gpu.gpu-nri.io/v1alpha1","kind":"GpuConfig","sharing":"mps"}`, `unknown field "sharing"`},
		{`{"apiVersion":"example.com/v1","kind":"GpuConfig"}`, `apiVersion "example.com/v1" kind "GpuConfig", want gpu.gpu-nri.io/v1alpha1 GpuConfig`},
	} {
		r := prepare(t, d, claim(claimB, "badcfg", []string{"gpu-3"}, []string{podB}, tc.cfg))
		require.ErrorContains(t, r.Err, "ResourceClaim ns/badcfg (uid "+claimB+"): config[0] (FromClaim)")
		require.ErrorContains(t, r.Err, tc.want)
	}
}

func TestPrepareBadDevices(t *testing.T) {
	_, mig := host(t, map[int]int{migGPU: 2})
	_, plain := host(t, nil)
	f := &fixture{dir: t.TempDir(), cdiDir: t.TempDir(), inv: plain}
	d := f.driver(t)
	m := mig.GPUs[migGPU].MIG[0]
	migName := dra.MIGName(migGPU, m.GI, m.CI)
	for _, tc := range []struct {
		device, want string
	}{
		{"gpu-7", "device gpu-7: GPU 7 is no longer on this node (4 GPU(s) now)"},
		{"tpu-0", "device tpu-0: no such device of this driver on this node"},
		{migName, "device " + migName + ": GPU 1 (" + plain.GPUs[migGPU].UUID + ") has left MIG mode: its MIG devices are gone"},
	} {
		r := prepare(t, d, claim(claimA, "bad", []string{tc.device}, []string{podA}))
		require.EqualError(t, r.Err, "ResourceClaim ns/bad (uid "+claimA+"): "+tc.want)
	}
	f.inv = mig
	r := prepare(t, d, claim(claimA, "bad", []string{"gpu-1"}, []string{podA}))
	require.EqualError(t, r.Err, "ResourceClaim ns/bad (uid "+claimA+"): device gpu-1: GPU 1 ("+mig.GPUs[migGPU].UUID+") has MIG enabled now: only its MIG devices can be given")
	f.inv = nil
	r = prepare(t, d, claim(claimA, "bad", []string{"gpu-0"}, []string{podA}))
	require.EqualError(t, r.Err, "ResourceClaim ns/bad (uid "+claimA+"): device gpu-0: the node has no NVIDIA driver inventory now")
	require.Empty(t, d.Prepared(), "a failed prepare records nothing")
	entries, err := os.ReadDir(f.cdiDir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func gpuNodes(r *engine.Result) []string {
	var out []string
	for _, d := range r.Edits.DeviceNodes {
		if n := d.Path; len(n) > len("/dev/nvidia") && n[len("/dev/nvidia")] >= '0' && n[len("/dev/nvidia")] <= '9' {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestGrantAfterMIGLeft: a claim prepared for a MIG device whose GPU then
// left MIG mode (before the container was created) fails the container
// with the claim, the device and the reason, not only "no such device"; a
// claim for a whole GPU prepared meanwhile is unaffected, and one whose GPU
// entered MIG mode since is refused as prepare would.
func TestGrantAfterMIGLeft(t *testing.T) {
	_, mig := host(t, map[int]int{migGPU: 2})
	_, plain := host(t, nil)
	f := &fixture{dir: t.TempDir(), cdiDir: t.TempDir(), inv: mig}
	d := f.driver(t)
	m := mig.GPUs[migGPU].MIG[1]
	name := dra.MIGName(migGPU, m.GI, m.CI)
	r := prepare(t, d, claim(claimA, "mig", []string{name}, []string{podA}))
	require.NoError(t, r.Err)
	other := prepare(t, d, claim(claimB, "whole", []string{"gpu-0"}, []string{podB}))
	require.NoError(t, other.Err)

	f.inv = plain
	_, ok, err := d.Grant(podA, &request.Input{Namespace: "ns", Pod: "p", Container: "c", CDIDevices: cdiIDs(r)})
	require.True(t, ok)
	require.EqualError(t, err, `gpu-nri: container ns/p/c: ResourceClaim ns/mig device `+name+` "`+m.UUID+`": changed since the claim was prepared: `+
		"GPU 1 ("+plain.GPUs[migGPU].UUID+") has left MIG mode: its MIG devices are gone")
	g, ok, err := d.Grant(podB, &request.Input{Namespace: "ns", Pod: "q", Container: "c", CDIDevices: cdiIDs(other)})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []string{plain.GPUs[0].UUID}, g.Devices)

	// The other way round: prepared whole, then MIG on.
	f.inv = plain
	r = prepare(t, d, claim(claimC, "gpu1", []string{"gpu-1"}, []string{podA}))
	require.NoError(t, r.Err)
	f.inv = mig
	_, _, err = d.Grant(podA, &request.Input{Namespace: "ns", Pod: "p", Container: "c", CDIDevices: cdiIDs(r)})
	require.EqualError(t, err, `gpu-nri: container ns/p/c: ResourceClaim ns/gpu1 device gpu-1 "`+mig.GPUs[migGPU].UUID+`": changed since the claim was prepared: `+
		"GPU 1 ("+mig.GPUs[migGPU].UUID+") has MIG enabled now: only its MIG devices can be given")
}
