package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/cdispec"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// hostFlags are the flags that choose the configuration and the host view.
type hostFlags struct {
	config                                  string
	hostRoot, driverRoot, devRoot, procRoot string
	noNVML                                  bool
}

func (h *hostFlags) register(f *pflag.FlagSet) {
	f.StringVarP(&h.config, "config", "c", "", "gpu-nri configuration file (YAML); defaults apply when empty")
	f.StringVar(&h.hostRoot, "host-root", "", "where the host's / is seen (overrides host.root)")
	f.StringVar(&h.driverRoot, "driver-root", "", "host path of the driver root (overrides host.driverRoot)")
	f.StringVar(&h.devRoot, "dev-root", "", "host path of the nvidia device nodes' directory (overrides host.devRoot)")
	f.StringVar(&h.procRoot, "proc-root", "", "host path of procfs (overrides host.procRoot)")
	f.BoolVar(&h.noNVML, "no-nvml", false, "do not ask the driver (NVML or nvidia-smi) for brand, compute capability, CUDA version and MIG UUIDs")
}

// load reads the configuration and applies the host flags.
func (h *hostFlags) load(flags *pflag.FlagSet) (*config.Config, error) {
	cfg, err := config.Load(h.config)
	if err != nil {
		return nil, err
	}
	for flag, dst := range map[string]*string{"host-root": &cfg.Host.Root, "driver-root": &cfg.Host.DriverRoot,
		"dev-root": &cfg.Host.DevRoot, "proc-root": &cfg.Host.ProcRoot} {
		if flags.Changed(flag) {
			v, _ := flags.GetString(flag)
			*dst = v
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// hostOptions are how the tools read the host: base (what the command was
// built with: nothing in the binary, a simulated host's node table in
// tests) plus --no-nvml.
func (h *hostFlags) hostOptions(base []hostsrc.Option) []hostsrc.Option {
	opts := append([]hostsrc.Option(nil), base...)
	if h.noNVML {
		opts = append(opts, hostsrc.WithoutFacts())
	}
	return opts
}

// cdiFlags shape the generated spec.
type cdiFlags struct {
	host                   hostFlags
	kind, vendor, class    string
	strategy, capabilities string
	hookPath, format       string
	outputDir, output      string
	watch, allowNotReady   bool
	list                   bool // cdi list: a compute problem is a warning, never a failure
	interval               time.Duration
}

func (c *cdiFlags) register(f *pflag.FlagSet) {
	c.host.register(f)
	f.StringVar(&c.kind, "kind", "", "CDI kind vendor/class (default injection.cdiKind, nvidia.com/gpu)")
	f.StringVar(&c.vendor, "vendor", "", "CDI vendor (with --class; instead of --kind)")
	f.StringVar(&c.class, "class", "", "CDI class (with --vendor; instead of --kind)")
	f.StringVar(&c.strategy, "device-name-strategy", cdispec.NameIndex, "device names: index (0, 3:0), uuid (GPU-..., MIG-...) or both")
	f.StringVar(&c.capabilities, "capabilities", "", "driver capabilities, as NVIDIA_DRIVER_CAPABILITIES (default injection.defaultCapabilities)")
	f.StringVar(&c.hookPath, "hook-path", "", "host path of the gpu-nri binary the spec's hook runs (default injection.hookPath)")
}

// spec builds the CDI spec for the host the flags name.
func (c *cdiFlags) spec(flags *pflag.FlagSet, base []hostsrc.Option) (*generated, error) {
	op, err := c.open(flags, base)
	if err != nil {
		return nil, err
	}
	inv := op.host.Inventory()
	if inv == nil {
		return nil, op.host.Err()
	}
	ready, err := computeCheck(op, inv)
	if err != nil {
		if !c.list {
			return nil, err
		}
		ready = []string{"cdi generate would refuse this spec: " + strings.TrimPrefix(err.Error(), "no spec written: ")}
	}
	s, warnings, err := cdispec.Generate(op.eng, inv, op.o)
	if err != nil {
		return nil, err
	}
	return &generated{spec: s, warnings: append(ready, warnings...), driver: inv.DriverVersion}, nil
}

// computeCheck refuses a spec with compute for a node where CUDA cannot run
// (nvidia-uvm missing, libraries of another version than the loaded module),
// as the daemon refuses such containers; with requirements.computeNotReady:
// allow or --allow-compute-not-ready it is a warning instead.
func computeCheck(op *opened, inv *inventory.Inventory) ([]string, error) {
	warning, err := inv.CheckCompute(op.o.Capabilities, !op.refuse)
	if err != nil {
		return nil, fmt.Errorf("no spec written: %w; --allow-compute-not-ready writes it anyway", err)
	}
	if warning == "" {
		return nil, nil
	}
	return []string{warning}, nil
}

type generated struct {
	spec     *specs.Spec
	warnings []string
	driver   string // the inventory's driver version
}

// open loads the configuration (with --hook-path applied), builds its
// engine and reads the host.
func (c *cdiFlags) open(flags *pflag.FlagSet, base []hostsrc.Option) (*opened, error) {
	cfg, err := c.host.load(flags)
	if err != nil {
		return nil, err
	}
	o, err := c.options(cfg, flags)
	if err != nil {
		return nil, err
	}
	// The refusal of a node where CUDA cannot run is computeCheck's, once
	// for the spec; allowed, every device is built (list always builds them).
	refuse := cfg.Requirements.ComputeNotReady != "allow" && !c.allowNotReady
	if c.allowNotReady || c.list {
		cfg.Requirements.ComputeNotReady = "allow"
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return nil, err
	}
	h, err := hostsrc.Open(cfg, c.host.hostOptions(base)...)
	if err != nil {
		return nil, err
	}
	return &opened{cfg: cfg, eng: eng, host: h, o: o, refuse: refuse}, nil
}

// opened is what the cdi commands work with.
type opened struct {
	cfg  *config.Config
	eng  *engine.Engine
	host *hostsrc.Host
	o    cdispec.Options
	// refuse: a compute spec on a node where CUDA cannot run is an error
	// (requirements.computeNotReady: refuse and no --allow-compute-not-ready).
	refuse bool
}

// options turns flags and configuration into cdispec.Options; --hook-path
// goes into cfg, whose engine builds the edits.
func (c *cdiFlags) options(cfg *config.Config, flags *pflag.FlagSet) (cdispec.Options, error) {
	kind := cfg.Injection.CDIKind
	switch {
	case flags.Changed("kind") && (flags.Changed("vendor") || flags.Changed("class")):
		return cdispec.Options{}, errors.New("--kind and --vendor/--class are exclusive")
	case flags.Changed("kind"):
		kind = c.kind
	case flags.Changed("vendor") || flags.Changed("class"):
		v, cl := parser.ParseQualifier(kind)
		if flags.Changed("vendor") {
			v = c.vendor
		}
		if flags.Changed("class") {
			cl = c.class
		}
		kind = v + "/" + cl
	}
	if kind == "" {
		kind = cdispec.DefaultKind
	}
	caps, err := request.ParseCapabilities(c.capabilities, request.OptionsFromConfig(&cfg.Injection))
	if err != nil {
		return cdispec.Options{}, fmt.Errorf("--capabilities %q: %w", c.capabilities, err)
	}
	if flags.Changed("hook-path") {
		if !filepath.IsAbs(c.hookPath) {
			return cdispec.Options{}, fmt.Errorf("--hook-path %q: must be an absolute host path", c.hookPath)
		}
		cfg.Injection.HookPath = c.hookPath
	}
	return cdispec.Options{Kind: kind, NameStrategy: c.strategy, Capabilities: caps}, nil
}

// newCDICmd builds `gpu-nri cdi`; host are extra host options (none in the
// binary; tests read a simulated host's node table).
func newCDICmd(host ...hostsrc.Option) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cdi",
		Short: "Generate or list a CDI spec for this host's GPUs (Podman, Docker, nerdctl)",
		Long: `Runtimes that apply CDI specs themselves (Podman, Docker 25+, nerdctl,
containerd/CRI-O native CDI) get the same devices, driver files and loader hook
as gpu-nri's NRI plugin from a CDI spec generated from the same host inventory
and edits. See docs/tools.md.`,
	}
	cmd.AddCommand(newCDIGenerateCmd(host), newCDIListCmd(host))
	return cmd
}

func newCDIGenerateCmd(host []hostsrc.Option) *cobra.Command {
	var c cdiFlags
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a validated CDI spec for this host (atomically), or print it",
		Long: `Generate a CDI spec (kind nvidia.com/gpu by default) with one device per GPU and
MIG device and an "all" device. What every device shares (control nodes,
libraries, binaries, firmware, the gpu-nri hook at injection.hookPath) is at the
spec's top level; each device holds its own nodes. The spec is validated with
the CDI library before it is written; the file is replaced atomically.

On a node where CUDA cannot run (nvidia-uvm not loaded, or libraries of another
version than the loaded kernel module) a spec with compute is refused, exit 1,
naming the cause and the fix, as the daemon refuses such containers; with
requirements.computeNotReady: allow or --allow-compute-not-ready it is written
with a warning on stderr.

With --watch the command keeps running and rewrites the spec whenever the
driver changes (host.refreshInterval, --interval), until SIGTERM or SIGINT.`,
		Example: `  # write /var/run/cdi/nvidia.com-gpu.yaml
  gpu-nri cdi generate
  # print JSON named by UUID, with graphics too
  gpu-nri cdi generate --output - --format json --device-name-strategy uuid --capabilities compute,utility,graphics
  # keep the spec fresh across driver upgrades (e.g. as a systemd service)
  gpu-nri cdi generate --watch --output-dir /etc/cdi
  podman run --device nvidia.com/gpu=0 IMAGE nvidia-smi`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.generate(cmd, host)
		},
	}
	f := cmd.Flags()
	c.register(f)
	f.StringVar(&c.format, "format", cdispec.FormatYAML, "spec encoding: yaml or json")
	f.StringVar(&c.outputDir, "output-dir", "/var/run/cdi", "directory the spec is written to, as <vendor>-<class>.<format>")
	f.StringVarP(&c.output, "output", "o", "", `"-" prints the spec to stdout instead of writing it`)
	f.BoolVar(&c.watch, "watch", false, "keep running and rewrite the spec when the driver changes")
	f.BoolVar(&c.allowNotReady, "allow-compute-not-ready", false, "write a spec with compute even where CUDA cannot run (nvidia-uvm not loaded, userland and kernel module of different versions), with a warning; default: as requirements.computeNotReady")
	f.DurationVar(&c.interval, "interval", 0, "with --watch: how often the driver is checked (default host.refreshInterval)")
	return cmd
}

