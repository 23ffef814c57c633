package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/gpu-nri/gpu-nri/config"
)

const repo = "../.."

// kubeVersion is the Kubernetes version charts are rendered for (the version TestKubernetes runs).
const kubeVersion = "v1.37.2"

// objects are the decoded objects of one rendering, by "Kind/name".
type objects map[string]any

// decodeStrict decodes a multi-document YAML stream into the typed
// Kubernetes objects, refusing unknown or duplicate fields and unknown kinds.
func decodeStrict(t *testing.T, what string, stream []byte) objects {
	t.Helper()
	out := objects{}
	for i, doc := range splitYAML(stream) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: document %d: %v", what, i, err)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 Namespace":
			obj = &corev1.Namespace{}
		case "v1 ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "apps/v1 DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "rbac.authorization.k8s.io/v1 ClusterRole": // DRA (overlays/dra, dra.enabled)
			obj = &rbacv1.ClusterRole{}
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "resource.k8s.io/v1 DeviceClass":
			obj = &resourcev1.DeviceClass{}
		case "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy":
			obj = &admissionv1.ValidatingAdmissionPolicy{}
		case "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding":
			obj = &admissionv1.ValidatingAdmissionPolicyBinding{}
		default:
			t.Fatalf("%s: document %d: unexpected %s %s", what, i, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s: %s/%s does not decode strictly: %v", what, meta.Kind, meta.Metadata.Name, err)
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if _, dup := out[key]; dup {
			t.Fatalf("%s: %s twice", what, key)
		}
		out[key] = obj
	}
	return out
}

func splitYAML(stream []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), stream...), []byte("\n---")) {
		// drop comment-only documents (helm's "# Source:" lines are fine inside a document)
		body := false
		for _, l := range strings.Split(string(d), "\n") {
			if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
				body = true
				break
			}
		}
		if body {
			docs = append(docs, d)
		}
	}
	return docs
}

func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repo, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if p, err := filepath.Abs(filepath.Join(repo, ".cache/tools/bin/helm")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Skip("helm not found: build it with `TOOLS=helm bash test/k8s/tools.sh` (or set HELM)")
	return ""
}

func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Dir = repo
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

func daemonSet(t *testing.T, objs objects) *appsv1.DaemonSet {
	t.Helper()
	for k, o := range objs {
		if strings.HasPrefix(k, "DaemonSet/") {
			return o.(*appsv1.DaemonSet)
		}
	}
	t.Fatal("no DaemonSet")
	return nil
}

func configOf(t *testing.T, objs objects) (*config.Config, string) {
	t.Helper()
	for k, o := range objs {
		if strings.HasPrefix(k, "ConfigMap/") {
			text := o.(*corev1.ConfigMap).Data["config.yaml"]
			c, err := config.Parse([]byte(text))
			if err != nil {
				t.Fatalf("%s config.yaml: %v\n%s", k, err, text)
			}
			return c, text
		}
	}
	t.Fatal("no ConfigMap")
	return nil, ""
}

var renderings = []struct {
	name, kustomize string
	helmArgs        []string
	profile         string
}{
	{"standalone", "deploy/kubernetes/overlays/standalone", nil, "standalone"},
	{"kubernetes-strict", "deploy/kubernetes/overlays/kubernetes-strict", []string{"--set", "policyProfile=kubernetes-strict"}, "kubernetes-strict"},
	{"library-dir", "deploy/kubernetes/overlays/library-dir", []string{"--set", "libraryDir=/run/gpu-nri/lib"}, "standalone"},
}

// TestKustomizeStrict: base and overlays build and decode strictly, and the
// DaemonSet is consistent with its configuration.
func TestKustomizeStrict(t *testing.T) {
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			objs := decodeStrict(t, r.kustomize, kustomize(t, r.kustomize))
			for _, want := range []string{"Namespace/gpu-nri", "ServiceAccount/gpu-nri", "ConfigMap/gpu-nri-config", "DaemonSet/gpu-nri"} {
				if objs[want] == nil {
					t.Errorf("missing %s", want)
				}
			}
			checkDaemonSet(t, objs, r.profile)
		})
	}
	decodeStrict(t, "base", kustomize(t, "deploy/kubernetes/base"))
}

