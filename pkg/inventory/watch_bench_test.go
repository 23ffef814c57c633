package inventory_test

import (
	"os"
	"testing"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// BenchmarkProcFingerprint is what a watching Run pays every
// DefaultProcPoll (250ms): the procfs part of the fingerprint. "this host"
// reads the machine's own /proc (its driver, when it has one); it is skipped
// without /proc/driver/nvidia.
func BenchmarkProcFingerprint(b *testing.B) {
	cases := []struct {
		name string
		host func(b *testing.B) config.Host
	}{
		{"simhost 8 GPUs 28 MIG", func(b *testing.B) config.Host { return benchSimhost(b).Config }},
		{"this host", func(b *testing.B) config.Host {
			if _, err := os.Stat("/proc/driver/nvidia/version"); err != nil {
				b.Skip("no NVIDIA driver on this machine:", err)
			}
			return config.Default().Host
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := c.host(b)
			b.Run("proc", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := inventory.ProcFingerprint(h); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("full", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := inventory.ComputeFingerprint(h); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
