package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/test/simhost"
)

// lockedBuffer is a goroutine-safe output sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// simHost builds a simulated host and returns it with the flags that read it.
func simHost(t *testing.T, o simhost.Options) (*simhost.Host, []string) {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	h, err := simhost.Build(o)
	require.NoError(t, err)
	return h, []string{"--driver-root", h.Config.DriverRoot, "--dev-root", h.Config.DevRoot, "--proc-root", h.Config.ProcRoot, "--no-nvml"}
}

// execute runs cmd with args and returns stdout, stderr and the error.
func execute(cmd *cobra.Command, args ...string) (string, string, error) {
	var out, errOut lockedBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	// As under the root command (main.go): no usage or error text on errors.
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestCDIGenerateStdoutAndList(t *testing.T) {
	h, flags := simHost(t, simhost.Options{GPUs: 2, MIG: map[int]int{1: 1}})
	deps := []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}

	out, _, err := execute(newCDICmd(deps...), append([]string{"generate", "--output", "-", "--hook-path", "/usr/bin/gpu-nri"}, flags...)...)
	require.NoError(t, err)
	raw, err := cdiapi.ParseSpec([]byte(out))
	require.NoError(t, err)
	require.Equal(t, "nvidia.com/gpu", raw.Kind)
	require.Equal(t, "/usr/bin/gpu-nri", raw.ContainerEdits.Hooks[0].Path)
	require.Contains(t, out, "libcuda.so."+h.DriverVersion)

	out, _, err = execute(newCDICmd(deps...), append([]string{"generate", "-o", "-", "--format", "json", "--vendor", "example.com", "--capabilities", "utility"}, flags...)...)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "{"))
	require.Contains(t, out, `"kind": "example.com/gpu"`)
	require.NotContains(t, out, "libcuda.so")

	out, _, err = execute(newCDICmd(deps...), append([]string{"list"}, flags...)...)
	require.NoError(t, err)
	require.Equal(t, "nvidia.com/gpu=0\nnvidia.com/gpu=1:0\nnvidia.com/gpu=all\n", out)
	out, _, err = execute(newCDICmd(deps...), append([]string{"list", "--device-name-strategy", "both"}, flags...)...)
	require.NoError(t, err)
	require.Contains(t, out, "nvidia.com/gpu="+h.GPUs[0].UUID+"\n")

	// Written to a directory, then listed from it as a runtime sees it.
	dir := filepath.Join(t.TempDir(), "cdi")
	_, errOut, err := execute(newCDICmd(deps...), append([]string{"generate", "--output-dir", dir}, flags...)...)
	require.NoError(t, err)
	require.Contains(t, errOut, "wrote "+filepath.Join(dir, "nvidia.com-gpu.yaml"))
	require.Contains(t, errOut, "(driver "+h.DriverVersion+")")
	out, _, err = execute(newCDICmd(deps...), "list", "--spec-dir", dir)
	require.NoError(t, err)
	require.Equal(t, "nvidia.com/gpu=0\nnvidia.com/gpu=1:0\nnvidia.com/gpu=all\n", out)

	// Bad input: errors name the flag or the bad value, nothing written.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--format", "toml", "-o", "-"}, `--format "toml"`},
		{[]string{"generate", "--kind", "nvidia.com/gpu", "--vendor", "x.com", "-o", "-"}, "--kind and --vendor/--class are exclusive"},
		{[]string{"generate", "--kind", "nogpu", "-o", "-"}, `kind "nogpu"`},
		{[]string{"generate", "--capabilities", "compute,bogus", "-o", "-"}, `unknown capability "bogus"`},
		{[]string{"generate", "--device-name-strategy", "type-index", "-o", "-"}, `strategy "type-index"`},
		{[]string{"generate", "--hook-path", "gpu-nri", "-o", "-"}, `--hook-path "gpu-nri": must be an absolute host path`},
		{[]string{"generate", "--watch", "-o", "-"}, "--watch writes to --output-dir"},
	} {
		_, _, err := execute(newCDICmd(deps...), append(tc.args, flags...)...)
		require.ErrorContains(t, err, tc.want, tc.args)
	}
	_, _, err = execute(newCDICmd(deps...), "generate", "-o", "-", "--proc-root", filepath.Join(t.TempDir(), "none"), "--no-nvml")
	require.ErrorContains(t, err, "no NVIDIA driver")
}

