//go:build k8s

package k8s

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and a kubelet on the node's runtime (node.rt: containerd, or CRI-O for the
// crio subtests), all started by the suite and
// stopped in its cleanup (after docs/deploy.md's testbed). The kubelet needs a
// few global paths (/var/lib/kubelet, /var/lib/cni, /var/log/containers) and
// sysctls; the ones it creates or changes are removed or restored afterwards.

const (
	etcdURL    = "http://127.0.0.1:23791"
	etcdPeer   = "http://127.0.0.1:23801"
	apiPort    = "6444"
	serviceIP  = "10.97.0.1"
	bridgeName = "gnk8s0"
	podSubnet  = "10.251.0.0/24"
	metricsURL = "http://127.0.0.1:9494"
)

// kubeletSysctls are the sysctls the kubelet sets; their values are restored.
func kubeletSysctls() []string {
	return []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
		"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}
}

// kubeletGlobalDirs are the host directories the kubelet creates whatever its root dir is.
func kubeletGlobalDirs() []string {
	return []string{"/var/log/containers", "/var/lib/kubelet", "/var/lib/cni"}
}

type cluster struct {
	n          *node
	dir        string // n.dir/k8s
	nodeName   string
	kubeconfig string
	env        []string
	procs      []*proc
}

// startCluster brings the cluster up on n and registers its teardown.
func startCluster(t *testing.T, n *node, toolBin string) *cluster {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{n: n, dir: filepath.Join(n.dir, "k8s"), nodeName: strings.ToLower(host)}
	c.kubeconfig = filepath.Join(c.dir, "admin.kubeconfig")
	c.env = append(append([]string{}, n.env...), "PATH="+toolBin+":"+pathOf(n.env), "KUBECONFIG="+c.kubeconfig)
	// A previous run's state (its processes were stopped by newNode's killStale).
	unmountUnder(c.dir)
	for _, d := range []string{"etcd", "kubelet", "podlogs", "cni-ipam"} {
		_ = os.RemoveAll(filepath.Join(c.dir, d))
	}
	for _, d := range []string{"pki", "logs", "kubelet", "podlogs", "etcd", "certs", "cni-ipam"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// What the kubelet will create or change on the host, restored by the
	// cleanup. Kept in a file: a run left running (E2E_KEEP=1) or killed is
	// restored by the next one, from the state before the first.
	orig, err := loadHostState(filepath.Join(c.dir, "host-state.json"))
	if err != nil {
		t.Fatal(err)
	}
	created, sysctls := orig.Created, orig.Sysctls
	t.Cleanup(func() { c.teardown(created, sysctls) })

	pki := filepath.Join(c.dir, "pki")
	if err := writePKI(pki, c.nodeName); err != nil {
		t.Fatal(err)
	}
	server := "https://127.0.0.1:" + apiPort
	for _, u := range []string{"admin", "kcm", "scheduler", "kubelet"} {
		if err := writeKubeconfig(filepath.Join(c.dir, u+".kubeconfig"), pki, u, server); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.writeCNI(); err != nil {
		t.Fatal(err)
	}
	p := func(f string) string { return filepath.Join(pki, f) }
	kc := func(u string) string { return filepath.Join(c.dir, u+".kubeconfig") }
	c.start(t, "etcd", "etcd", "--name", "t", "--data-dir", filepath.Join(c.dir, "etcd"), "--unsafe-no-fsync",
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", etcdPeer, "--initial-advertise-peer-urls", etcdPeer,
		"--initial-cluster", "t="+etcdPeer, "--listen-metrics-urls=")
	c.waitFor(t, "etcd", 60*time.Second, func() error { return httpOK(etcdURL + "/health") })
	c.start(t, "kube-apiserver", "kube-apiserver", "--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+apiPort, "--cert-dir="+filepath.Join(c.dir, "certs"),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"), "--client-ca-file="+p("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--service-account-key-file="+p("sa.pub"),
		"--service-account-signing-key-file="+p("sa.key"), "--service-cluster-ip-range=10.97.0.0/16",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true",
		"--kubelet-client-certificate="+p("apiserver-kubelet-client.crt"), "--kubelet-client-key="+p("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=Hostname", "--endpoint-reconciler-type=none")
	c.waitFor(t, "kube-apiserver", 180*time.Second, func() error { _, err := c.kubectl("get", "--raw", "/readyz"); return err })
	c.start(t, "kube-controller-manager", "kube-controller-manager", "--kubeconfig="+kc("kcm"),
		"--authentication-kubeconfig="+kc("kcm"), "--authorization-kubeconfig="+kc("kcm"),
		"--bind-address=127.0.0.1", "--secure-port=10267", "--cert-dir="+filepath.Join(c.dir, "certs"),
		"--leader-elect=false", "--use-service-account-credentials=true",
		"--service-account-private-key-file="+p("sa.key"), "--root-ca-file="+p("ca.crt"),
		"--cluster-signing-cert-file="+p("ca.crt"), "--cluster-signing-key-file="+p("ca.key"))
	c.start(t, "kube-scheduler", "kube-scheduler", "--kubeconfig="+kc("scheduler"),
		"--authentication-kubeconfig="+kc("scheduler"), "--authorization-kubeconfig="+kc("scheduler"),
		"--bind-address=127.0.0.1", "--secure-port=10269", "--cert-dir="+filepath.Join(c.dir, "certs"), "--leader-elect=false")
	kcfg := filepath.Join(c.dir, "kubelet-config.yaml")
	if err := os.WriteFile(kcfg, []byte(c.kubeletConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(t, "kubelet", "kubelet", "--config="+kcfg, "--kubeconfig="+kc("kubelet"),
		"--root-dir="+filepath.Join(c.dir, "kubelet"), "--hostname-override="+c.nodeName, "--v=2")
	c.waitFor(t, "node Ready", 180*time.Second, func() error {
		var nd corev1.Node
		if err := c.getJSON(&nd, "get", "node", c.nodeName); err != nil {
			return err
		}
		for _, cond := range nd.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready: %v", c.nodeName, nd.Status.Conditions)
	})
	c.waitFor(t, "default service account", 60*time.Second, func() error { _, err := c.kubectl("get", "sa", "default"); return err })
	return c
}

// hostState is what the kubelet changes outside the work dir, as it was before.
type hostState struct {
	Created []string          `json:"created"` // directories that did not exist
	Sysctls map[string]string `json:"sysctls"` // sysctl (path under /proc/sys) -> value
}

// loadHostState reads the state a previous run saved at path, or records the
// current one there.
func loadHostState(path string) (hostState, error) {
	var st hostState
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("%s: %w", path, err)
		}
		return st, nil
	}
	st.Sysctls = map[string]string{}
	for _, d := range kubeletGlobalDirs() {
		if _, err := os.Lstat(d); errors.Is(err, os.ErrNotExist) {
			st.Created = append(st.Created, d)
		}
	}
	for _, s := range kubeletSysctls() {
		if b, err := os.ReadFile("/proc/sys/" + s); err == nil {
			st.Sysctls[s] = string(b)
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return st, err
	}
	return st, os.WriteFile(path, b, 0o644)
}

func pathOf(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return v
		}
	}
	return ""
}

func (c *cluster) start(t *testing.T, name string, args ...string) {
	t.Helper()
	p, err := startProc(c.dir, filepath.Join(c.dir, "logs", name+".log"), name, c.env, args...)
	if err != nil {
		t.Fatal(err)
	}
	c.procs = append(c.procs, p)
}

// waitFor fails the test (with the tail of the component logs) when f does not succeed in time.
func (c *cluster) waitFor(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	if err := eventually(timeout, f); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, c.logTails())
	}
}

