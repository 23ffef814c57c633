//go:build k8s

package k8s

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// NVIDIA's k8s-device-plugin (built by test/k8s/tools.sh) on the simulated
// host. It hard-codes the kubelet's device-plugins directory
// (/var/lib/kubelet/device-plugins, which the kubelet too uses whatever
// its --root-dir) and reads MIG state from /proc/driver/nvidia, so it runs
// in a private mount namespace where /proc/driver is the simulated host's,
// /run/cdi is the CDI spec directory the runtime reads and, outside the
// cluster, the device-plugins directory is the test's own: it writes
// nothing outside the test's directories and the kubelet's.

// deviceplugin is one running nvidia-device-plugin.
type deviceplugin struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

// devicePluginBin builds (cached by version) and returns NVIDIA's plugin.
func devicePluginBin(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("bash", "tools.sh")
	cmd.Env = append(os.Environ(), "TOOLS=deviceplugin")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "building NVIDIA's device plugin: %s", stderr.String())
	return filepath.Join(strings.TrimSpace(lastLine(string(out))), "nvidia-device-plugin")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// startDevicePlugin runs bin against host h with its sockets in dpDir and
// its CDI specs in cdiDir (both host directories), with args added. The
// plugin dlopens the simulated libnvidia-ml, which lists the GPUs whose
// nodes under the simulated /dev it can open (SIMGPU_DEV_ROOT).
func startDevicePlugin(t *testing.T, bin string, h *simhost.Host, dpDir, cdiDir string, args ...string) *deviceplugin {
	t.Helper()
	sim := h.Options.Dir
	// The plugin takes the dev root from <container driver root>/dev when
	// that is a directory (the DaemonSet mounts the host's / there) and
	// writes device host paths under it into its CDI specs: give the
	// simulated driver root a dev link to the simulated /dev (removed in
	// the cleanup), which the runtime resolves on the host too.
	link := filepath.Join(h.Config.DriverRoot, "dev")
	if _, err := os.Lstat(link); err != nil {
		require.NoError(t, os.Symlink(h.Config.DevRoot, link))
		t.Cleanup(func() { _ = os.Remove(link) })
	}
	script := `set -e
if [ "$DP_DIR" != /var/lib/kubelet/device-plugins ]; then
  if [ -d /var/lib/kubelet ]; then mount -t tmpfs gpu-nri-test /var/lib/kubelet; else mount -t tmpfs gpu-nri-test /var/lib; fi
  mkdir -p /var/lib/kubelet/device-plugins && mount --bind "$DP_DIR" /var/lib/kubelet/device-plugins
fi
mount --bind "$SIM_PROC/driver" /proc/driver
mount -t tmpfs gpu-nri-test /run && mkdir -p /run/cdi && mount --bind "$CDI_DIR" /run/cdi
exec "$@"`
	full := append([]string{"-m", "--propagation", "private", "bash", "-c", script, "nvdp", bin,
		"--driver-root", h.Config.DriverRoot, "--driver-root-ctr-path", h.Config.DriverRoot,
		"--dev-root", sim}, args...)
	nvmlDir := ""
	for _, f := range h.Libraries {
		if f.SONAME == "libnvidia-ml.so.1" && !f.Lib32 {
			nvmlDir = filepath.Dir(f.HostPath) // nvidia/current in Debian's layout
		}
	}
	require.NotEmpty(t, nvmlDir, "the simulated host has libnvidia-ml")
	cmd := exec.Command("unshare", full...)
	cmd.Env = append(os.Environ(), "DP_DIR="+filepath.Clean(dpDir), "CDI_DIR="+cdiDir, "SIM_PROC="+h.Config.ProcRoot, "SIM_DEV="+h.Config.DevRoot, "SIM_DRIVER="+h.Config.DriverRoot,
		"SIMGPU_DEV_ROOT="+h.Config.DevRoot, "LD_LIBRARY_PATH="+nvmlDir,
		"DP_DISABLE_HEALTHCHECKS=all")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	p := &deviceplugin{cmd: cmd, out: &out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(p.stop)
	return p
}

func (p *deviceplugin) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// fakeKubelet is the kubelet's registration service, recording what
// registers (the real kubelet does this in the cluster scenarios).
type fakeKubelet struct {
	pluginapi.UnimplementedRegistrationServer
	mu   sync.Mutex
	regs []*pluginapi.RegisterRequest
}

func (k *fakeKubelet) Register(_ context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.regs = append(k.regs, r)
	return &pluginapi.Empty{}, nil
}

func (k *fakeKubelet) registered() map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := map[string]string{}
	for _, r := range k.regs {
		m[r.ResourceName] = r.Endpoint
	}
	return m
}

