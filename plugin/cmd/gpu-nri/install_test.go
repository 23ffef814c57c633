package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallCommand(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "gpu-nri")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(uninstall bool, args ...string) string {
		t.Helper()
		cmd := newInstallCmd()
		if uninstall {
			cmd = newUninstallCmd()
		}
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	hook := filepath.Join(t.TempDir(), "gpu-nri-hook")
	if err := os.WriteFile(hook, []byte("hook"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := []string{"--root", root, "--binary", bin, "--hook-binary", hook, "--mode", "pre-registered"}
	out := run(false, append(base, "--dry-run")...)
	if !strings.Contains(out, "would create "+filepath.Join(root, "opt/nri/plugins/10-gpu-nri")) {
		t.Errorf("dry run output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "opt")); err == nil {
		t.Error("dry run wrote files")
	}
	out = run(false, base...)
	if !strings.Contains(out, "create "+filepath.Join(root, "etc/nri/conf.d/10-gpu-nri.conf")) ||
		!strings.Contains(out, "create "+filepath.Join(root, "usr/local/bin/gpu-nri-hook")) || strings.Contains(out, "note:") {
		t.Errorf("install output:\n%s", out)
	}
	if out = run(false, base...); !strings.Contains(out, "nothing to change") {
		t.Errorf("second install output:\n%s", out)
	}
	out = run(true, "--root", root)
	if !strings.Contains(out, "remove "+filepath.Join(root, "usr/local/bin/gpu-nri\n")) ||
		!strings.Contains(out, "remove "+filepath.Join(root, "usr/local/bin/gpu-nri-hook\n")) {
		t.Errorf("uninstall output:\n%s", out)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("uninstall left %v", entries)
	}
	if out = run(true, "--root", root); !strings.Contains(out, "nothing to remove") {
		t.Errorf("second uninstall output:\n%s", out)
	}
}

func TestInstallCommandWithoutHookBinary(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "gpu-nri")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := newInstallCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"--root", root, "--binary", bin, "--hook-binary", "none", "--mode", "hook", "--bin-dir", "/opt/gpu-nri/bin"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "note: no gpu-nri-hook binary given") {
		t.Errorf("install output has no note:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(root, "opt/gpu-nri/bin/gpu-nri-hook")); err == nil {
		t.Error("gpu-nri-hook installed with --hook-binary none")
	}
}
