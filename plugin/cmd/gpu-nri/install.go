package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/install"
	"github.com/gpu-nri/gpu-nri/pkg/libdir"
)

type installFlags struct {
	root, mode, binary, hookBinary, configPath, index, binDir string
	dryRun, noSystemctl                                       bool
}

func (f *installFlags) register(cmd *cobra.Command, withInstallOnly bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.root, "root", "/", "the host's root directory (install into an image or a test tree)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print each change without making it")
	fl.BoolVar(&f.noSystemctl, "no-systemctl", false, "never run systemctl (it only runs when --root is /)")
	if withInstallOnly {
		fl.StringVar(&f.mode, "mode", string(install.External), "external (systemd unit), pre-registered (runtime starts gpu-nri) or hook (the binaries only)")
		fl.StringVar(&f.binary, "binary", "/proc/self/exe", "the gpu-nri binary to install")
		fl.StringVar(&f.hookBinary, "hook-binary", "auto", "the gpu-nri-hook binary to install beside it as the createContainer hook (auto: the gpu-nri-hook next to this executable, when there; none: install none, hookPath names gpu-nri)")
		fl.StringVar(&f.configPath, "config", "", "configuration file to install (default: keep an existing one, else deploy/host/config.yaml)")
		fl.StringVar(&f.index, "index", "10", "two-digit NRI plugin index of the pre-registered plugin")
		fl.StringVar(&f.binDir, "bin-dir", install.DefaultBinDir, "host directory of the binary (the hook path)")
	}
}

// options turns the flags into install options; flags only install has
// (mode, index, bin dir, config) are empty for uninstall and left out.
func (f *installFlags) options() ([]install.Option, error) {
	o := []install.Option{install.WithRoot(f.root), install.WithDryRun(f.dryRun)}
	if f.mode != "" {
		o = append(o, install.WithMode(install.Mode(f.mode)))
	}
	if f.index != "" {
		o = append(o, install.WithIndex(f.index))
	}
	if f.binDir != "" {
		o = append(o, install.WithBinDir(f.binDir))
	}
	switch f.hookBinary {
	case "", "none":
	case "auto":
		if p := hookBesideExecutable(); p != "" {
			o = append(o, install.WithHookBinary(p))
		}
	default:
		o = append(o, install.WithHookBinary(f.hookBinary))
	}
	if f.configPath != "" {
		data, err := os.ReadFile(f.configPath)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		o = append(o, install.WithConfig(data))
	}
	return o, nil
}

// hookBesideExecutable is the gpu-nri-hook regular file in this
// executable's directory (as the image and `make build` place it), or "".
func hookBesideExecutable() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), install.HookName)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	return p
}

// cleanLibraryDir detaches what the daemon left in the installed
// configuration's injection.libraryDir (a daemon that ended normally left
// nothing; one killed did).
func cleanLibraryDir(w io.Writer, root string, dryRun bool) error {
	data, err := os.ReadFile(filepath.Join(root, install.ConfigPath))
	if err != nil {
		return nil // no installed configuration: nothing of ours to find
	}
	cfg, err := config.Parse(data)
	if err != nil || cfg.Injection.LibraryDir == "" {
		return nil
	}
	dir := filepath.Join(root, cfg.Injection.LibraryDir)
	if dryRun {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			_, _ = fmt.Fprintln(w, "would detach", filepath.Join(dir, e.Name()))
		}
		return nil
	}
	done, err := libdir.Clean(dir, true)
	for _, d := range done {
		_, _ = fmt.Fprintln(w, "detach", d)
	}
	if err != nil {
		return fmt.Errorf("injection.libraryDir: %w", err)
	}
	return nil
}

func printChanges(w io.Writer, r *install.Result, dryRun bool, nothing string) {
	for _, c := range r.Changes {
		if dryRun && c.Action != install.Keep {
			_, _ = fmt.Fprintln(w, "would", c.String())
		} else {
			_, _ = fmt.Fprintln(w, c.String())
		}
	}
	if !r.Changed() {
		_, _ = fmt.Fprintln(w, nothing)
	}
	for _, n := range r.Notes {
		_, _ = fmt.Fprintln(w, "note:", n)
	}
}

