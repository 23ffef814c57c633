//go:build cgo

package nvmlfacts

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/gpu-nri/gpu-nri/pkg/inventory"
)

// query loads the driver's libnvidia-ml.so.1 from the driver root.
func query(inv *inventory.Inventory, root string) (Facts, error) {
	path, err := findNVML(inv, root)
	if err != nil {
		return Facts{}, err
	}
	return queryNVML(nvml.New(nvml.WithLibraryPath(path)), path)
}

// queryNVML reads the facts through lib; where names the library in errors.
func queryNVML(lib nvml.Interface, where string) (Facts, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return Facts{}, fmt.Errorf("nvmlfacts: NVML init from %s: %s", where, nvml.ErrorString(ret))
	}
	defer lib.Shutdown()
	var errs []error
	f := Facts{GPUs: map[string]GPUFacts{}}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		f.CUDAVersion = cudaVersion(v)
	} else {
		errs = append(errs, fmt.Errorf("nvmlfacts: NVML CUDA driver version: %s", nvml.ErrorString(ret)))
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		errs = append(errs, fmt.Errorf("nvmlfacts: NVML device count: %s", nvml.ErrorString(ret)))
	}
	for i := 0; i < n; i++ {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("nvmlfacts: NVML device %d: %s", i, nvml.ErrorString(ret)))
			continue
		}
		uuid, ret := dev.GetUUID()
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("nvmlfacts: NVML device %d UUID: %s", i, nvml.ErrorString(ret)))
			continue
		}
		var g GPUFacts
		if b, ret := dev.GetBrand(); ret == nvml.SUCCESS {
			g.Brand = brandName(b)
		} else {
			errs = append(errs, fmt.Errorf("nvmlfacts: NVML device %d (%s) brand: %s", i, uuid, nvml.ErrorString(ret)))
		}
		if maj, min, ret := dev.GetCudaComputeCapability(); ret == nvml.SUCCESS {
			g.Arch = fmt.Sprintf("%d.%d", maj, min)
		} else {
			errs = append(errs, fmt.Errorf("nvmlfacts: NVML device %d (%s) compute capability: %s", i, uuid, nvml.ErrorString(ret)))
		}
		// Memory is only published (DRA capacity), never required: a GPU
		// that does not report it (NOT_SUPPORTED) just has none.
		if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.MemoryMiB = int64(m.Total >> 20) //nolint:gosec // framebuffer sizes are far below 2^63 MiB
		} else if ret != nvml.ERROR_NOT_SUPPORTED {
			errs = append(errs, fmt.Errorf("nvmlfacts: NVML device %d (%s) memory: %s", i, uuid, nvml.ErrorString(ret)))
		}
		f.GPUs[uuid] = g
	}
	return f, errors.Join(errs...)
}

// brandName names NVML brands as NVIDIA's requirement checks do.
func brandName(b nvml.BrandType) string {
	switch b {
	case nvml.BRAND_QUADRO:
		return "quadro"
	case nvml.BRAND_TESLA:
		return "tesla"
	case nvml.BRAND_NVS:
		return "nvs"
	case nvml.BRAND_GRID:
		return "grid"
	case nvml.BRAND_GEFORCE:
		return "geforce"
	case nvml.BRAND_TITAN:
		return "titan"
	case nvml.BRAND_NVIDIA_VAPPS:
		return "nvidiavapps"
	case nvml.BRAND_NVIDIA_VPC:
		return "nvidiavpc"
	case nvml.BRAND_NVIDIA_VCS:
		return "nvidiavcs"
	case nvml.BRAND_NVIDIA_VWS:
		return "nvidiavws"
	case nvml.BRAND_NVIDIA_CLOUD_GAMING:
		return "nvidiacloudgaming"
	case nvml.BRAND_QUADRO_RTX:
		return "quadrortx"
	case nvml.BRAND_NVIDIA_RTX:
		return "nvidiartx"
	case nvml.BRAND_NVIDIA:
		return "nvidia"
	case nvml.BRAND_GEFORCE_RTX:
		return "geforcertx"
	case nvml.BRAND_TITAN_RTX:
		return "titanrtx"
	case nvml.BRAND_NVIDIA_DLA:
		return "nvidiadla"
	case nvml.BRAND_NVIDIA_VGAMEDEV:
		return "nvidiavgamedev"
	case nvml.BRAND_NVIDIA_NPU:
		return "nvidianpu"
	}
	return ""
}
