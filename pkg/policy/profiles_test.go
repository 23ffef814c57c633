package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/request"
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

// TestProfileNameSelectsRules: a config that names a profile and nothing
// else gets that profile's decisions; a listed source overrides only itself.
func TestProfileNameSelectsRules(t *testing.T) {
	envAll := &request.Request{Sources: []request.SourceRequest{env("all")}}
	envOne := &request.Request{Sources: []request.SourceRequest{env("GPU-1")}}
	vmOne := &request.Request{Sources: []request.SourceRequest{src(config.SourceVolumeMounts, "volume mounts", "GPU-1")}}
	const strictAlone = "policy:\n  profile: kubernetes-strict\n"
	const strictEnvTeam = "policy:\n  profile: kubernetes-strict\n  sources:\n    env: {trusted: false, allowNamespaces: ['team-*']}\n"
	const standaloneEnvOff = "policy:\n  profile: standalone\n  sources:\n    env: {denyNamespaces: ['*']}\n"
	for _, tc := range []struct {
		name, config, ns string
		req              *request.Request
		rule             string // granted rule, "" when refused
		err              string
	}{
		{name: "standalone alone: env all anywhere", config: "policy:\n  profile: standalone\n", ns: "default", req: envAll, rule: "policy.sources.env.allowAll"},
		{name: "strict alone: env refused outside kube-system", config: strictAlone, ns: "default", req: envOne,
			err: `env NVIDIA_VISIBLE_DEVICES refused by policy.sources.env.allowNamespaces: namespace "default" is not allowed`},
		{name: "strict alone: env all refused in kube-system", config: strictAlone, ns: "kube-system", req: envAll,
			err: "policy.sources.env.allowAll"},
		{name: "strict alone: volume mounts granted", config: strictAlone, ns: "default", req: vmOne, rule: "policy.sources.volume-mounts"},
		{name: "strict, env overridden: team namespace granted", config: strictEnvTeam, ns: "team-a", req: envOne, rule: "policy.sources.env.allowNamespaces"},
		{name: "strict, env overridden: kube-system no longer listed", config: strictEnvTeam, ns: "kube-system", req: envOne,
			err: `namespace "kube-system" is not allowed`},
		{name: "strict, env overridden: other sources keep strict rules", config: strictEnvTeam, ns: "team-a",
			req: &request.Request{Sources: []request.SourceRequest{src(config.SourceVolumeMounts, "volume mounts", "all")}}, err: "policy.sources.volume-mounts.allowAll"},
		{name: "standalone, env denied: env refused", config: standaloneEnvOff, ns: "default", req: envOne, err: "policy.sources.env.denyNamespaces"},
		{name: "standalone, env denied: volume mounts all still granted", config: standaloneEnvOff, ns: "default",
			req: &request.Request{Sources: []request.SourceRequest{src(config.SourceVolumeMounts, "volume mounts", "all")}}, rule: "policy.sources.volume-mounts.allowAll"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.config))
			require.NoError(t, err)
			p, err := Compile(c.Policy)
			require.NoError(t, err)
			d, err := p.Authorize(&request.Input{Namespace: tc.ns, Pod: "pod", Container: "main"}, tc.req)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.rule, d.Rule)
		})
	}
}