func serveFakeKubelet(t *testing.T, dpDir string) *fakeKubelet {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(dpDir, "kubelet.sock"))
	require.NoError(t, err)
	s := grpc.NewServer()
	k := &fakeKubelet{}
	pluginapi.RegisterRegistrationServer(s, k)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return k
}

// devicePluginClient dials a registered endpoint in dpDir.
func devicePluginClient(t *testing.T, dpDir, endpoint string) pluginapi.DevicePluginClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+filepath.Join(dpDir, endpoint), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pluginapi.NewDevicePluginClient(conn)
}

// listDevices returns the first ListAndWatch answer's device ids (sorted)
// and their health.
func listDevices(t *testing.T, c pluginapi.DevicePluginClient) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
	require.NoError(t, err)
	r, err := s.Recv()
	require.NoError(t, err)
	var ids []string
	for _, d := range r.Devices {
		require.Equal(t, pluginapi.Healthy, d.Health, "device %s", d.ID)
		ids = append(ids, d.ID)
	}
	sort.Strings(ids)
	return ids
}

// allocatedIDs reads which device ids an Allocate answer hands the
// container, the way the runtime side sees them for each list strategy
// (envvar: NVIDIA_VISIBLE_DEVICES; volume-mounts: the
// /var/run/nvidia-container-devices/<id> mounts; cdi-annotations and
// cdi-cri: the CDI names, which must resolve in the plugin's spec).
func allocatedIDs(t *testing.T, r *pluginapi.ContainerAllocateResponse, strategy, cdiDir string) []string {
	t.Helper()
	var ids []string
	switch strategy {
	case "envvar":
		ids = strings.Split(r.Envs["NVIDIA_VISIBLE_DEVICES"], ",")
		require.Empty(t, r.Mounts)
		require.Empty(t, r.CdiDevices)
	case "volume-mounts":
		require.Equal(t, "/var/run/nvidia-container-devices", r.Envs["NVIDIA_VISIBLE_DEVICES"])
		for _, m := range r.Mounts {
			id, ok := strings.CutPrefix(m.ContainerPath, "/var/run/nvidia-container-devices/")
			require.True(t, ok, "mount %s", m.ContainerPath)
			require.Equal(t, "/dev/null", m.HostPath)
			ids = append(ids, id)
		}
	case "cdi-annotations", "cdi-cri":
		var names []string
		if strategy == "cdi-cri" {
			require.Empty(t, r.Annotations)
			for _, d := range r.CdiDevices {
				names = append(names, d.Name)
			}
		} else {
			require.Empty(t, r.CdiDevices)
			require.Len(t, r.Annotations, 1, "%v", r.Annotations)
			for k, v := range r.Annotations {
				require.True(t, strings.HasPrefix(k, "cdi.k8s.io/"), k)
				names = strings.Split(v, ",")
			}
		}
		cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(cdiDir), cdiapi.WithAutoRefresh(false))
		require.NoError(t, err)
		require.Empty(t, cache.GetErrors(), "the plugin's CDI spec")
		for _, n := range names {
			dev := cache.GetDevice(n)
			require.NotNil(t, dev, "CDI device %s in the plugin's spec (%v)", n, cache.ListDevices())
			_, id, ok := strings.Cut(n, "=")
			require.True(t, ok, n)
			ids = append(ids, id)
		}
	default:
		t.Fatalf("unknown strategy %q", strategy)
	}
	sort.Strings(ids)
	return ids
}

