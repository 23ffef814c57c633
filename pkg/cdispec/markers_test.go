package cdispec_test

import (
	"path/filepath"
	"testing"

	oci "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/pkg/cdispec"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// A Markers spec names the same devices as the real one, passes the CDI
// library's validation and, applied by the library as a runtime does,
// puts only the marker variable into the container.
func TestMarkers(t *testing.T) {
	_, inv := host(t, simhost.Options{GPUs: 2})
	full, _, err := cdispec.Generate(newEngine(t, nil), inv, options())
	require.NoError(t, err)
	m, err := cdispec.Markers(full)
	require.NoError(t, err)
	require.Equal(t, cdispec.QualifiedNames(full), cdispec.QualifiedNames(m))

	dir := t.TempDir()
	path, err := cdispec.Write(m, dir, cdispec.FormatYAML)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "nvidia.com-gpu.yaml"), path)
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(dir), cdiapi.WithAutoRefresh(false))
	require.NoError(t, err)
	require.Empty(t, cache.GetErrors())
	for _, name := range []string{"nvidia.com/gpu=0", "nvidia.com/gpu=all"} {
		spec := ociSpec()
		_, err = cache.InjectDevices(spec, name)
		require.NoError(t, err, name)
		require.Equal(t, []string{cdispec.MarkerEnv + "=" + name}, spec.Process.Env, name)
		require.Empty(t, spec.Mounts, name)
		require.Nil(t, spec.Hooks, name)
		require.Empty(t, spec.Linux.Devices, name)
	}

	_, err = cdispec.Markers(nil)
	require.ErrorContains(t, err, "without devices")
}

func ociSpec() *oci.Spec {
	return &oci.Spec{Process: &oci.Process{}, Linux: &oci.Linux{}}
}
