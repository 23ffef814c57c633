package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
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

// uninstall detaches what a daemon killed before it could clean up left in
// the installed configuration's injection.libraryDir.
func TestUninstallDetachesLibraryDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts need root (CI runs as root)")
	}
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "gpu-nri")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	for p, data := range map[string]string{bin: "binary", cfg: "injection:\n  libraryDir: /run/gpu-nri/lib\n"} {
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(cmd *cobra.Command, args ...string) string {
		t.Helper()
		out, errOut, err := execute(cmd, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
	exec(newInstallCmd(), "--root", root, "--binary", bin, "--hook-binary", bin, "--mode", "pre-registered", "--config", cfg)
	left := filepath.Join(root, "run/gpu-nri/lib/compute.utility-0123456789abcdef.7")
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("t", left, "tmpfs", 0, "size=16k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(left, unix.MNT_DETACH) })
	if out := exec(newUninstallCmd(), "--root", root, "--dry-run"); !strings.Contains(out, "would detach "+left+"\n") {
		t.Errorf("dry-run uninstall output:\n%s", out)
	}
	if _, err := os.Stat(left); err != nil {
		t.Errorf("the dry run removed %s: %v", left, err)
	}
	if out := exec(newUninstallCmd(), "--root", root); !strings.Contains(out, "detach "+left+"\n") {
		t.Errorf("uninstall output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "run/gpu-nri/lib")); !os.IsNotExist(err) {
		t.Errorf("the library directory root is still there: %v", err)
	}
}
