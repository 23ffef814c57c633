package policy

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

func env(devs ...string) request.SourceRequest {
	return src(config.SourceEnv, "env NVIDIA_VISIBLE_DEVICES", devs...)
}

func src(source, where string, devs ...string) request.SourceRequest {
	sr := request.SourceRequest{Source: source, Where: where}
	for _, d := range devs {
		switch d {
		case "all":
			sr.All = true
		case "none":
			sr.None = true
		default:
			sr.Devices = append(sr.Devices, request.Device{Kind: request.KindUUID, Raw: d, ID: d})
		}
	}
	return sr
}

func TestCompile(t *testing.T) {
	_, err := Compile(config.Policy{Sources: map[string]config.SourceRule{config.SourceEnv: {AllowNamespaces: []string{"team-["}}}})
	require.ErrorContains(t, err, "policy.sources.env.allowNamespaces[0]")
	_, err = Compile(config.Policy{Sources: map[string]config.SourceRule{config.SourceEnv: {DenyNamespaces: []string{"ok", `x\`}}}})
	require.ErrorContains(t, err, "policy.sources.env.denyNamespaces[1]")
	_, err = Compile(config.Policy{Sources: map[string]config.SourceRule{"bogus": {}}})
	require.ErrorContains(t, err, `unknown source "bogus"`)
	for _, p := range []config.Policy{config.StandalonePolicy(), config.KubernetesStrictPolicy()} {
		_, err = Compile(p)
		require.NoError(t, err)
	}
}

func TestAuthorize(t *testing.T) {
	strict := config.KubernetesStrictPolicy()
	globs := config.Policy{Profile: "custom", Sources: map[string]config.SourceRule{
		config.SourceEnv: {AllowNamespaces: []string{"team-*", "ml-?", "exact"}, DenyNamespaces: []string{"team-secret*"}, AllowAll: true},
	}}
	vm := func(devs ...string) request.SourceRequest {
		return src(config.SourceVolumeMounts, "volume-mounts /var/run/nvidia-container-devices", devs...)
	}
	cdi := func(devs ...string) request.SourceRequest {
		return src(config.SourceCDIDevices, "cdi-devices", devs...)
	}
	ann := func(devs ...string) request.SourceRequest {
		return src(config.SourceAnnotation, "annotation gpus.gpu-nri.io/container.main", devs...)
	}
	for _, tc := range []struct {
		name    string
		policy  config.Policy
		ns      string
		sources []request.SourceRequest
		// want is the Where of the granted source ("" = none granted).
		want    string
		rule    string
		refused []string // Rule of each refusal, in order
		err     string
	}{
		{name: "nothing asked", policy: strict, ns: "default"},
		{name: "standalone env all", policy: config.StandalonePolicy(), ns: "default", sources: []request.SourceRequest{env("all")},
			want: "env NVIDIA_VISIBLE_DEVICES", rule: "policy.sources.env.allowAll"},
		{name: "standalone env device", policy: config.StandalonePolicy(), ns: "", sources: []request.SourceRequest{env("GPU-1")},
			want: "env NVIDIA_VISIBLE_DEVICES", rule: "policy.sources.env"},
		{name: "strict env default ns refused", policy: strict, ns: "default", sources: []request.SourceRequest{env("GPU-1")},
			refused: []string{"policy.sources.env.allowNamespaces"}, err: "add the namespace to policy.sources.env.allowNamespaces"},
		{name: "strict env kube-system", policy: strict, ns: "kube-system", sources: []request.SourceRequest{env("GPU-1")},
			want: "env NVIDIA_VISIBLE_DEVICES", rule: "policy.sources.env.allowNamespaces"},
		{name: "strict env all refused even in kube-system", policy: strict, ns: "kube-system", sources: []request.SourceRequest{env("all")},
			refused: []string{"policy.sources.env.allowAll"}, err: "set policy.sources.env.allowAll: true"},
		{name: "strict volume-mounts", policy: strict, ns: "default", sources: []request.SourceRequest{vm("GPU-1")},
			want: "volume-mounts /var/run/nvidia-container-devices", rule: "policy.sources.volume-mounts"},
		{name: "strict cdi all refused", policy: strict, ns: "default", sources: []request.SourceRequest{cdi("all")},
			refused: []string{"policy.sources.cdi-devices.allowAll"}, err: "container default/pod/main"},
		{name: "strict: CUDA image env all beside device plugin", policy: strict, ns: "default", sources: []request.SourceRequest{vm("GPU-1"), env("all")},
			want: "volume-mounts /var/run/nvidia-container-devices", rule: "policy.sources.volume-mounts", refused: []string{"policy.sources.env.allowNamespaces"}},
		{name: "missing rule", policy: config.Policy{Profile: "custom", Sources: map[string]config.SourceRule{}}, ns: "x", sources: []request.SourceRequest{env("GPU-1")},
			refused: []string{"policy.sources.env"}, err: "has no rule for source \"env\"; add policy.sources.env"},
		{name: "glob star", policy: globs, ns: "team-a", sources: []request.SourceRequest{env("all")}, want: "env NVIDIA_VISIBLE_DEVICES", rule: "policy.sources.env.allowAll"},
		{name: "glob question", policy: globs, ns: "ml-1", sources: []request.SourceRequest{env("GPU-1")}, want: "env NVIDIA_VISIBLE_DEVICES", rule: "policy.sources.env.allowNamespaces"},
		{name: "glob question too long", policy: globs, ns: "ml-12", sources: []request.SourceRequest{env("GPU-1")}, refused: []string{"policy.sources.env.allowNamespaces"}, err: `namespace "ml-12"`},
		{name: "literal", policy: globs, ns: "exact", sources: []request.SourceRequest{env("GPU-1")}, want: "env NVIDIA_VISIBLE_DEVICES"},
		{name: "literal no prefix match", policy: globs, ns: "exactly", sources: []request.SourceRequest{env("GPU-1")}, refused: []string{"policy.sources.env.allowNamespaces"}, err: "refused"},
		{name: "deny wins", policy: globs, ns: "team-secret-1", sources: []request.SourceRequest{env("GPU-1")},
			refused: []string{"policy.sources.env.denyNamespaces"}, err: `matches "team-secret*"; remove it from policy.sources.env.denyNamespaces`},
		{name: "deny without allow", policy: config.Policy{Sources: map[string]config.SourceRule{config.SourceEnv: {DenyNamespaces: []string{"*"}}}}, ns: "a",
			sources: []request.SourceRequest{env("GPU-1")}, refused: []string{"policy.sources.env.denyNamespaces"}, err: "denyNamespaces"},
		{name: "same request agrees", policy: strict, ns: "kube-system", sources: []request.SourceRequest{vm("GPU-1", "GPU-2"), env("GPU-2", "GPU-1", "GPU-1")},
			want: "volume-mounts /var/run/nvidia-container-devices", rule: "policy.sources.volume-mounts"},
		{name: "trusted wins over untrusted", policy: strict, ns: "kube-system", sources: []request.SourceRequest{vm("GPU-1"), env("GPU-2")},
			want: "volume-mounts /var/run/nvidia-container-devices", refused: []string{"policy.sources.env.trusted"}},
		{name: "trusted wins regardless of order", policy: strict, ns: "kube-system", sources: []request.SourceRequest{ann("GPU-2"), vm("GPU-1")},
			want: "volume-mounts /var/run/nvidia-container-devices", refused: []string{"policy.sources.annotation.trusted"}},
		{name: "two trusted disagree", policy: strict, ns: "default", sources: []request.SourceRequest{cdi("GPU-1"), vm("GPU-2")},
			refused: []string{"policy.sources.cdi-devices.trusted", "policy.sources.volume-mounts.trusted"}, err: "trusted sources disagree"},
		{name: "two trusted agree one untrusted differs", policy: strict, ns: "kube-system", sources: []request.SourceRequest{cdi("GPU-1"), vm("GPU-1"), env("GPU-3")},
			want: "cdi-devices", rule: "policy.sources.cdi-devices", refused: []string{"policy.sources.env.trusted"}},
		{name: "standalone: all trusted, disagree", policy: config.StandalonePolicy(), ns: "", sources: []request.SourceRequest{ann("GPU-1"), env("all")},
			refused: []string{"policy.sources.annotation.trusted", "policy.sources.env.trusted"}, err: "trusted sources disagree"},
		{name: "untrusted disagree", policy: strict, ns: "kube-system", sources: []request.SourceRequest{ann("GPU-1"), env("GPU-2")},
			refused: []string{"policy.sources.annotation.trusted", "policy.sources.env.trusted"}, err: "none is trusted"},
		{name: "none vs device disagree", policy: strict, ns: "kube-system", sources: []request.SourceRequest{vm("GPU-1"), env("none")},
			want: "volume-mounts /var/run/nvidia-container-devices", refused: []string{"policy.sources.env.trusted"}},
		{name: "none agrees with none", policy: strict, ns: "kube-system", sources: []request.SourceRequest{ann("none"), env("none")},
			want: "annotation gpus.gpu-nri.io/container.main", rule: "policy.sources.annotation.allowNamespaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &request.Input{Namespace: tc.ns, Pod: "pod", Container: "main"}
			var req *request.Request
			if tc.sources != nil {
				req = &request.Request{Sources: tc.sources}
			}
			p, err := Compile(tc.policy)
			require.NoError(t, err)
			d, err := p.Authorize(in, req)
			var rules []string
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				var re *RefusedError
				require.True(t, errors.As(err, &re))
				require.Equal(t, in.Who(), re.Who)
				for _, r := range re.Refused {
					rules = append(rules, r.Rule)
				}
				require.Equal(t, tc.refused, rules)
				require.Nil(t, d.Source)
				return
			}
			require.NoError(t, err)
			if tc.want == "" {
				require.Nil(t, d.Source)
			} else {
				require.NotNil(t, d.Source)
				require.Equal(t, tc.want, d.Source.Where)
			}
			if tc.rule != "" {
				require.Equal(t, tc.rule, d.Rule)
			}
			for _, r := range d.Refused {
				rules = append(rules, r.Rule)
			}
			require.Equal(t, tc.refused, rules)
		})
	}
}

func TestCompileValidates(t *testing.T) {
	_, err := Compile(config.Policy{Sources: map[string]config.SourceRule{config.SourceEnv: {AllowNamespaces: []string{"["}}}})
	require.ErrorContains(t, err, "bad glob")
	c, err := Compile(config.StandalonePolicy())
	require.NoError(t, err)
	d, err := c.Authorize(&request.Input{}, &request.Request{Sources: []request.SourceRequest{env("GPU-1")}})
	require.NoError(t, err)
	require.Equal(t, config.SourceEnv, d.Source.Source)
}

func TestAuthorizeNilInput(t *testing.T) {
	p, err := Compile(config.KubernetesStrictPolicy())
	require.NoError(t, err)
	_, err = p.Authorize(nil, &request.Request{Sources: []request.SourceRequest{env("GPU-1")}})
	require.ErrorContains(t, err, `namespace ""`)
}

func TestAllowManagement(t *testing.T) {
	p := config.StandalonePolicy()
	p.ManagementNamespaces = []string{"gpu-*", "ops"}
	c, err := Compile(p)
	require.NoError(t, err)
	cfg := &request.Request{MIGConfig: true}
	for ns, ok := range map[string]bool{"gpu-operator": true, "ops": true, "ops2": false, "team": false} {
		err := c.AllowManagement(&request.Input{Namespace: ns, Pod: "p", Container: "c"}, cfg)
		if ok {
			require.NoError(t, err, ns)
			continue
		}
		var re *RefusedError
		require.ErrorAs(t, err, &re, ns)
		require.ErrorContains(t, err, `add namespace "`+ns+`" to policy.managementNamespaces`)
	}
	require.ErrorContains(t, c.AllowManagement(&request.Input{Namespace: "team"}, &request.Request{MIGMonitor: true}), request.EnvMIGMonitorDevices)
	require.NoError(t, c.AllowManagement(&request.Input{Namespace: "team"}, &request.Request{}), "neither asked")
	p.ManagementNamespaces = []string{"["}
	_, err = Compile(p)
	require.ErrorContains(t, err, "policy.managementNamespaces[0]: bad glob")
}
