package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
)

func TestDRAConfig(t *testing.T) {
	c := config.Default()
	require.False(t, c.DRA.Enabled, "DRA is off by default")
	require.Equal(t, "gpu.gpu-nri.io", c.DRA.DriverName)

	c, err := config.Parse([]byte("dra: {enabled: true}"))
	require.NoError(t, err)
	require.True(t, c.DRA.Enabled)
	require.Equal(t, "/var/lib/kubelet/plugins/gpu.gpu-nri.io", c.DRA.PluginDir, "the defaults stay")

	for _, tc := range []struct{ doc, want string }{
		{"dra: {enabled: true, driverName: GPU.example.com}", `dra.driverName: must be a lower-case DNS subdomain with at least one dot (e.g. gpu.gpu-nri.io), got "GPU.example.com"`},
		{"dra: {enabled: true, driverName: gpu}", `dra.driverName: must be a lower-case DNS subdomain`},
		{"dra: {enabled: true, driverName: -a.b}", `dra.driverName: must be a lower-case DNS subdomain`},
		{"dra: {enabled: true, pluginDir: plugins}", `dra.pluginDir: must be an absolute path when dra.enabled, got "plugins"`},
		{"dra: {enabled: true, cdiSpecDir: ''}", `dra.cdiSpecDir: must be an absolute path when dra.enabled, got ""`},
		{"dra: {enabled: true, kubeletRegistryDir: x}", `dra.kubeletRegistryDir: must be an absolute path`},
		{"dra: {enabled: true, socket: /x}", `unknown field "socket"`},
	} {
		_, err := config.Parse([]byte(tc.doc))
		require.ErrorContains(t, err, tc.want, tc.doc)
	}
	_, err = config.Parse([]byte("dra: {enabled: false, pluginDir: relative}"))
	require.NoError(t, err, "paths of a disabled DRA plugin are not checked")
}
