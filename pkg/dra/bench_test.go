package dra_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// BenchmarkGrant is what the NRI CreateContainer path adds with DRA on: a
// container without claim devices (the common case) and one with two.
func BenchmarkGrant(b *testing.B) {
	_, inv := host(b, nil)
	f := &fixture{dir: b.TempDir(), cdiDir: b.TempDir(), inv: inv}
	d := f.driver(b)
	r := prepare(b, d, claim(claimA, "two", []string{"gpu-0", "gpu-2"}, []string{podA}))
	require.NoError(b, r.Err)
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NVIDIA_VISIBLE_DEVICES=all",
		"NVIDIA_DRIVER_CAPABILITIES=compute,utility", "CUDA_VERSION=12.4.1", "HOME=/root", "LANG=C.UTF-8"}
	plain := &request.Input{Namespace: "ns", Pod: "p", Container: "c", Env: env}
	claimed := &request.Input{Namespace: "ns", Pod: "p", Container: "c", Env: env, CDIDevices: cdiIDs(r)}
	b.Run("no-claim", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, _ := d.Grant(podA, plain); ok {
				b.Fatal("granted")
			}
		}
	})
	b.Run("two-devices", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := d.Grant(podA, claimed); !ok || err != nil {
				b.Fatal(err)
			}
		}
	})
}
