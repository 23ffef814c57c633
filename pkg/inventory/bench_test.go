package inventory_test

import (
	"testing"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// An 8-GPU host, 4 of them with 7 MIG devices, 64- and 32-bit libraries.
func benchHost(b *testing.B) *fakeHost {
	return newFakeHost(b, fixture{gpus: 8, version: "550.54.14", lib32: true, mig: map[int]int{0: 7, 1: 7, 2: 7, 3: 7}})
}

// The simulated host: 8 GPUs, 4 of them with 7 MIG devices, the full
// driver library set in 64 and 32 bits.
func benchSimhost(b *testing.B) *simhost.Host {
	h, err := simhost.Build(simhost.Options{Dir: b.TempDir(), GPUs: 8, Lib32: true,
		MIG: map[int]int{0: 7, 1: 7, 2: 7, 3: 7}})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func BenchmarkDiscover(b *testing.B) {
	h := benchSimhost(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := inventory.Discover(h.Config, inventory.WithNodeStater(h.Stater())); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	h := benchSimhost(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := inventory.ComputeFingerprint(h.Config); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	h := benchHost(b)
	inv, err := inventory.Discover(h.host, inventory.WithNodeStater(h.nodes))
	if err != nil {
		b.Fatal(err)
	}
	uuid := inv.GPUs[5].UUID
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := inv.GPUByUUID(uuid); !ok {
			b.Fatal("not found")
		}
		if _, ok := inv.GPUByPCI("00000000:4A:00.0"); !ok {
			b.Fatal("not found")
		}
	}
}
