//go:build cgo

package nvmlfacts

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// mockDevice answers memory queries with memMiB MiB, or UNKNOWN when 0.
func mockDevice(uuid string, brand nvml.BrandType, major, minor int, capRet nvml.Return, memMiB uint64) *mock.Device {
	return &mock.Device{
		GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
			if memMiB == 0 {
				return nvml.Memory{}, nvml.ERROR_UNKNOWN
			}
			return nvml.Memory{Total: memMiB << 20, Free: memMiB << 20}, nvml.SUCCESS
		},
		GetUUIDFunc:  func() (string, nvml.Return) { return uuid, nvml.SUCCESS },
		GetBrandFunc: func() (nvml.BrandType, nvml.Return) { return brand, nvml.SUCCESS },
		GetCudaComputeCapabilityFunc: func() (int, int, nvml.Return) {
			return major, minor, capRet
		},
	}
}

func mockLib(cuda int, devs ...nvml.Device) (*mock.Interface, *int) {
	shutdowns := 0
	return &mock.Interface{
		InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:                   func() nvml.Return { shutdowns++; return nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return cuda, nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return len(devs), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if i < 0 || i >= len(devs) {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			return devs[i], nvml.SUCCESS
		},
	}, &shutdowns
}

func TestQueryNVML(t *testing.T) {
	lib, shutdowns := mockLib(12040,
		mockDevice(uuidH100, nvml.BRAND_NVIDIA, 9, 0, nvml.SUCCESS, 81559),
		mockDevice(uuidT4, nvml.BRAND_TESLA, 7, 5, nvml.SUCCESS, 15360))
	f, err := queryNVML(lib, "libnvidia-ml.so.1")
	require.NoError(t, err)
	require.Equal(t, 1, *shutdowns)
	require.Equal(t, Facts{CUDAVersion: "12.4", GPUs: map[string]GPUFacts{
		uuidH100: {Brand: "nvidia", Arch: "9.0", MemoryMiB: 81559},
		uuidT4:   {Brand: "tesla", Arch: "7.5", MemoryMiB: 15360},
	}}, f)

	inv := &inventory.Inventory{GPUs: []inventory.GPU{{Index: 0, UUID: uuidH100}, {Index: 1, UUID: uuidT4}}}
	require.NoError(t, Apply(inv, f))
	require.Equal(t, "12.4", inv.CUDAVersion)
	require.Equal(t, "9.0", inv.GPUs[0].Arch)
	require.Equal(t, "tesla", inv.GPUs[1].Brand)
	require.Equal(t, int64(15360), inv.GPUs[1].MemoryMiB)
}

func TestQueryNVMLPartial(t *testing.T) {
	lib, _ := mockLib(12080, mockDevice(uuidT4, nvml.BRAND_GEFORCE_RTX, 0, 0, nvml.ERROR_NOT_SUPPORTED, 0))
	f, err := queryNVML(lib, "lib")
	require.ErrorContains(t, err, "compute capability")
	require.ErrorContains(t, err, "memory: ")
	require.Equal(t, "12.8", f.CUDAVersion)
	require.Equal(t, GPUFacts{Brand: "geforcertx"}, f.GPUs[uuidT4])

	// A GPU that does not support memory info: no memory, no error.
	d := mockDevice(uuidT4, nvml.BRAND_TESLA, 7, 5, nvml.SUCCESS, 0)
	d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_NOT_SUPPORTED }
	lib, _ = mockLib(12080, d)
	f, err = queryNVML(lib, "lib")
	require.NoError(t, err)
	require.Equal(t, GPUFacts{Brand: "tesla", Arch: "7.5"}, f.GPUs[uuidT4])
}

func TestQueryNVMLInitFails(t *testing.T) {
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }}
	_, err := queryNVML(lib, "/host/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")
	require.ErrorContains(t, err, "NVML init from /host/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")
}

func TestBrandNames(t *testing.T) {
	for b := nvml.BRAND_QUADRO; b < nvml.BRAND_COUNT; b++ {
		require.NotEmpty(t, brandName(b), "brand %d", b)
	}
	require.Empty(t, brandName(nvml.BRAND_UNKNOWN))
}
