package request

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// cudaEnv is the environment of a typical CUDA container: the image's ENV
// (nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04) plus what Kubernetes adds.
var cudaEnv = []string{
	"PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOSTNAME=trainer-0",
	"NVARCH=x86_64",
	"NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471 brand=nvidia,driver>=470,driver<471",
	"NV_CUDA_CUDART_VERSION=12.4.127-1",
	"NV_CUDA_COMPAT_PACKAGE=cuda-compat-12-4",
	"CUDA_VERSION=12.4.1",
	"LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
	"NVIDIA_VISIBLE_DEVICES=all",
	"NVIDIA_DRIVER_CAPABILITIES=compute,utility",
	"NV_CUDA_LIB_VERSION=12.4.1-1",
	"NV_NVTX_VERSION=12.4.127-1",
	"NV_LIBNPP_VERSION=12.2.5.30-1",
	"NV_LIBNPP_PACKAGE=libnpp-12-4=12.2.5.30-1",
	"NV_LIBCUSPARSE_VERSION=12.3.1.170-1",
	"NV_LIBCUBLAS_PACKAGE_NAME=libcublas-12-4",
	"NV_LIBCUBLAS_VERSION=12.4.5.8-1",
	"NV_LIBCUBLAS_PACKAGE=libcublas-12-4=12.4.5.8-1",
	"NV_LIBNCCL_PACKAGE_NAME=libnccl2",
	"NV_LIBNCCL_PACKAGE_VERSION=2.21.5-1",
	"NCCL_VERSION=2.21.5-1",
	"NV_LIBNCCL_PACKAGE=libnccl2=2.21.5-1+cuda12.4",
	"NVIDIA_PRODUCT_NAME=CUDA",
	"NV_CUDNN_VERSION=9.1.0.70-1",
	"NV_CUDNN_PACKAGE_NAME=libcudnn9-cuda-12",
	"NV_CUDNN_PACKAGE=libcudnn9-cuda-12=9.1.0.70-1",
	"KUBERNETES_SERVICE_HOST=10.96.0.1",
	"KUBERNETES_SERVICE_PORT=443",
	"KUBERNETES_PORT=tcp://10.96.0.1:443",
	"NVIDIA_VISIBLE_DEVICES=" + uuid0 + "," + uuid1,
}

func BenchmarkParse(b *testing.B) {
	opts := testOpts()
	for _, bc := range []struct {
		name string
		in   *Input
	}{
		{"cuda-env-30-vars", &Input{Namespace: "ml", Pod: "trainer-0", Container: "main", Env: cudaEnv,
			PodAnnotations: map[string]string{"kubernetes.io/config.seen": "2026-01-01T00:00:00Z", "kubernetes.io/config.source": "api"}}},
		{"not-a-gpu-container", &Input{Namespace: "web", Pod: "nginx", Container: "nginx", Env: cudaEnv[:3]}},
		{"cdi-devices", &Input{Namespace: "ml", Pod: "trainer-0", Container: "main", Env: cudaEnv[:8],
			CDIDevices: []string{"k8s.device-plugin.nvidia.com/gpu=" + uuid0}}},
	} {
		r, err := Parse(bc.in, opts)
		require.NoError(b, err)
		_ = r
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bc.in, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
