package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// keys lists every YAML key of t, dotted.
func keys(prefix string, t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		k := prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration(0)) {
			out = append(out, keys(k+".", f.Type)...)
			continue
		}
		out = append(out, k)
	}
	return out
}

func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("README.md")
	require.NoError(t, err)
	for _, k := range keys("", reflect.TypeOf(Config{})) {
		if k == "policy.sources" {
			k = "policy.sources.<source>"
		}
		require.Contains(t, string(doc), "`"+k, "config/README.md does not document %s", k)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		check         func(*testing.T, *Config)
	}{
		{name: "empty gives defaults", in: "", check: func(t *testing.T, c *Config) { require.Equal(t, Default(), c) }},
		{name: "override", in: "host:\n  driverRoot: /run/nvidia/driver\n  refreshInterval: 2s\ninjection:\n  loader: hookless\n",
			check: func(t *testing.T, c *Config) {
				require.Equal(t, "/run/nvidia/driver", c.Host.DriverRoot)
				require.Equal(t, 2*time.Second, c.Host.RefreshInterval.Std())
				require.Equal(t, LoaderHookless, c.Injection.Loader)
				require.Equal(t, "/dev", c.Host.DevRoot)
				require.Equal(t, StandalonePolicy(), c.Policy)
			}},
		{name: "management namespaces without sources keep the default sources", in: "policy:\n  managementNamespaces: [gpu-operator]\n",
			check: func(t *testing.T, c *Config) {
				require.Equal(t, []string{"gpu-operator"}, c.Policy.ManagementNamespaces)
				require.Equal(t, StandalonePolicy().Sources, c.Policy.Sources)
				require.Equal(t, "standalone", c.Policy.Profile)
			}},
		{name: "unknown key", in: "host:\n  drvRoot: /x\n", err: "drvRoot"},
		{name: "bad loader", in: "injection:\n  loader: magic\n", err: "injection.loader"},
		{name: "relative path", in: "host:\n  devRoot: dev\n", err: "host.devRoot"},
		{name: "bad index", in: "plugin:\n  index: \"7\"\n", err: "plugin.index"},
		{name: "zero sync timeout", in: "plugin:\n  syncTimeout: 0s\n", err: "plugin.syncTimeout: must be positive"},
		{name: "zero reconnect delay", in: "plugin:\n  reconnectMin: 0s\n", err: "plugin.reconnectMin: must be positive"},
		{name: "reconnect bounds reversed", in: "plugin:\n  reconnectMin: 20s\n", err: "config: plugin.reconnectMax: must be at least plugin.reconnectMin (20s), got 10s"},
		{name: "negative refresh interval", in: "host:\n  refreshInterval: -1s\n", err: "host.refreshInterval: must be 0s (no polling) or positive"},
		{name: "bad capability", in: "injection:\n  defaultCapabilities: [warp]\n", err: "warp"},
		{name: "bad source", in: "policy:\n  sources:\n    telepathy: {}\n", err: "telepathy"},
		{name: "bad allow glob", in: "policy:\n  sources:\n    env: {allowNamespaces: [ok, \"team-[\"]}\n",
			err: `config: policy.sources.env.allowNamespaces[1]: bad glob "team-["`},
		{name: "bad deny glob", in: "policy:\n  sources:\n    env: {denyNamespaces: [\"[\"]}\n",
			err: `config: policy.sources.env.denyNamespaces[0]: bad glob "["`},
		{name: "bad management glob", in: "policy:\n  managementNamespaces: [\"a[\"]\n",
			err: `config: policy.managementNamespaces[0]: bad glob "a["`},
		{name: "bad deviceCgroupRules", in: "injection:\n  deviceCgroupRules: sometimes\n",
			err: `config: injection.deviceCgroupRules: must be one of auto, always, never, got "sometimes"`},
		{name: "bad duration", in: "host:\n  refreshInterval: soon\n", err: "soon"},
		{name: "bad unverifiable", in: "requirements:\n  unverifiable: maybe\n", err: "requirements.unverifiable"},
		{name: "relative cdiOwnSpecDir", in: "injection:\n  cdiOwnSpecDir: var/run/cdi\n",
			err: `config: injection.cdiOwnSpecDir: must be empty or an absolute path, got "var/run/cdi"`},
		{name: "cdiOwnSpecDir", in: "injection:\n  cdiOwnSpecDir: /host/var/run/cdi\n",
			check: func(t *testing.T, c *Config) { require.Equal(t, "/host/var/run/cdi", c.Injection.CDIOwnSpecDir) }},
		{name: "bad computeNotReady", in: "requirements:\n  computeNotReady: warn\n", err: "requirements.computeNotReady"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.in))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

