package plugin_test

import (
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/plugin"
)

func TestInputFromNRIContainerName(t *testing.T) {
	const md = "io.kubernetes.cri-o.Metadata"
	for _, tc := range []struct {
		name string
		ctr  *api.Container
		want string
	}{
		{"NRI name (kubelet label on CRI-O, containerd)", &api.Container{Name: "trainer", Annotations: map[string]string{md: `{"name":"other"}`}}, "trainer"},
		{"CRI-O without the kubelet's label: CRI metadata name", &api.Container{Annotations: map[string]string{md: `{"name":"trainer","attempt":1}`}}, "trainer"},
		{"no name anywhere", &api.Container{}, ""},
		{"metadata annotation not JSON", &api.Container{Annotations: map[string]string{md: "trainer"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := plugin.InputFromNRI(&api.PodSandbox{Name: "p", Namespace: "ns"}, tc.ctr)
			require.Equal(t, tc.want, in.Container)
			require.Equal(t, "p", in.Pod)
			require.Equal(t, "ns", in.Namespace)
		})
	}
}

// Through the daemon: a CRI-O container created by a plain CRI client (no
// kubelet label, so NRI's name is empty) still gets the GPU its pod
// annotation names for it.
func TestScenarioCRIOContainerNameFromMetadata(t *testing.T) {
	s := newScenario(t, nil)
	pod := &api.PodSandbox{Id: "pod-crio", Name: "pod-crio", Uid: "uid-crio", Namespace: "default",
		Annotations: map[string]string{"gpus.gpu-nri.io/container.trainer": "2"}}
	ctr := &api.Container{Id: "ctr-crio", PodSandboxId: pod.Id,
		Annotations: map[string]string{"io.kubernetes.cri-o.Metadata": `{"name":"trainer"}`}}
	adj, err := s.CreateContainer(pod, ctr)
	require.NoError(t, err)
	var paths []string
	for _, d := range adj.GetLinux().GetDevices() {
		paths = append(paths, d.GetPath())
	}
	require.Contains(t, paths, "/dev/nvidia2")
}

// CRI-O 1.34 resolves CRI CDIDevices with gpu-nri's names-only spec
// (injection.cdiOwnSpecDir) but its NRI v0.9.1 does not report them: the
// marker env the spec set is then the only trace of the request, and the
// container is refused instead of starting without its GPU.
func TestCreateContainerUnseenCDIMarker(t *testing.T) {
	s := newScenario(t, nil)
	pod := &api.PodSandbox{Id: "pod-m", Name: "pod-m", Uid: "uid-m", Namespace: "default"}
	marker := []string{"PATH=/bin", "GPU_NRI_CDI_DEVICE=nvidia.com/gpu=1"}
	for _, tc := range []struct {
		name   string
		ctr    *api.Container
		unseen bool
	}{
		{"marker only (CRI-O 1.34 CDIDevices)", &api.Container{Name: "c", Env: marker}, true},
		{"marker and NRI's CDIDevices (containerd 2.2+)", &api.Container{Name: "c", Env: marker, CDIDevices: []*api.CDIDevice{{Name: "nvidia.com/gpu=1"}}}, false},
		{"marker and a cdi.k8s.io/ annotation", &api.Container{Name: "c", Env: marker, Annotations: map[string]string{"cdi.k8s.io/gpu": "nvidia.com/gpu=0,nvidia.com/gpu=1"}}, false},
		{"no marker", &api.Container{Name: "c", Env: []string{"PATH=/bin"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ctr.Id, tc.ctr.PodSandboxId = "ctr-m", pod.Id
			_, err := s.CreateContainer(pod, tc.ctr)
			if !tc.unseen {
				if err != nil {
					require.NotContains(t, err.Error(), plugin.ErrCDINameUnseen.Error())
				}
				return
			}
			// The error crosses the NRI connection as text.
			require.ErrorContains(t, err, plugin.ErrCDINameUnseen.Error())
			require.ErrorContains(t, err, "gpu-nri: container default/pod-m/c: CDI device nvidia.com/gpu=1: the runtime resolved the CDI name")
		})
	}
}