// TestCDIGenerateWatch upgrades the simulated driver under a running
// `cdi generate --watch` and expects the spec rewritten for the new version.
func TestCDIGenerateWatch(t *testing.T) {
	dir := t.TempDir()
	h, flags := simHost(t, simhost.Options{Dir: dir, GPUs: 2})
	specDir := filepath.Join(t.TempDir(), "cdi")
	path := filepath.Join(specDir, "nvidia.com-gpu.yaml")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newCDICmd(hostsrc.WithNodeStater(h.Stater()))
	var out, errOut lockedBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"generate", "--watch", "--interval", "20ms", "--output-dir", specDir}, flags...))
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	contains := func(s string) func() bool {
		return func() bool {
			b, err := os.ReadFile(path)
			return err == nil && strings.Contains(string(b), s)
		}
	}
	require.Eventually(t, contains("libcuda.so."+simhost.DefaultDriverVersion), 10*time.Second, 10*time.Millisecond, errOut.String())

	// Driver upgrade: the same tree rebuilt with another version.
	_, err := simhost.Build(simhost.Options{Dir: dir, GPUs: 2, DriverVersion: "570.86.15"})
	require.NoError(t, err)
	require.Eventually(t, contains("libcuda.so.570.86.15"), 10*time.Second, 10*time.Millisecond, errOut.String())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(b), simhost.DefaultDriverVersion, "stale paths of the old driver")
	_, err = cdiapi.ReadSpec(path, 0)
	require.NoError(t, err)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not stop on cancel")
	}
	require.Contains(t, errOut.String(), "(driver 570.86.15)")
}

// On a node where CUDA cannot run, generate does not exit 0 with a spec
// that looks fine: it refuses (naming cause and fix) unless allowed, and
// then warns; list still names the devices, with the warning.
func TestCDIGenerateComputeNotReady(t *testing.T) {
	noUVM := func(t *testing.T) (*simhost.Host, []string) {
		return simHost(t, simhost.Options{GPUs: 1, Omit: []string{"uvm"}})
	}
	upgraded := func(t *testing.T) (*simhost.Host, []string) {
		h, flags := simHost(t, simhost.Options{GPUs: 1, DriverVersion: "560.35.03"})
		p := filepath.Join(h.Config.ProcRoot, "driver/nvidia/version")
		require.NoError(t, os.Chmod(p, 0o644))
		require.NoError(t, os.WriteFile(p, []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"), 0o444))
		return h, flags
	}
	for _, tc := range []struct {
		name      string
		host      func(*testing.T) (*simhost.Host, []string)
		args      []string
		err       string // "" = succeeds
		stderr    string
		written   bool
		namesList bool
	}{
		{name: "no nvidia-uvm: refused", host: noUVM, args: []string{"generate"},
			err: "nvidia-uvm kernel module is not loaded", stderr: ""},
		{name: "no nvidia-uvm: refusal names the fix and the flag", host: noUVM, args: []string{"generate"},
			err: "--allow-compute-not-ready writes it anyway"},
		{name: "no nvidia-uvm: allowed with a warning", host: noUVM, args: []string{"generate", "--allow-compute-not-ready"},
			stderr: "gpu-nri: warning: CUDA cannot run on this node", written: true},
		{name: "no nvidia-uvm: no compute asked, nothing to refuse", host: noUVM, args: []string{"generate", "--capabilities", "utility"},
			written: true},
		{name: "userland upgraded without a reboot: refused", host: upgraded, args: []string{"generate"},
			err: "reboot"},
		{name: "list names the devices and warns", host: noUVM, args: []string{"list"},
			stderr: "cdi generate would refuse this spec", namesList: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, flags := tc.host(t)
			deps := []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}
			dir := filepath.Join(t.TempDir(), "cdi")
			args := append(append([]string{}, tc.args...), flags...)
			if tc.args[0] == "generate" {
				args = append(args, "--output-dir", dir)
			}
			out, errOut, err := execute(newCDICmd(deps...), args...)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.ErrorContains(t, err, "CUDA cannot run on this node")
			} else {
				require.NoError(t, err)
			}
			require.Contains(t, errOut, tc.stderr)
			_, statErr := os.Stat(filepath.Join(dir, "nvidia.com-gpu.yaml"))
			require.Equal(t, tc.written, statErr == nil, "spec written: %v", statErr)
			if tc.written && !strings.Contains(strings.Join(tc.args, " "), "allow") {
				require.NotContains(t, errOut, "CUDA cannot run")
			}
			if tc.namesList {
				require.Equal(t, "nvidia.com/gpu=0\nnvidia.com/gpu=all\n", out)
			}
		})
	}
}

