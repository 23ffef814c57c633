package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
)

// TestExampleProfiles pins config/examples/*.yaml to the built-in profiles.
func TestExampleProfiles(t *testing.T) {
	for file, want := range map[string]config.Policy{
		"standalone.yaml":        config.StandalonePolicy(),
		"kubernetes-strict.yaml": config.KubernetesStrictPolicy(),
	} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "config", "examples", file))
			require.NoError(t, err)
			c, err := config.Parse(data)
			require.NoError(t, err)
			require.Equal(t, want, c.Policy)
			require.Equal(t, "refuse", c.Requirements.Unverifiable)
			_, err = Compile(c.Policy)
			require.NoError(t, err)
		})
	}
}