func (c *cluster) logTails() string {
	var b strings.Builder
	for _, p := range c.procs {
		data, _ := os.ReadFile(filepath.Join(c.dir, "logs", p.name+".log"))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 5 {
			lines = lines[len(lines)-5:]
		}
		fmt.Fprintf(&b, "--- %s (alive %v)\n%s\n", p.name, p.alive(), strings.Join(lines, "\n"))
	}
	return b.String()
}

func httpOK(url string) error {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// kubectl runs kubectl as the cluster admin and returns its stdout (the
// error carries stderr).
func (c *cluster) kubectl(args ...string) (string, error) {
	out, _, err := runCmd(c.env, "", append([]string{"kubectl"}, args...)...)
	return out, err
}

// tool runs another tool (helm, the gpu-nri binary) with the cluster's environment.
func (c *cluster) tool(args ...string) (string, error) {
	out, stderr, err := runCmd(c.env, "", args...)
	return out + stderr, err
}

// getJSON runs kubectl ARGS -o json and decodes the object into v.
func (c *cluster) getJSON(v any, args ...string) error {
	out, err := c.kubectl(append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// writeCNI writes a bridge + host-local network (no gateway, no iptables).
func (c *cluster) writeCNI() error {
	conf := map[string]any{"cniVersion": "1.0.0", "name": "gpu-nri-test", "plugins": []any{map[string]any{
		"type": "bridge", "bridge": bridgeName, "isGateway": false, "ipMasq": false, "hairpinMode": false,
		"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": podSubnet}}},
			"dataDir": filepath.Join(c.dir, "cni-ipam")},
	}}}
	b, err := json.Marshal(conf)
	if err != nil {
		return err
	}
	d := c.n.cniConfDir()
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d, "10-gpu-nri-test.conflist"), b, 0o644)
}