// TestCDIMIGByUUID: with the driver's facts (no --no-nvml), `cdi list` and
// `cdi generate` name MIG devices by UUID under --device-name-strategy uuid
// and both, each with its own GI/CI cap nodes, and say nothing about
// missing UUIDs. GPU 1's MIG devices are numbered in another order by the
// simulated nvidia-smi than by the inventory.
func TestCDIMIGByUUID(t *testing.T) {
	h, flags := simHost(t, simhost.Options{GPUs: 2, MIG: map[int]int{1: 2}})
	flags = flags[:len(flags)-1] // drop --no-nvml: learn MIG UUIDs as the daemon does
	require.NotContains(t, flags, "--no-nvml")
	deps := []hostsrc.Option{hostsrc.WithNodeStater(h.Stater())}
	m0, m1 := h.GPUs[1].MIG[0], h.GPUs[1].MIG[1]

	out, errOut, err := execute(newCDICmd(deps...), append([]string{"list", "--device-name-strategy", "both"}, flags...)...)
	require.NoError(t, err)
	require.NotContains(t, errOut, "no UUID")
	require.Equal(t, sortedLines("nvidia.com/gpu=0\nnvidia.com/gpu=1:0\nnvidia.com/gpu=1:1\nnvidia.com/gpu=all\n"+
		"nvidia.com/gpu="+h.GPUs[0].UUID+"\nnvidia.com/gpu="+m0.UUID+"\nnvidia.com/gpu="+m1.UUID+"\n"), sortedLines(out))

	out, errOut, err = execute(newCDICmd(deps...), append([]string{"generate", "-o", "-", "--format", "json", "--device-name-strategy", "uuid"}, flags...)...)
	require.NoError(t, err)
	require.NotContains(t, errOut, "no UUID")
	raw, err := cdiapi.ParseSpec([]byte(out))
	require.NoError(t, err)
	byName := map[string][]string{}
	for _, d := range raw.Devices {
		for _, n := range d.ContainerEdits.DeviceNodes {
			byName[d.Name] = append(byName[d.Name], n.Path)
		}
	}
	require.NotContains(t, byName, "1:0")
	for _, m := range []simhost.MIG{m0, m1} {
		require.Contains(t, byName, m.UUID)
		require.Contains(t, byName[m.UUID], "/dev/nvidia-caps/nvidia-cap"+strconv.Itoa(m.GICapMinor), m.UUID)
		require.Contains(t, byName[m.UUID], "/dev/nvidia-caps/nvidia-cap"+strconv.Itoa(m.CICapMinor), m.UUID)
	}
}

// sortedLines returns s's lines sorted, each ending in a newline.
func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
