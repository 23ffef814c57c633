package install

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/deploy"
)

// tree lists every path under root with its type and mode ("f 0755", "d", "l").
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out["/"+rel] = "d"
		case info.Mode().IsRegular():
			out["/"+rel] = "f " + info.Mode().Perm().String()
		default:
			out["/"+rel] = "other"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func fakeBinary(t *testing.T, content string) string {
	t.Helper()
	return fakeFile(t, "gpu-nri", content)
}

func fakeHook(t *testing.T, content string) string {
	t.Helper()
	return fakeFile(t, "gpu-nri-hook", content)
}

func fakeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func actions(r *Result) []string {
	var s []string
	for _, c := range r.Changes {
		s = append(s, c.String())
	}
	return s
}

func TestInstallModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  Mode
		index string
		files []string
	}{
		{"external", External, "", []string{"/usr/local/bin/gpu-nri", "/usr/local/bin/gpu-nri-hook", "/etc/gpu-nri/config.yaml", "/etc/systemd/system/gpu-nri.service", "/var/lib/gpu-nri/install.json"}},
		{"pre-registered", PreRegistered, "", []string{"/usr/local/bin/gpu-nri", "/usr/local/bin/gpu-nri-hook", "/etc/gpu-nri/config.yaml", "/opt/nri/plugins/10-gpu-nri", "/etc/nri/conf.d/10-gpu-nri.conf", "/var/lib/gpu-nri/install.json"}},
		{"pre-registered index 42", PreRegistered, "42", []string{"/usr/local/bin/gpu-nri", "/usr/local/bin/gpu-nri-hook", "/etc/gpu-nri/config.yaml", "/opt/nri/plugins/42-gpu-nri", "/etc/nri/conf.d/42-gpu-nri.conf", "/var/lib/gpu-nri/install.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			bin := fakeBinary(t, "#!binary v1")
			o := []Option{WithRoot(root), WithMode(tc.mode), WithHookBinary(fakeHook(t, "#!hook v1"))}
			if tc.index != "" {
				o = append(o, WithIndex(tc.index))
			}

			// dry run: lists every change, touches nothing
			r, err := Install(bin, append(slices.Clip(o), WithDryRun(true))...)
			if err != nil {
				t.Fatal(err)
			}
			if got := tree(t, root); len(got) != 0 {
				t.Fatalf("dry run wrote %v", keys(got))
			}
			if len(r.Changes) != len(tc.files) {
				t.Errorf("dry run changes = %q, want one create per file %q", actions(r), tc.files)
			}
			for _, c := range r.Changes {
				if c.Action != Create {
					t.Errorf("dry run: %s, want create", c)
				}
			}

			r, err = Install(bin, o...)
			if err != nil {
				t.Fatal(err)
			}
			got := tree(t, root)
			for _, f := range tc.files {
				if !strings.HasPrefix(got[f], "f ") {
					t.Errorf("%s not installed (tree: %v)", f, keys(got))
				}
			}
			for _, f := range []string{"/usr/local/bin/gpu-nri", "/usr/local/bin/gpu-nri-hook"} {
				if got[f] != "f -rwxr-xr-x" {
					t.Errorf("%s mode = %s", f, got[f])
				}
			}
			if h, _ := os.ReadFile(filepath.Join(root, "usr/local/bin/gpu-nri-hook")); string(h) != "#!hook v1" {
				t.Errorf("hook binary = %q", h)
			}
			if r.HookPath != "/usr/local/bin/gpu-nri-hook" || len(r.Notes) != 0 {
				t.Errorf("hook path %s, notes %q", r.HookPath, r.Notes)
			}
			if !r.Binary || !r.Config || r.Unit != (tc.mode == External) {
				t.Errorf("result flags binary=%v config=%v unit=%v", r.Binary, r.Config, r.Unit)
			}
			cfg, err := os.ReadFile(filepath.Join(root, ConfigPath))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cfg, deploy.HostConfig) {
				t.Error("default config is not deploy/host/config.yaml")
			}
			if tc.mode == PreRegistered {
				idx := tc.index
				if idx == "" {
					idx = "10"
				}
				conf, _ := os.ReadFile(filepath.Join(root, PluginConfigDir, idx+"-gpu-nri.conf"))
				if !bytes.Equal(conf, cfg) {
					t.Error("conf.d file differs from config.yaml")
				}
				b, _ := os.ReadFile(filepath.Join(root, PluginDir, idx+"-gpu-nri"))
				if string(b) != "#!binary v1" {
					t.Errorf("plugin binary = %q", b)
				}
			}

			// idempotent
			r, err = Install(bin, o...)
			if err != nil {
				t.Fatal(err)
			}
			if r.Changed() {
				t.Errorf("second install changed %q", actions(r))
			}

			// uninstall removes exactly what install put: the temp root is empty again
			r, err = Uninstall(append(slices.Clip(o), WithDryRun(true))...)
			if err != nil {
				t.Fatal(err)
			}
			if len(tree(t, root)) != len(got) {
				t.Error("dry-run uninstall removed files")
			}
			if !r.Changed() {
				t.Error("dry-run uninstall lists no change")
			}
			if _, err := Uninstall(o...); err != nil {
				t.Fatal(err)
			}
			if left := tree(t, root); len(left) != 0 {
				t.Errorf("uninstall left %v", keys(left))
			}
			r, err = Uninstall(o...)
			if err != nil || r.Changed() {
				t.Errorf("second uninstall: %v %q", err, actions(r))
			}
		})
	}
}