// checkDaemonSet asserts what docs/deploy.md promises about the pod.
// checkLibraryDirContainer: with injection.libraryDir the daemon's container
// is privileged (Kubernetes allows a Bidirectional mount only there), keeps a
// read-only root file system, and mounts the host's directory, and only it,
// Bidirectional where the daemon sees it (host.root + libraryDir).
func checkLibraryDirContainer(t *testing.T, c corev1.Container, vols map[string]corev1.Volume, cfg *config.Config) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || !*sc.Privileged || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container %s with injection.libraryDir: want privileged with a read-only root file system: %+v", c.Name, sc)
	}
	found := false
	for _, m := range c.VolumeMounts {
		bidi := m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional
		if m.MountPath != filepath.Join(cfg.Host.Root, cfg.Injection.LibraryDir) {
			if bidi {
				t.Errorf("%s is mounted Bidirectional: only the library directory may be", m.MountPath)
			}
			continue
		}
		found = true
		hp := vols[m.Name].HostPath
		if !bidi || m.ReadOnly || hp == nil || hp.Path != cfg.Injection.LibraryDir {
			t.Errorf("library directory mount %+v (volume %+v): want the host's %s, read-write, Bidirectional", m, vols[m.Name], cfg.Injection.LibraryDir)
		}
	}
	if !found {
		t.Errorf("injection.libraryDir %s is not mounted at %s", cfg.Injection.LibraryDir, filepath.Join(cfg.Host.Root, cfg.Injection.LibraryDir))
	}
}

func checkDaemonSet(t *testing.T, objs objects, profile string) {
	t.Helper()
	ds := daemonSet(t, objs)
	cfg, _ := configOf(t, objs)
	if cfg.Policy.Profile != profile {
		t.Errorf("policy profile %q, want %q", cfg.Policy.Profile, profile)
	}
	switch profile {
	case "kubernetes-strict":
		if !reflect.DeepEqual(cfg.Policy, config.KubernetesStrictPolicy()) {
			t.Errorf("strict policy differs from config.KubernetesStrictPolicy(): %+v", cfg.Policy)
		}
	case "standalone":
		if !reflect.DeepEqual(cfg.Policy, config.StandalonePolicy()) {
			t.Errorf("standalone policy differs from config.StandalonePolicy(): %+v", cfg.Policy)
		}
	}
	spec := ds.Spec.Template.Spec
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s not in the template labels", k, v)
		}
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", spec.PriorityClassName)
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType ||
		ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 1 {
		t.Errorf("update strategy %+v", ds.Spec.UpdateStrategy)
	}
	if ds.Spec.Template.Annotations["tolerate-missing-plugins.gpu-nri.io"] != "true" {
		t.Error("the pod does not tolerate a runtime that requires gpu-nri (deploy/runtime/*required*)")
	}
	gpuLabels := map[string]bool{}
	for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			gpuLabels[e.Key] = true
		}
	}
	for _, l := range []string{"nvidia.com/gpu.present", "feature.node.kubernetes.io/pci-10de.present"} {
		if !gpuLabels[l] {
			t.Errorf("node affinity does not select %s", l)
		}
	}
	tolerated := false
	for _, tol := range spec.Tolerations {
		tolerated = tolerated || tol.Key == "nvidia.com/gpu"
	}
	if !tolerated {
		t.Error("nvidia.com/gpu taint not tolerated")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("service account token mounted")
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 1 {
		t.Fatalf("containers %d, init containers %d", len(spec.Containers), len(spec.InitContainers))
	}
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		sc := c.SecurityContext
		if c.Name == "gpu-nri" && cfg.Injection.LibraryDir != "" {
			// injection.libraryDir: privileged, for the Bidirectional mount of the directory, and
			// nothing else loosened.
			checkLibraryDirContainer(t, c, vols, cfg)
		} else if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
			t.Errorf("container %s: security context not tight: %+v", c.Name, sc)
		}
		if sc != nil && sc.Privileged != nil && *sc.Privileged && (c.Name != "gpu-nri" || cfg.Injection.LibraryDir == "") {
			t.Errorf("container %s is privileged", c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s: resources %+v", c.Name, c.Resources)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("container %s mounts undeclared volume %s", c.Name, m.Name)
			}
		}
	}
	c := spec.Containers[0]
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	// NRI: the directory, not the socket file, at the directory of plugin.socket
	nri, ok := mounts[filepath.Dir(cfg.Plugin.Socket)]
	if !ok {
		t.Fatalf("plugin.socket %s: its directory is not mounted", cfg.Plugin.Socket)
	}
	if hp := vols[nri.Name].HostPath; hp == nil || hp.Path != "/var/run/nri" || *hp.Type != corev1.HostPathDirectoryOrCreate {
		t.Errorf("NRI volume %+v: want the host directory /var/run/nri", vols[nri.Name])
	}
	hr, ok := mounts[cfg.Host.Root]
	if !ok || !hr.ReadOnly || vols[hr.Name].HostPath == nil || vols[hr.Name].HostPath.Path != "/" {
		t.Errorf("host.root %s is not the host's / read-only: %+v", cfg.Host.Root, hr)
	}
	// the hook binary: the init container installs <hostPath of hook-bin>/gpu-nri-hook = injection.hookPath
	ic := spec.InitContainers[0]
	args := strings.Join(ic.Args, " ")
	var binDir string
	for i, a := range ic.Args {
		if a == "--bin-dir" && i+1 < len(ic.Args) {
			binDir = ic.Args[i+1]
		}
	}
	if !strings.Contains(args, "install --mode hook --root /host") || filepath.Join(binDir, "gpu-nri-hook") != cfg.Injection.HookPath {
		t.Errorf("init container args %q do not install injection.hookPath %s", args, cfg.Injection.HookPath)
	}
	var hookVol corev1.Volume
	for _, m := range ic.VolumeMounts {
		if m.MountPath == filepath.Join("/host", binDir) {
			hookVol = vols[m.Name]
		}
	}
	if hookVol.HostPath == nil || hookVol.HostPath.Path != binDir {
		t.Errorf("init container: host %s not mounted at /host%s", binDir, binDir)
	}
	// probes and metrics on the configured address
	port := c.Ports[0]
	if !strings.HasSuffix(cfg.Metrics.Address, fmt.Sprintf(":%d", port.ContainerPort)) {
		t.Errorf("metrics.address %q, container port %d", cfg.Metrics.Address, port.ContainerPort)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != port.Name {
			t.Errorf("probe %s: %+v", name, p)
		}
	}
	if strings.Join(c.Args, " ") != "run --config /etc/gpu-nri/config.yaml" || mounts["/etc/gpu-nri"].Name != "config" {
		t.Errorf("plugin args %q / config mount", c.Args)
	}
}