// systemctl runs systemctl with args when the host is the real one, printing the command.
func (f *installFlags) systemctl(w io.Writer, args ...string) error {
	if f.noSystemctl || f.root != "/" {
		return nil
	}
	if f.dryRun {
		_, _ = fmt.Fprintln(w, "would run: systemctl", args)
		return nil
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		_, _ = fmt.Fprintln(w, "systemctl not found: start gpu-nri yourself:", "/usr/local/bin/gpu-nri run --config /etc/gpu-nri/config.yaml")
		return nil
	}
	_, _ = fmt.Fprintln(w, "systemctl", args)
	cmd := exec.Command("systemctl", args...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("systemctl %v: %w", args, err)
	}
	return nil
}

func newInstallCmd() *cobra.Command {
	f := &installFlags{}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install gpu-nri on this host (binary, config, systemd unit or pre-registered plugin)",
		Long: `Install gpu-nri on a host without Kubernetes, idempotently:

  <root>/usr/local/bin/gpu-nri              the binary
  <root>/usr/local/bin/gpu-nri-hook         the createContainer hook (--hook-binary; default the
                                            gpu-nri-hook next to this executable; without one the
                                            hook is gpu-nri itself, which starts several times slower)
  <root>/etc/gpu-nri/config.yaml            the configuration (an existing one is kept unless --config)
  --mode external:       <root>/etc/systemd/system/gpu-nri.service, then systemctl enable --now
  --mode pre-registered: <root>/opt/nri/plugins/NN-gpu-nri and <root>/etc/nri/conf.d/NN-gpu-nri.conf
                         (restart the runtime afterwards: it starts pre-registered plugins itself)
  --mode hook:           the two binaries only (the Kubernetes init container)

Files are written to a temporary name and renamed (a running binary is never overwritten); a
second run prints "nothing to change". What was installed is recorded in
<root>/var/lib/gpu-nri/install.json, and 'gpu-nri uninstall' removes exactly that.
The runtime must have NRI enabled: deploy/runtime/ has drop-ins for containerd and CRI-O.`,
		Example: `  sudo gpu-nri install --dry-run
  sudo gpu-nri install
  sudo gpu-nri install --mode pre-registered --config my-config.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			r, err := install.Install(f.binary, o...)
			if r != nil {
				printChanges(w, r, f.dryRun, "nothing to change")
			}
			if err != nil {
				return err
			}
			switch install.Mode(f.mode) {
			case install.External, "":
				if r.Unit {
					if err := f.systemctl(w, "daemon-reload"); err != nil {
						return err
					}
				}
				if err := f.systemctl(w, "enable", "gpu-nri.service"); err != nil {
					return err
				}
				verb := "start"
				if r.Changed() {
					verb = "restart"
				}
				return f.systemctl(w, verb, "gpu-nri.service")
			case install.PreRegistered:
				if r.Changed() && !f.dryRun {
					_, _ = fmt.Fprintln(w, "restart the container runtime (e.g. systemctl restart containerd) to start the pre-registered plugin")
				}
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newUninstallCmd() *cobra.Command {
	f := &installFlags{}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove what 'gpu-nri install' put on this host",
		Long: `Remove exactly the files 'gpu-nri install' recorded in <root>/var/lib/gpu-nri/install.json
(a file changed since is kept and reported), then the directories it created when empty. With the
systemd unit installed and --root /, the service is stopped and disabled first. When the installed
configuration sets injection.libraryDir, the library directories a daemon left there (one killed
before it could detach them) are detached and the directory removed.`,
		Example: `  sudo gpu-nri uninstall --dry-run
  sudo gpu-nri uninstall`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			// Stop the service before its files go.
			if r, err := install.Uninstall(append(slices.Clip(o), install.WithDryRun(true))...); err == nil && r.Unit {
				if err := f.systemctl(w, "disable", "--now", "gpu-nri.service"); err != nil {
					_, _ = fmt.Fprintln(w, "warning:", err)
				}
			}
			if err := cleanLibraryDir(w, f.root, f.dryRun); err != nil {
				return err
			}
			r, err := install.Uninstall(o...)
			if r != nil {
				printChanges(w, r, f.dryRun, "nothing to remove (no installation recorded)")
			}
			if err != nil {
				return err
			}
			if r.Unit && !f.dryRun {
				if err := f.systemctl(w, "daemon-reload"); err != nil && !errors.Is(err, exec.ErrNotFound) {
					return err
				}
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