func TestInstallKeepsForeignFiles(t *testing.T) {
	root := t.TempDir()
	// an operator's own config and an unrelated file in a directory install uses
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc/gpu-nri"), 0o755))
	own := []byte("log:\n  level: debug\n")
	must(os.WriteFile(filepath.Join(root, ConfigPath), own, 0o600))
	must(os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/local/bin/other"), []byte("x"), 0o755))

	o := []Option{WithRoot(root), WithMode(PreRegistered)}
	r, err := Install(fakeBinary(t, "v1"), o...)
	must(err)
	kept := false
	for _, c := range r.Changes {
		kept = kept || (c.Action == Keep && strings.HasSuffix(c.Path, ConfigPath))
	}
	if !kept {
		t.Errorf("existing config not reported as kept: %q", actions(r))
	}
	conf, _ := os.ReadFile(filepath.Join(root, PluginConfigDir, "10-gpu-nri.conf"))
	if !bytes.Equal(conf, own) {
		t.Errorf("conf.d file = %q, want the existing config", conf)
	}

	// an update of the binary replaces it (rename, new inode)
	before, _ := os.Stat(filepath.Join(root, "usr/local/bin/gpu-nri"))
	r, err = Install(fakeBinary(t, "v2"), o...)
	must(err)
	if !r.Binary || r.Config {
		t.Errorf("update flags: binary=%v config=%v (%q)", r.Binary, r.Config, actions(r))
	}
	after, _ := os.Stat(filepath.Join(root, "usr/local/bin/gpu-nri"))
	if os.SameFile(before, after) {
		t.Error("binary rewritten in place, not renamed over")
	}

	// a file changed after install is kept by uninstall
	must(os.WriteFile(filepath.Join(root, PluginConfigDir, "10-gpu-nri.conf"), []byte("edited"), 0o644))
	r, err = Uninstall(o...)
	must(err)
	got := tree(t, root)
	for _, want := range []string{"/etc/gpu-nri/config.yaml", "/usr/local/bin/other", "/etc/nri/conf.d/10-gpu-nri.conf"} {
		if _, ok := got[want]; !ok {
			t.Errorf("uninstall removed %s (changes %q)", want, actions(r))
		}
	}
	for _, gone := range []string{"/usr/local/bin/gpu-nri", "/opt/nri/plugins/10-gpu-nri", "/opt", "/var/lib/gpu-nri"} {
		if _, ok := got[gone]; ok {
			t.Errorf("uninstall left %s", gone)
		}
	}
}

func TestInstallSwitchModes(t *testing.T) {
	root := t.TempDir()
	bin := fakeBinary(t, "v1")
	if _, err := Install(bin, WithRoot(root), WithMode(External)); err != nil {
		t.Fatal(err)
	}
	r, err := Install(bin, WithRoot(root), WithMode(PreRegistered))
	if err != nil {
		t.Fatal(err)
	}
	got := tree(t, root)
	if _, ok := got[UnitPath]; ok {
		t.Errorf("unit left after switching to pre-registered: %q", actions(r))
	}
	if _, ok := got["/opt/nri/plugins/10-gpu-nri"]; !ok {
		t.Error("plugin not installed")
	}
	if _, err := Uninstall(WithRoot(root)); err != nil {
		t.Fatal(err)
	}
	if left := tree(t, root); len(left) != 0 {
		t.Errorf("uninstall left %v", keys(left))
	}
}

func TestInstallConfigAndBinDir(t *testing.T) {
	root := t.TempDir()
	cfg := []byte("log:\n  format: json\n")
	bin := fakeBinary(t, "v1")
	if _, err := Install(bin, WithRoot(root), WithMode(External), WithConfig(cfg), WithBinDir("/opt/gpu-nri/bin")); err != nil {
		t.Fatal(err)
	}
	unit, _ := os.ReadFile(filepath.Join(root, UnitPath))
	if !strings.Contains(string(unit), "ExecStart=/opt/gpu-nri/bin/gpu-nri run") {
		t.Errorf("unit does not follow --bin-dir:\n%s", unit)
	}
	got, _ := os.ReadFile(filepath.Join(root, ConfigPath))
	if !bytes.Equal(got, cfg) {
		t.Errorf("config = %q", got)
	}

	// default config follows --bin-dir too
	root2 := t.TempDir()
	if _, err := Install(bin, WithRoot(root2), WithBinDir("/opt/gpu-nri/bin")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(root2, ConfigPath))
	c, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Injection.HookPath != "/opt/gpu-nri/bin/gpu-nri" {
		t.Errorf("hookPath = %s", c.Injection.HookPath)
	}

	// with the hook binary, the default config names it in --bin-dir
	root3 := t.TempDir()
	if _, err := Install(bin, WithRoot(root3), WithBinDir("/opt/gpu-nri/bin"), WithHookBinary(fakeHook(t, "h"))); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(root3, ConfigPath))
	if c, err = config.Parse(data); err != nil {
		t.Fatal(err)
	}
	if c.Injection.HookPath != "/opt/gpu-nri/bin/gpu-nri-hook" {
		t.Errorf("hookPath with the hook binary = %s", c.Injection.HookPath)
	}
}