// normalize drops what only Helm adds (its bookkeeping labels and the
// config checksum) and the Namespace (helm install --create-namespace), and
// turns every object into a generic map for comparison.
func normalize(t *testing.T, objs objects) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, o := range objs {
		if strings.HasPrefix(k, "Namespace/") {
			continue
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		md := m["metadata"].(map[string]any)
		if l, ok := md["labels"].(map[string]any); ok {
			for _, x := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"} {
				delete(l, x)
			}
		}
		if strings.HasPrefix(k, "DaemonSet/") {
			tmd := m["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)
			delete(tmd["annotations"].(map[string]any), "checksum/config")
		}
		if strings.HasPrefix(k, "ConfigMap/") {
			// compare the configuration by meaning, not by formatting
			data := m["data"].(map[string]any)
			var cfg any
			if err := yaml.Unmarshal([]byte(data["config.yaml"].(string)), &cfg); err != nil {
				t.Fatal(err)
			}
			data["config.yaml"] = cfg
		}
		out[k] = m
	}
	return out
}

func TestHelmLint(t *testing.T) {
	out := helm(t, "lint", "--strict", "--kube-version", kubeVersion, "deploy/helm/gpu-nri")
	if !bytes.Contains(out, []byte("0 chart(s) failed")) {
		t.Errorf("helm lint:\n%s", out)
	}
	out = helm(t, "lint", "--strict", "--kube-version", kubeVersion, "deploy/helm/gpu-nri", "--set", "policyProfile=kubernetes-strict")
	if !bytes.Contains(out, []byte("0 chart(s) failed")) {
		t.Errorf("helm lint (strict profile):\n%s", out)
	}
}

// TestHelmEqualsKustomize: for default values (and for the strict profile)
// the chart renders the kustomize overlay's objects.
func TestHelmEqualsKustomize(t *testing.T) {
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			args := append([]string{"template", "gpu-nri", "deploy/helm/gpu-nri", "--namespace", "gpu-nri", "--kube-version", kubeVersion}, r.helmArgs...)
			h := decodeStrict(t, "helm template", helm(t, args...))
			checkDaemonSet(t, h, r.profile)
			k := decodeStrict(t, r.kustomize, kustomize(t, r.kustomize))
			hn, kn := normalize(t, h), normalize(t, k)
			if len(hn) != 3 {
				t.Errorf("helm renders %d objects, want ServiceAccount, ConfigMap, DaemonSet", len(hn))
			}
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
		})
	}
}