func (c *cdiFlags) generate(cmd *cobra.Command, host []hostsrc.Option) error {
	flags := cmd.Flags()
	if c.format != cdispec.FormatYAML && c.format != cdispec.FormatJSON {
		return fmt.Errorf("--format %q: want yaml or json", c.format)
	}
	if c.output != "" && c.output != "-" {
		return fmt.Errorf(`--output %q: only "-" (stdout) is supported; use --output-dir for a directory`, c.output)
	}
	if c.watch && c.output == "-" {
		return errors.New("--watch writes to --output-dir, not to stdout")
	}
	stderr := cmd.ErrOrStderr()
	if !c.watch {
		g, err := c.spec(flags, host)
		if err != nil {
			return err
		}
		return c.emit(cmd.OutOrStdout(), stderr, g)
	}

	op, err := c.open(flags, host)
	if err != nil {
		return err
	}
	eng, h, o := op.eng, op.host, op.o
	interval := op.cfg.Host.RefreshInterval.Std()
	if flags.Changed("interval") {
		interval = c.interval
	}
	if interval <= 0 {
		return errors.New("--watch needs a positive --interval (or host.refreshInterval)")
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	write := func(inv *inventory.Inventory) {
		if inv == nil {
			fmt.Fprintf(stderr, "gpu-nri: no driver inventory (%v); %s left as it is\n", h.Err(), filepath.Join(c.outputDir, cdispec.FileName(o.Kind, c.format)))
			return
		}
		ready, err := computeCheck(op, inv)
		if err != nil {
			fmt.Fprintf(stderr, "gpu-nri: %v; %s left as it is\n", err, filepath.Join(c.outputDir, cdispec.FileName(o.Kind, c.format)))
			return
		}
		s, warnings, err := cdispec.Generate(eng, inv, o)
		if err == nil {
			err = c.emit(cmd.OutOrStdout(), stderr, &generated{spec: s, warnings: append(ready, warnings...), driver: inv.DriverVersion})
		}
		if err != nil {
			fmt.Fprintln(stderr, "gpu-nri:", err)
		}
	}
	write(h.Inventory())
	h.Watcher().Run(ctx, interval, func(_, inv *inventory.Inventory, err error) {
		if err != nil && inv == nil {
			fmt.Fprintln(stderr, "gpu-nri: rediscovery:", err)
		}
		write(inv)
	})
	return nil
}

// emit prints or writes the spec.
func (c *cdiFlags) emit(stdout, stderr io.Writer, g *generated) error {
	for _, w := range g.warnings {
		fmt.Fprintln(stderr, "gpu-nri: warning:", w)
	}
	if c.output == "-" {
		data, err := cdispec.Marshal(g.spec, c.format)
		if err != nil {
			return err
		}
		if err := cdispec.Validate(data, c.format, ""); err != nil {
			return err
		}
		_, err = stdout.Write(data)
		return err
	}
	path, err := cdispec.Write(g.spec, c.outputDir, c.format)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "gpu-nri: wrote %s: %s (driver %s)\n", path, cdispec.Summary(g.spec), g.driver)
	return nil
}