func TestInstallWithoutHookBinary(t *testing.T) {
	root := t.TempDir()
	r, err := Install(fakeBinary(t, "v1"), WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tree(t, root)["/usr/local/bin/gpu-nri-hook"]; ok {
		t.Error("gpu-nri-hook installed without a hook binary")
	}
	data, _ := os.ReadFile(filepath.Join(root, ConfigPath))
	c, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Injection.HookPath != "/usr/local/bin/gpu-nri" || r.HookPath != "/usr/local/bin/gpu-nri" {
		t.Errorf("hookPath = %s, result %s; want the gpu-nri binary", c.Injection.HookPath, r.HookPath)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "no gpu-nri-hook binary given") || !strings.Contains(r.Notes[0], "/usr/local/bin/gpu-nri") {
		t.Errorf("notes = %q", r.Notes)
	}
}

func TestInstallAddsHookBinary(t *testing.T) {
	root := t.TempDir()
	bin := fakeBinary(t, "v1")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// an installation from before the hook binary: its untouched default
	// config moves to gpu-nri-hook, in config.yaml and in conf.d
	_, err := Install(bin, WithRoot(root), WithMode(PreRegistered))
	must(err)
	r, err := Install(bin, WithRoot(root), WithMode(PreRegistered), WithHookBinary(fakeHook(t, "h1")))
	must(err)
	for _, p := range []string{ConfigPath, PluginConfigDir + "/10-gpu-nri.conf"} {
		data, _ := os.ReadFile(filepath.Join(root, p))
		if !bytes.Equal(data, deploy.HostConfig) {
			t.Errorf("%s after adding the hook binary:\n%s\n(changes %q)", p, data, actions(r))
		}
	}
	if !r.Binary || !r.Config {
		t.Errorf("flags binary=%v config=%v (%q)", r.Binary, r.Config, actions(r))
	}
	// installing without the hook binary again: the untouched default
	// names gpu-nri again, and the hook binary is removed
	r, err = Install(bin, WithRoot(root), WithMode(PreRegistered))
	must(err)
	if data, _ := os.ReadFile(filepath.Join(root, ConfigPath)); !bytes.Contains(data, []byte("hookPath: /usr/local/bin/gpu-nri\n")) {
		t.Errorf("config after dropping the hook binary:\n%s\n(changes %q)", data, actions(r))
	}
	if _, ok := tree(t, root)["/usr/local/bin/gpu-nri-hook"]; ok {
		t.Errorf("gpu-nri-hook left after installing without it (%q)", actions(r))
	}
	_, err = Install(bin, WithRoot(root), WithMode(PreRegistered), WithHookBinary(fakeHook(t, "h1")))
	must(err)
	// an edited config is kept as it is
	edited := []byte("log:\n  level: debug\n")
	must(os.WriteFile(filepath.Join(root, ConfigPath), edited, 0o644))
	r, err = Install(bin, WithRoot(root), WithMode(PreRegistered), WithHookBinary(fakeHook(t, "h2")))
	must(err)
	if data, _ := os.ReadFile(filepath.Join(root, ConfigPath)); !bytes.Equal(data, edited) {
		t.Errorf("edited config replaced: %q (%q)", data, actions(r))
	}
	// uninstall removes the hook binary with the rest
	r, err = Uninstall(WithRoot(root))
	must(err)
	if left := tree(t, root); len(left) != 0 {
		t.Errorf("uninstall left %v (%q)", keys(left), actions(r))
	}
}

func TestInstallHookMode(t *testing.T) {
	root := t.TempDir()
	bin := fakeBinary(t, "v1")
	o := []Option{WithRoot(root), WithMode(Hook), WithBinDir("/opt/gpu-nri/bin")}
	r, err := Install(bin, o...)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(tree(t, root)); strings.Join(got, " ") != "/opt /opt/gpu-nri /opt/gpu-nri/bin /opt/gpu-nri/bin/gpu-nri" {
		t.Errorf("hook mode installed %v (%q)", got, actions(r))
	}
	// with the hook binary (the init container): both binaries, nothing else
	o = append(o, WithHookBinary(fakeHook(t, "h1")))
	r, err = Install(bin, o...)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(tree(t, root)); strings.Join(got, " ") != "/opt /opt/gpu-nri /opt/gpu-nri/bin /opt/gpu-nri/bin/gpu-nri /opt/gpu-nri/bin/gpu-nri-hook" {
		t.Errorf("hook mode with the hook binary installed %v (%q)", got, actions(r))
	}
	r, err = Install(bin, o...)
	if err != nil || r.Changed() {
		t.Errorf("second hook install: %v %q", err, actions(r))
	}
}

func TestInstallErrors(t *testing.T) {
	bin := fakeBinary(t, "v1")
	for _, tc := range []struct {
		name   string
		binary string
		opts   []Option
		want   string
	}{
		{"bad mode", bin, []Option{WithMode("sideways")}, "mode must be"},
		{"bad index", bin, []Option{WithIndex("7")}, "two digits"},
		{"empty index", bin, []Option{WithIndex("")}, "two digits"},
		{"relative bin dir", bin, []Option{WithBinDir("bin")}, "absolute"},
		{"no binary", "", nil, "no binary"},
		{"missing binary", "/nonexistent/gpu-nri", nil, "reading the binary"},
		{"missing hook binary", bin, []Option{WithHookBinary("/nonexistent/gpu-nri-hook")}, "reading the hook binary"},
		{"empty hook binary", bin, []Option{WithHookBinary("")}, "WithHookBinary: no path"},
		{"invalid config", bin, []Option{WithConfig([]byte("log:\n  format: xml\n"))}, "log.format"},
		{"unknown config key", bin, []Option{WithConfig([]byte("nope: 1\n"))}, "not valid"},
		{"nil config", bin, []Option{WithConfig(nil)}, "no configuration"},
		{"missing root", bin, []Option{WithRoot("/nonexistent/root")}, "not an existing directory"},
		{"empty root", bin, []Option{WithRoot("")}, "root must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			_, err := Install(tc.binary, append([]Option{WithRoot(root)}, tc.opts...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if left := tree(t, root); len(left) != 0 {
				t.Errorf("failed install wrote %v", keys(left))
			}
		})
	}
	if _, err := Uninstall(WithRoot(t.TempDir()), WithMode("sideways")); err == nil || !strings.Contains(err.Error(), "mode must be") {
		t.Errorf("uninstall with a bad option: err = %v", err)
	}
}