func TestHelmPolicyFilesMatchExamples(t *testing.T) {
	for _, p := range []string{"standalone", "kubernetes-strict"} {
		chart, err := os.ReadFile(filepath.Join(repo, "deploy/helm/gpu-nri/files/policy-"+p+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		example, err := os.ReadFile(filepath.Join(repo, "config/examples/"+p+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := config.Parse(chart)
		if err != nil {
			t.Fatal(err)
		}
		b, err := config.Parse(example)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Policy, b.Policy) || !reflect.DeepEqual(a.Requirements, b.Requirements) {
			t.Errorf("chart files/policy-%s.yaml differs from config/examples/%s.yaml", p, p)
		}
	}
}

func readTOML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, path))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	d := toml.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// TestRuntimeSnippets: the drop-ins parse as TOML and say what docs/deploy.md says.
func TestRuntimeSnippets(t *testing.T) {
	nri := []string{"plugins", "io.containerd.nri.v1.nri"}
	ann := "tolerate-missing-plugins.gpu-nri.io"
	ds := daemonSet(t, decodeStrict(t, "base", kustomize(t, "deploy/kubernetes/base")))
	if ds.Spec.Template.Annotations[ann] != "true" {
		t.Errorf("the DaemonSet pod does not carry %s", ann)
	}
	for _, v := range []struct {
		dir     string
		version int64
	}{{"v3", 3}, {"v2", 2}} {
		t.Run("containerd-"+v.dir, func(t *testing.T) {
			en := readTOML(t, "deploy/runtime/containerd/"+v.dir+"/10-gpu-nri.toml")
			if en["version"] != v.version {
				t.Errorf("version = %v", en["version"])
			}
			if d := dig(en, append(nri, "disable")...); d != false {
				t.Errorf("NRI disable = %v, want false", d)
			}
			req := readTOML(t, "deploy/runtime/containerd/"+v.dir+"/20-gpu-nri-required.toml")
			val := append(nri, "default_validator")
			if dig(req, append(val, "enable")...) != true {
				t.Error("default validator not enabled")
			}
			if rp, _ := dig(req, append(val, "required_plugins")...).([]any); len(rp) != 1 || rp[0] != "gpu-nri" {
				t.Errorf("required_plugins = %v", rp)
			}
			if dig(req, append(val, "tolerate_missing_plugins_annotation")...) != ann {
				t.Error("tolerate annotation differs from the DaemonSet's")
			}
		})
	}
	t.Run("crio", func(t *testing.T) {
		en := readTOML(t, "deploy/runtime/crio/10-gpu-nri.conf")
		if dig(en, "crio", "nri", "enable_nri") != true {
			t.Error("enable_nri not true")
		}
		req := readTOML(t, "deploy/runtime/crio/20-gpu-nri-required.conf")
		v := []string{"crio", "nri", "default_validator"}
		if dig(req, append(v, "nri_enable_default_validator")...) != true {
			t.Error("validator not enabled")
		}
		if rp, _ := dig(req, append(v, "nri_validator_required_plugins")...).([]any); len(rp) != 1 || rp[0] != "gpu-nri" {
			t.Errorf("required plugins = %v", rp)
		}
		if dig(req, append(v, "nri_validator_tolerate_missing_plugins_annotation")...) != ann {
			t.Error("tolerate annotation differs from the DaemonSet's")
		}
	})
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repo, "deploy/image/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, want := range []string{"ARG TARGETARCH", "GOARCH=$TARGETARCH", "CGO_ENABLED=0", "FROM gcr.io/distroless/static",
		"org.opencontainers.image.source=", "org.opencontainers.image.version=", "org.opencontainers.image.revision=",
		"COPY --from=build /out/gpu-nri /usr/local/bin/gpu-nri", "-o /out/gpu-nri-hook ./plugin/cmd/gpu-nri-hook",
		"COPY --from=build /out/gpu-nri-hook /usr/local/bin/gpu-nri-hook", `ENTRYPOINT ["/usr/local/bin/gpu-nri"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