func (c *cluster) kubeletConfig() string {
	pki := filepath.Join(c.dir, "pki")
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: %[1]s/ca.crt}}
authorization: {mode: Webhook}
tlsCertFile: %[1]s/kubelet-serving.crt
tlsPrivateKeyFile: %[1]s/kubelet-serving.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://%[2]s
podLogsDir: %[3]s
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: 100Mi, nodefs.available: 2%%, imagefs.available: 2%%, nodefs.inodesFree: 2%%}
imageGCHighThresholdPercent: 100
`, pki, c.n.rt.Socket(), filepath.Join(c.dir, "podlogs"))
}

// teardown stops the components (kubelet first), removes the pods, mounts,
// kubepods cgroups, the bridge and what the kubelet created, and restores
// the sysctls.
func (c *cluster) teardown(created []string, sysctls map[string]string) {
	if os.Getenv("E2E_KEEP") == "1" {
		fmt.Fprintf(os.Stderr, "E2E_KEEP=1: cluster left running (KUBECONFIG=%s)\n", c.kubeconfig)
		return
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(false)
	}
	_ = c.n.removePods()
	unmountUnder(c.dir)
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		roots = append(roots, "/sys/fs/cgroup/kubepods")
	}
	for _, r := range roots {
		removeCgroupTree(r)
	}
	for _, d := range created {
		unmountUnder(d)
		_ = os.RemoveAll(d)
	}
	for s, v := range sysctls {
		_ = os.WriteFile("/proc/sys/"+s, []byte(v), 0o644)
	}
	_ = os.Remove(filepath.Join(c.dir, "host-state.json"))
	if _, err := net.InterfaceByName(bridgeName); err == nil {
		_, _ = c.n.run("ip", "link", "del", bridgeName)
	}
	for _, d := range []string{"etcd", "kubelet", "podlogs", "cni-ipam"} {
		_ = os.RemoveAll(filepath.Join(c.dir, d))
	}
	_ = os.Remove(filepath.Join(c.n.cniConfDir(), "10-gpu-nri-test.conflist"))
}

// removeCgroupTree removes the (empty) cgroup directories under root, deepest first.
func removeCgroupTree(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(root, e.Name()))
		}
	}
	_ = syscall.Rmdir(root)
}