func TestShippedHostFilesParse(t *testing.T) {
	for _, p := range []string{"../../deploy/host/config.yaml", "../../deploy/nri/10-gpu-nri.conf"} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse(data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if c.Injection.HookPath != "/usr/local/bin/gpu-nri-hook" || c.Host.Root != "/" {
			t.Errorf("%s: hookPath %s root %s", p, c.Injection.HookPath, c.Host.Root)
		}
	}
	if !bytes.Contains(deploy.HostConfig, []byte("\n  "+hostConfigHookLine)) {
		t.Errorf("deploy/host/config.yaml has no line %q: update install's substitution", hostConfigHookLine)
	}
	if !strings.Contains(string(deploy.SystemdUnit), "ExecStart=/usr/local/bin/gpu-nri run --config /etc/gpu-nri/config.yaml") {
		t.Error("unit ExecStart changed: update install's substitutions")
	}
}

// A configuration with injection.libraryDir gets the unit's drop-in, which
// leaves the service in the host's mount namespace; without it the drop-in
// goes, and uninstall removes it.
func TestInstallLibraryDirDropIn(t *testing.T) {
	root := t.TempDir()
	bin := fakeBinary(t, "v1")
	with := []byte("injection:\n  libraryDir: /run/gpu-nri/lib\n")
	res, err := Install(bin, WithRoot(root), WithMode(External), WithConfig(with))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, DropInPath))
	if err != nil || !bytes.Equal(got, deploy.SystemdLibraryDirDropIn) {
		t.Fatalf("drop-in %s: %v\n%s", DropInPath, err, got)
	}
	if !res.Unit {
		t.Error("the drop-in is a unit change (daemon-reload, restart)")
	}
	if _, err := Install(bin, WithRoot(root), WithMode(External), WithConfig([]byte("log:\n  format: json\n"))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, DropInPath)); !os.IsNotExist(err) {
		t.Errorf("the drop-in stays without injection.libraryDir: %v", err)
	}
	if _, err := Install(bin, WithRoot(root), WithMode(External), WithConfig(with)); err != nil {
		t.Fatal(err)
	}
	if _, err := Uninstall(WithRoot(root)); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("uninstall left %v", entries)
	}
	if _, err := Install(bin, WithRoot(t.TempDir()), WithMode(PreRegistered), WithConfig(with)); err != nil {
		t.Fatal(err) // the runtime starts it in its own namespace: no unit, no drop-in
	}
}

