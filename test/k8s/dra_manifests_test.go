package k8s

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourcev1 "k8s.io/api/resource/v1"
)

// draObjects are the objects DRA adds to the standalone rendering.
var draObjects = []string{"ClusterRole/gpu-nri-dra", "ClusterRoleBinding/gpu-nri-dra",
	"ValidatingAdmissionPolicy/gpu-nri-dra-own-node-slices", "ValidatingAdmissionPolicyBinding/gpu-nri-dra-own-node-slices",
	"DeviceClass/gpu.gpu-nri.io", "DeviceClass/mig.gpu.gpu-nri.io", "DeviceClass/any.gpu.gpu-nri.io"}

// checkDRA asserts what docs/deploy.md promises about the DRA rendering:
// the standalone pod plus the kubelet plugin's mounts at the configured
// paths, the token in the gpu-nri container only, and the smallest RBAC.
func checkDRA(t *testing.T, objs objects) {
	t.Helper()
	checkDaemonSet(t, objs, "standalone") // no pod-wide token, tight security contexts, ...
	cfg, _ := configOf(t, objs)
	if !cfg.DRA.Enabled || cfg.DRA.DriverName != "gpu.gpu-nri.io" {
		t.Fatalf("dra config %+v", cfg.DRA)
	}
	ds := daemonSet(t, objs)
	spec := ds.Spec.Template.Spec
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	c := spec.Containers[0]
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	// The kubelet dials the socket path the plugin registers: the plugin dir is at its host path.
	for _, p := range []struct{ path, host string }{
		{cfg.DRA.KubeletRegistryDir, "/var/lib/kubelet/plugins_registry"},
		{cfg.DRA.PluginDir, "/var/lib/kubelet/plugins/gpu.gpu-nri.io"},
		{cfg.DRA.CDISpecDir, "/var/run/cdi"},
	} {
		m, ok := mounts[p.path]
		if !ok || m.ReadOnly {
			t.Errorf("%s is not mounted writable in the gpu-nri container", p.path)
			continue
		}
		if hp := vols[m.Name].HostPath; hp == nil || hp.Path != p.host {
			t.Errorf("%s: volume %+v, want host path %s", p.path, vols[m.Name], p.host)
		}
	}
	if cfg.DRA.PluginDir != "/var/lib/kubelet/plugins/gpu.gpu-nri.io" {
		t.Errorf("dra.pluginDir %s is not its host path", cfg.DRA.PluginDir)
	}
	tok, ok := mounts["/var/run/secrets/kubernetes.io/serviceaccount"]
	if !ok || !tok.ReadOnly || vols[tok.Name].Projected == nil {
		t.Errorf("the gpu-nri container has no read-only projected token: %+v", tok)
	}
	for _, m := range spec.InitContainers[0].VolumeMounts {
		if m.Name == tok.Name {
			t.Error("the init container mounts the token")
		}
	}
	node := false
	for _, e := range c.Env {
		node = node || (e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName")
	}
	if !node {
		t.Error("NODE_NAME is not spec.nodeName")
	}
	for _, k := range draObjects {
		if objs[k] == nil {
			t.Errorf("missing %s", k)
		}
	}
	role, _ := objs["ClusterRole/gpu-nri-dra"].(*rbacv1.ClusterRole)
	if role == nil {
		t.Fatal("no ClusterRole")
	}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"resource.k8s.io"}, Resources: []string{"resourceslices"}, Verbs: []string{"list", "watch", "create", "update", "delete"}},
		{APIGroups: []string{"resource.k8s.io"}, Resources: []string{"resourceclaims"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
	}
	if !reflect.DeepEqual(role.Rules, want) {
		b, _ := json.Marshal(role.Rules)
		t.Errorf("ClusterRole rules %s: not the documented smallest set", b)
	}
	crb, _ := objs["ClusterRoleBinding/gpu-nri-dra"].(*rbacv1.ClusterRoleBinding)
	if crb == nil || len(crb.Subjects) != 1 || crb.Subjects[0].Name != spec.ServiceAccountName || crb.Subjects[0].Namespace != "gpu-nri" {
		t.Errorf("ClusterRoleBinding %+v does not bind the pod's service account", crb)
	}
	dc, _ := objs["DeviceClass/gpu.gpu-nri.io"].(*resourcev1.DeviceClass)
	if dc == nil || len(dc.Spec.Selectors) != 1 || dc.Spec.Selectors[0].CEL == nil ||
		dc.Spec.Selectors[0].CEL.Expression != "device.driver == 'gpu.gpu-nri.io' && device.attributes['gpu.gpu-nri.io'].type == 'gpu'" {
		t.Errorf("DeviceClass gpu.gpu-nri.io %+v", dc)
	}
}

// TestDRAManifests: the dra overlay and `helm template --set
// dra.enabled=true` render the same DRA objects; without DRA nothing of it
// is rendered (TestHelmEqualsKustomize: exactly 3 objects).
func TestDRAManifests(t *testing.T) {
	k := decodeStrict(t, "overlays/dra", kustomize(t, "deploy/kubernetes/overlays/dra"))
	checkDRA(t, k)
	h := decodeStrict(t, "helm template --set dra.enabled=true", helm(t, "template", "gpu-nri", "deploy/helm/gpu-nri",
		"--namespace", "gpu-nri", "--kube-version", kubeVersion, "--set", "dra.enabled=true"))
	checkDRA(t, h)
	hn, kn := normalize(t, h), normalize(t, k)
	for key := range kn {
		if _, ok := hn[key]; !ok {
			t.Errorf("helm does not render %s", key)
		}
	}
	for key := range hn {
		if _, ok := kn[key]; !ok {
			t.Errorf("helm renders %s, kustomize does not", key)
			continue
		}
		if !reflect.DeepEqual(hn[key], kn[key]) {
			hb, _ := json.MarshalIndent(hn[key], "", " ")
			kb, _ := json.MarshalIndent(kn[key], "", " ")
			t.Errorf("%s differs:\n--- helm\n%s\n--- kustomize\n%s", key, hb, kb)
		}
	}
}
