package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/stretchr/testify/require"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
)

// What logrus adds to every line (and "error" when an error is attached),
// the fields of a not-GPU line, and the audit lines' messages, as
// docs/logging.md states them.
var (
	logrusFields  = []string{"time", "level", "msg"}
	notGPUFields  = []string{"pod", "namespace", "container", "outcome"}
	auditMessages = []string{"GPU request granted", "GPU request refused", "GPU request failed", "GPU request answered late", "not a GPU container"}
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
	return onlyAuditLine(t, s)
}

// onlyAuditLine returns the one audit line in s's log since its last reset.
func onlyAuditLine(t *testing.T, s *scenario) map[string]any {
	t.Helper()
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

// TestAuditLineLate: an answer decided after the runtime's deadline (here a
// context that is already past it, as ttrpc hands the handler) is logged and
// counted as late with no devices and no adjustment, never as granted.
func TestAuditLineLate(t *testing.T) {
	m := metrics.New("test")
	s := newScenarioWith(t, nil, m)
	auditFields := docAuditFields(t)
	s.logs.Reset()
	// nritest's routing probes (NVIDIA_VISIBLE_DEVICES=none) were counted
	// already: compare with the counts before the late request.
	injectedBefore := counterValue(t, m, "gpu_nri_containers_total", engine.OutcomeInjected)
	devicesBefore := counterValue(t, m, "gpu_nri_devices_injected_total", "")
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	pod := &api.PodSandbox{Id: "pod-late", Name: "pod-late", Uid: "uid-late", Namespace: "ml"}
	ctr := &api.Container{Id: "ctr-late", PodSandboxId: pod.Id, Name: "late", Env: []string{"NVIDIA_VISIBLE_DEVICES=0"}}
	adj, upd, err := s.Plugin.CreateContainer(ctx, pod, ctr)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Nil(t, adj)
	require.Nil(t, upd)
	line := onlyAuditLine(t, s)
	require.Equal(t, sortedCopy(auditFields, logrusFields, []string{"error"}), keys(line))
	require.Equal(t, "GPU request answered late", line["msg"])
	require.Equal(t, "error", line["level"])
	require.Equal(t, engine.OutcomeLate, line["outcome"])
	require.Equal(t, []any{}, line["devices"])
	require.Equal(t, "env NVIDIA_VISIBLE_DEVICES", line["where"])
	require.Contains(t, line["reason"], "gpu-nri: container ml/pod-late/late: answered after ")
	require.Contains(t, line["reason"], "past the runtime's deadline for the request (decision: injected)")
	require.Equal(t, 1.0, counterValue(t, m, "gpu_nri_containers_total", engine.OutcomeLate))
	require.Equal(t, injectedBefore, counterValue(t, m, "gpu_nri_containers_total", engine.OutcomeInjected))
	require.Equal(t, devicesBefore, counterValue(t, m, "gpu_nri_devices_injected_total", ""))
}

// counterValue reads one counter from m's registry (label outcome=label,
// or an unlabelled counter when label is "").
func counterValue(t *testing.T, m *metrics.Metrics, name, label string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			if label == "" || (len(mt.GetLabel()) == 1 && mt.GetLabel()[0].GetValue() == label) {
				return mt.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{outcome=%q}", name, label)
	return 0
}