// TestDevicePluginSimulatedHost: NVIDIA's device plugin v0.19.0, unmodified,
// starts on the simulated NVML, registers each resource with a kubelet
// registration service, advertises the simulated host's GPUs (and, with
// --mig-strategy mixed, its MIG devices) under the right ids for both
// --device-id-strategy values, and answers Allocate with exactly the
// devices asked for under every --device-list-strategy (CDI names
// resolving in the spec it writes).
func TestDevicePluginSimulatedHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("NVIDIA's device plugin runs in a private mount namespace: run as root (make test-k8s)")
	}
	bin := devicePluginBin(t)
	work := t.TempDir()
	h, err := simhost.Build(simhost.Options{Dir: filepath.Join(work, "host"), GPUs: 4, MIG: map[int]int{3: 2}, RealNodes: true})
	require.NoError(t, err)
	gpuUUIDs := []string{h.GPUs[0].UUID, h.GPUs[1].UUID, h.GPUs[2].UUID, h.GPUs[3].UUID}
	migUUIDs := []string{h.GPUs[3].MIG[0].UUID, h.GPUs[3].MIG[1].UUID}

	// The plugin always advertises UUIDs; --device-id-strategy picks what
	// the container is handed for them (index: "<gpu>" or "<gpu>:<mig>").
	index := map[string]string{}
	for _, g := range h.GPUs {
		index[g.UUID] = fmt.Sprint(g.Index)
		for _, m := range g.MIG {
			index[m.UUID] = fmt.Sprintf("%d:%d", g.Index, m.Index)
		}
	}
	type want struct{ gpus, migs []string }
	cases := []struct {
		list, id, mig string
		want          want
	}{
		{"envvar", "uuid", "none", want{gpus: gpuUUIDs}},
		{"envvar", "index", "none", want{gpus: gpuUUIDs}},
		{"volume-mounts", "uuid", "none", want{gpus: gpuUUIDs}},
		{"volume-mounts", "index", "mixed", want{gpus: gpuUUIDs[:3], migs: migUUIDs}},
		{"cdi-annotations", "uuid", "none", want{gpus: gpuUUIDs}},
		{"cdi-cri", "index", "none", want{gpus: gpuUUIDs}},
		{"envvar", "uuid", "mixed", want{gpus: gpuUUIDs[:3], migs: migUUIDs}},
		{"cdi-cri", "uuid", "mixed", want{gpus: gpuUUIDs[:3], migs: migUUIDs}},
		{"cdi-annotations", "index", "mixed", want{gpus: gpuUUIDs[:3], migs: migUUIDs}},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/mig-%s", tc.list, tc.id, tc.mig), func(t *testing.T) {
			dpDir := filepath.Join(work, fmt.Sprintf("dp%d", i))
			cdiDir := filepath.Join(work, fmt.Sprintf("cdi%d", i))
			require.NoError(t, os.MkdirAll(dpDir, 0o755))
			require.NoError(t, os.MkdirAll(cdiDir, 0o755))
			k := serveFakeKubelet(t, dpDir)
			p := startDevicePlugin(t, bin, h, dpDir, cdiDir, "--device-list-strategy", tc.list,
				"--device-id-strategy", tc.id, "--mig-strategy", tc.mig)
			wantRes := map[string][]string{"nvidia.com/gpu": tc.want.gpus}
			if tc.want.migs != nil {
				wantRes["nvidia.com/mig-"+simhost.MIGProfile] = tc.want.migs
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(k.registered()) < len(wantRes) && time.Now().Before(deadline) {
				select {
				case err := <-p.done:
					t.Fatalf("the device plugin exited: %v\n%s", err, p.out.String())
				case <-time.After(50 * time.Millisecond):
				}
			}
			regs := k.registered()
			require.Len(t, regs, len(wantRes), "registered %v\n%s", regs, p.out.String())
			for res, ids := range wantRes {
				ep, ok := regs[res]
				require.True(t, ok, "%s not registered (%v)", res, regs)
				c := devicePluginClient(t, dpDir, ep)
				got := listDevices(t, c)
				require.Equal(t, ids, got, "%s advertises", res)
				// Ask for the first and the last device. With
				// --mig-strategy none the plugin advertises a GPU in
				// MIG mode as a whole GPU, but its CDI spec (NVIDIA's
				// nvcdi) lists only that GPU's MIG devices: its CDI
				// name does not resolve (the runtime would fail the
				// container). Pinned here; ask for the last GPU
				// before it.
				last := ids[len(ids)-1]
				cdi := strings.HasPrefix(tc.list, "cdi-")
				if cdi && tc.mig == "none" && res == "nvidia.com/gpu" {
					require.Equal(t, h.GPUs[3].UUID, last)
					name := "k8s.device-plugin.nvidia.com/gpu=" + last
					if tc.id == "index" {
						name = "k8s.device-plugin.nvidia.com/gpu=3"
					}
					cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(cdiDir), cdiapi.WithAutoRefresh(false))
					require.NoError(t, err)
					require.Nil(t, cache.GetDevice(name), "the MIG-mode GPU's CDI name %s", name)
					mig := "k8s.device-plugin.nvidia.com/gpu=" + h.GPUs[3].MIG[0].UUID
					if tc.id == "index" {
						mig = "k8s.device-plugin.nvidia.com/gpu=3:0"
					}
					require.NotNil(t, cache.GetDevice(mig), "its MIG device %s is there instead", mig)
					last = ids[len(ids)-2]
				}
				ask := []string{ids[0], last}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: ask}}})
				cancel()
				require.NoError(t, err, "%s\n%s", res, p.out.String())
				require.Len(t, r.ContainerResponses, 1)
				handed := slices.Clone(ask)
				if tc.id == "index" {
					for i, u := range ask {
						handed[i] = index[u]
					}
				}
				slices.Sort(handed)
				require.Equal(t, handed, allocatedIDs(t, r.ContainerResponses[0], tc.list, cdiDir), "%s allocates", res)
			}
		})
	}
}