// TestPolicyProfiles: a profile name selects its rules; each source the file
// lists replaces that source's rule, the others keep the profile's.
func TestPolicyProfiles(t *testing.T) {
	with := func(p Policy, src string, r SourceRule) Policy {
		p.Sources[src] = r
		return p
	}
	teamEnv := SourceRule{Trusted: false, AllowNamespaces: []string{"team-*"}}
	for _, tc := range []struct {
		name, in string
		want     Policy
		err      string
	}{
		{name: "no policy is standalone", in: "log:\n  level: debug\n", want: StandalonePolicy()},
		{name: "standalone alone", in: "policy:\n  profile: standalone\n", want: StandalonePolicy()},
		{name: "kubernetes-strict alone", in: "policy:\n  profile: kubernetes-strict\n", want: KubernetesStrictPolicy()},
		{name: "kubernetes-strict with managementNamespaces", in: "policy:\n  profile: kubernetes-strict\n  managementNamespaces: [gpu-operator]\n",
			want: func() Policy {
				p := KubernetesStrictPolicy()
				p.ManagementNamespaces = []string{"gpu-operator"}
				return p
			}()},
		{name: "kubernetes-strict, env overridden", in: "policy:\n  profile: kubernetes-strict\n  sources:\n    env: {allowNamespaces: ['team-*']}\n",
			want: with(KubernetesStrictPolicy(), SourceEnv, teamEnv)},
		{name: "standalone, env overridden", in: "policy:\n  profile: standalone\n  sources:\n    env: {allowNamespaces: ['team-*']}\n",
			want: with(StandalonePolicy(), SourceEnv, teamEnv)},
		{name: "no profile, env overridden, is standalone's", in: "policy:\n  sources:\n    env: {allowNamespaces: ['team-*']}\n",
			want: with(StandalonePolicy(), SourceEnv, teamEnv)},
		{name: "a listed rule replaces the profile's whole", in: "policy:\n  profile: standalone\n  sources:\n    cdi-devices: {trusted: true}\n",
			want: with(StandalonePolicy(), SourceCDIDevices, SourceRule{Trusted: true})},
		{name: "custom has only the listed sources", in: "policy:\n  profile: custom\n  sources:\n    cdi-devices: {trusted: true}\n",
			want: Policy{Profile: ProfileCustom, Sources: map[string]SourceRule{SourceCDIDevices: {Trusted: true}}}},
		{name: "custom with no source", in: "policy:\n  profile: custom\n", err: `config: policy.sources: profile "custom" starts from no rule`},
		{name: "unknown profile", in: "policy:\n  profile: strict\n", err: `config: policy.profile: unknown profile "strict" (known: standalone, kubernetes-strict, custom)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.in))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, c.Policy)
		})
	}
}

func TestDefaultRoundTrips(t *testing.T) {
	b, err := yaml.Marshal(Default())
	require.NoError(t, err)
	c, err := Parse(b)
	require.NoError(t, err)
	require.Equal(t, Default(), c)
}

func TestProfilesValidate(t *testing.T) {
	for _, name := range Profiles() {
		p, err := ProfilePolicy(name)
		require.NoError(t, err)
		require.Equal(t, name, p.Profile)
		if name == ProfileCustom {
			continue // no rule: refused by Validate until sources are listed
		}
		c := Default()
		c.Policy = p
		require.NoError(t, c.Validate(), p.Profile)
	}
}

func TestDefaultYAMLIsCurrent(t *testing.T) {
	b, err := os.ReadFile("default.yaml")
	require.NoError(t, err)
	want, err := yaml.Marshal(Default())
	require.NoError(t, err)
	require.Equal(t, string(want), string(b), "regenerate with: go run ./plugin/cmd/gpu-nri config default > config/default.yaml")
}

func TestPolicyValidateIsWhatConfigValidateChecks(t *testing.T) {
	p := StandalonePolicy()
	p.Sources[SourceEnv] = SourceRule{AllowNamespaces: []string{"["}}
	p.Sources["telepathy"] = SourceRule{}
	err := p.Validate()
	require.ErrorContains(t, err, `policy.sources.env.allowNamespaces[0]: bad glob "["`)
	require.ErrorContains(t, err, `policy.sources: unknown source "telepathy"`)
	c := Default()
	c.Policy = p
	cerr := c.Validate()
	require.ErrorContains(t, cerr, `config: policy.sources.env.allowNamespaces[0]: bad glob "["`)
	require.ErrorContains(t, cerr, `config: policy.sources: unknown source "telepathy"`)
}
