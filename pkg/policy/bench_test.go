package policy

import (
	"testing"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

func BenchmarkAuthorize(b *testing.B) {
	p, err := Compile(config.KubernetesStrictPolicy())
	if err != nil {
		b.Fatal(err)
	}
	in := &request.Input{Namespace: "kube-system", Pod: "p", Container: "c"}
	req := &request.Request{Sources: []request.SourceRequest{
		src(config.SourceVolumeMounts, "volume-mounts /var/run/nvidia-container-devices", "GPU-1", "GPU-2"),
		env("all"),
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Authorize(in, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckRequirements(b *testing.B) {
	inv := testInventory()
	reqs := []request.Requirement{
		{Name: "NVIDIA_REQUIRE_CUDA", Expr: "cuda>=12.0 brand=tesla,driver>=470,driver<471"},
		{Name: "NVIDIA_REQUIRE_ARCH", Expr: "arch>=8.0"},
	}
	cfg := config.Requirements{Unverifiable: "refuse"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckRequirements(reqs, inv.GPUs, inv, cfg, false); err != nil {
			b.Fatal(err)
		}
	}
}
