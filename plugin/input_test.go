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
