package plugin_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
)

// What logrus adds to every line (and "error" when an error is attached),
// the fields of a not-GPU line, and the audit lines' messages, as
// docs/logging.md states them.
var (
	logrusFields  = []string{"time", "level", "msg"}
	notGPUFields  = []string{"pod", "namespace", "container", "outcome"}
	auditMessages = []string{"GPU request granted", "GPU request refused", "GPU request failed", "not a GPU container"}
)

// docAuditFields reads the audit line's field table from docs/logging.md
// (the rows "| `field` | type | meaning |" under "One line per GPU
// decision"), so that the test fails when the daemon and the document part.
func docAuditFields(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "logging.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "### One line per GPU decision")
	require.True(t, ok, "docs/logging.md has no audit line section")
	section, _, _ = strings.Cut(section, "\n### ")
	var out []string
	for _, line := range strings.Split(section, "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ := strings.Cut(rest, "`")
			out = append(out, name)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// auditLine sends one container through the runtime to the real daemon and
// returns the one audit line it logged (decoded from its JSON log).
func auditLine(t *testing.T, s *scenario, ns, name string, env []string) map[string]any {
	t.Helper()
	s.logs.Reset()
	pod := &api.PodSandbox{Id: "pod-" + name, Name: "pod-" + name, Uid: "uid-" + name, Namespace: ns}
	ctr := &api.Container{Id: "ctr-" + name, PodSandboxId: pod.Id, Name: name, Env: env}
	_, _ = s.CreateContainer(pod, ctr)
	lines, err := s.logs.Lines()
	require.NoError(t, err)
	var audit []map[string]any
	for _, l := range lines {
		if msg, _ := l["msg"].(string); slices.Contains(auditMessages, msg) {
			audit = append(audit, l)
		}
	}
	require.Len(t, audit, 1, "exactly one audit line per container: %v", lines)
	return audit[0]
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedCopy(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return out
}

func TestAuditLine(t *testing.T) {
	s := newScenario(t, func(c *config.Config) { c.Policy = config.KubernetesStrictPolicy() })
	auditFields := docAuditFields(t)
	require.Equal(t, []string{"pod", "namespace", "container", "outcome", "source", "where", "rule", "devices", "refused", "reason", "duration_ms"}, auditFields)
	for _, tc := range []struct {
		name, ns string
		env      []string
		msg      string
		level    string
		fields   []string
		want     map[string]any
	}{
		{name: "granted", ns: "kube-system", env: []string{"NVIDIA_VISIBLE_DEVICES=0,2"},
			msg: "GPU request granted", level: "info", fields: sortedCopy(auditFields, logrusFields),
			want: map[string]any{"pod": "pod-granted", "namespace": "kube-system", "container": "granted", "outcome": engine.OutcomeInjected,
				"source": "env", "where": "env NVIDIA_VISIBLE_DEVICES", "rule": "policy.sources.env.allowNamespaces",
				"devices": []any{"0=" + s.host.GPUs[0].UUID, "2=" + s.host.GPUs[2].UUID}, "refused": []any{}, "reason": ""}},
		{name: "refused", ns: "team-a", env: []string{"NVIDIA_VISIBLE_DEVICES=all"},
			msg: "GPU request refused", level: "warning", fields: sortedCopy(auditFields, logrusFields, []string{"error"}),
			want: map[string]any{"pod": "pod-refused", "namespace": "team-a", "container": "refused", "outcome": engine.OutcomeRefused,
				"source": "env", "where": "env NVIDIA_VISIBLE_DEVICES", "rule": "policy.sources.env.allowNamespaces", "devices": []any{},
				"refused": []any{`env NVIDIA_VISIBLE_DEVICES refused by policy.sources.env.allowNamespaces: namespace "team-a" is not allowed; add the namespace to policy.sources.env.allowNamespaces to allow it`}}},
		{name: "failed", ns: "kube-system", env: []string{"NVIDIA_VISIBLE_DEVICES=9"},
			msg: "GPU request failed", level: "error", fields: sortedCopy(auditFields, logrusFields, []string{"error"}),
			want: map[string]any{"pod": "pod-failed", "namespace": "kube-system", "container": "failed", "outcome": engine.OutcomeError,
				"source": "env", "where": "env NVIDIA_VISIBLE_DEVICES", "rule": "policy.sources.env.allowNamespaces", "devices": []any{}, "refused": []any{},
				"reason": `gpu-nri: container kube-system/pod-failed/failed: env NVIDIA_VISIBLE_DEVICES "9": no such device on this host (the host has 4 GPU(s): indexes 0-3)`}},
		{name: "plain", ns: "team-a", env: []string{"PATH=/bin"},
			msg: "not a GPU container", level: "debug", fields: sortedCopy(notGPUFields, logrusFields),
			want: map[string]any{"pod": "pod-plain", "namespace": "team-a", "container": "plain", "outcome": engine.OutcomeNotGPU}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := auditLine(t, s, tc.ns, tc.name, tc.env)
			require.Equal(t, tc.fields, keys(line))
			require.Equal(t, tc.msg, line["msg"])
			require.Equal(t, tc.level, line["level"])
			for k, v := range tc.want {
				require.Equal(t, v, line[k], k)
			}
			if tc.msg != "not a GPU container" {
				require.IsType(t, float64(0), line["duration_ms"])
			}
			if tc.msg == "GPU request refused" {
				require.Equal(t, line["error"], line["reason"])
				require.Contains(t, line["reason"], "team-a/pod-refused/refused")
			}
		})
	}
}