// The drop-in turns off every setting of the shipped unit that gives the
// service a mount namespace of its own (systemd.exec(5): the service's mounts
// then do not reach the host), and grants CAP_SYS_ADMIN only.
func TestLibraryDirDropInCoversTheUnit(t *testing.T) {
	settings := func(data []byte) map[string]string {
		out := map[string]string{}
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
				out[k] = v
			}
		}
		return out
	}
	unit, drop := settings(deploy.SystemdUnit), settings(deploy.SystemdLibraryDirDropIn)
	// Settings that set up a mount namespace when on (systemd.exec(5), "Sandboxing").
	namespaced := []string{"ProtectSystem", "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectControlGroups", "ProtectHostname", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "PrivateTmp",
		"PrivateDevices", "PrivateMounts", "ProtectProc", "ProcSubset", "BindPaths", "BindReadOnlyPaths", "TemporaryFileSystem",
		"MountFlags", "RootDirectory", "RootImage", "PrivateUsers", "ProtectClock"}
	for _, k := range namespaced {
		v, inUnit := unit[k]
		if !inUnit || v == "no" || v == "" {
			continue
		}
		if k == "ProtectClock" { // a device and system-call filter, no mount namespace
			continue
		}
		if d, ok := drop[k]; !ok || (d != "no" && d != "") {
			t.Errorf("the unit sets %s=%s and the drop-in does not turn it off (%q)", k, v, d)
		}
	}
	if drop["CapabilityBoundingSet"] != "CAP_SYS_ADMIN" {
		t.Errorf("drop-in CapabilityBoundingSet=%q, want CAP_SYS_ADMIN only", drop["CapabilityBoundingSet"])
	}
}