func newCDIListCmd(host []hostsrc.Option) *cobra.Command {
	var c cdiFlags
	var specDirs []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print the qualified CDI device names (nvidia.com/gpu=0, ...)",
		Long: `Print the qualified names of the devices 'gpu-nri cdi generate' makes for this
host with the same flags. With --spec-dir, print instead the devices the CDI
library finds in those directories (what a runtime would see), with any spec
errors on stderr.`,
		Example: `  gpu-nri cdi list
  gpu-nri cdi list --device-name-strategy both
  gpu-nri cdi list --spec-dir /etc/cdi --spec-dir /var/run/cdi`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if len(specDirs) > 0 {
				cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(specDirs...), cdiapi.WithAutoRefresh(false))
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "gpu-nri: warning:", err)
				}
				if cache == nil {
					return err
				}
				errs := cache.GetErrors()
				paths := make([]string, 0, len(errs))
				for p := range errs {
					paths = append(paths, p)
				}
				sort.Strings(paths)
				for _, p := range paths {
					for _, e := range errs[p] {
						fmt.Fprintf(cmd.ErrOrStderr(), "gpu-nri: %s: %v\n", p, e)
					}
				}
				for _, n := range cache.ListDevices() {
					if !cmd.Flags().Changed("kind") || strings.HasPrefix(n, c.kind+"=") {
						fmt.Fprintln(out, n)
					}
				}
				return nil
			}
			c.list = true
			g, err := c.spec(cmd.Flags(), host)
			if err != nil {
				return err
			}
			for _, w := range g.warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "gpu-nri: warning:", w)
			}
			for _, n := range cdispec.QualifiedNames(g.spec) {
				fmt.Fprintln(out, n)
			}
			return nil
		},
	}
	c.register(cmd.Flags())
	cmd.Flags().StringArrayVar(&specDirs, "spec-dir", nil, "list what the CDI library finds in this directory instead (repeatable)")
	return cmd
}
