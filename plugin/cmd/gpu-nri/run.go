package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/dra"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/plugin"
)

const runLong = `Run the gpu-nri NRI plugin daemon.

External mode (default): connect to the runtime's NRI socket (plugin.socket,
--socket) and reconnect with backoff whenever the runtime restarts.

Pre-registered mode: when the runtime starts the binary as
<plugin_path>/NN-gpu-nri it sets NRI_PLUGIN_SOCKET; the configuration then
comes from <plugin_config_path>/NN-gpu-nri.conf, which the runtime passes to
the plugin (same YAML as --config).

The configuration file is YAML; every key, its default and meaning is listed
in config/README.md and printed by 'gpu-nri config default'. Main keys:
  host.root, host.driverRoot, host.devRoot, host.procRoot   where the host is read
  plugin.name, plugin.index, plugin.socket                  NRI registration
  injection.loader (hook|hookless), injection.hookPath      how libraries become loadable
  injection.defaultCapabilities, injection.cdiSpecDirs      what a container gets
  requirements.disable, requirements.unverifiable           NVIDIA_REQUIRE_* checks
  policy.profile, policy.sources.<source>                   who may ask for which GPU
  log.level, log.format, metrics.address                    operations
  dra.enabled, dra.driverName, dra.cdiSpecDir               the Kubernetes DRA kubelet plugin (docs/dra.md)

With dra.enabled the daemon also serves the DRA kubelet plugin: it registers
with the kubelet (dra.kubeletRegistryDir), publishes the node's GPUs and MIG
devices as ResourceSlices through the API server (the pod's service account,
in-cluster configuration; the node is dra.nodeName or NODE_NAME) and prepares
the ResourceClaims allocated from them.`

func newRunCmd() *cobra.Command {
	var cfgPath, socket, name, idx, level, format, metricsAddr string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the NRI plugin daemon",
		Long:  runLong,
		Example: `  gpu-nri run --config /etc/gpu-nri/config.yaml
  gpu-nri run --socket /var/run/nri/nri.sock --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			set := func(flag string, dst *string, v string) {
				if flags.Changed(flag) {
					*dst = v
				}
			}
			set("socket", &cfg.Plugin.Socket, socket)
			set("name", &cfg.Plugin.Name, name)
			set("idx", &cfg.Plugin.Index, idx)
			set("log-level", &cfg.Log.Level, level)
			set("log-format", &cfg.Log.Format, format)
			set("metrics-address", &cfg.Metrics.Address, metricsAddr)
			if err := cfg.Validate(); err != nil {
				return err
			}
			return runDaemon(cfg)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "configuration file (YAML); defaults apply when empty")
	f.StringVar(&socket, "socket", "", "NRI socket path (overrides plugin.socket)")
	f.StringVar(&name, "name", "", "NRI plugin name (overrides plugin.name)")
	f.StringVar(&idx, "idx", "", "NRI plugin index, two digits (overrides plugin.index)")
	f.StringVar(&level, "log-level", "", "debug, info, warn or error (overrides log.level)")
	f.StringVar(&format, "log-format", "", "text or json (overrides log.format)")
	f.StringVar(&metricsAddr, "metrics-address", "", "serve /metrics, /healthz, /readyz here (overrides metrics.address)")
	return cmd
}

func newLogger(c config.Log) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	if lvl, err := logrus.ParseLevel(c.Level); err == nil {
		l.SetLevel(lvl)
	}
	if c.Format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return l
}

func runDaemon(cfg *config.Config) error {
	log := newLogger(cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m := metrics.New(version)
	var p *plugin.Plugin
	var driver *dra.Driver
	if cfg.DRA.Enabled {
		o := dra.OptionsFromConfig(cfg)
		o.Inventory = func() *inventory.Inventory { return p.Inventory() }
		o.OnError = func(err error, msg string) { log.WithError(err).Error("dra: " + msg) }
		d, err := dra.New(o)
		if err != nil {
			return err
		}
		driver = d
	}
	p, err := plugin.New(plugin.Options{Config: cfg, Logger: log, Metrics: m, DRA: driver})
	if err != nil {
		return err
	}
	if driver != nil {
		kc, err := rest.InClusterConfig()
		if err != nil {
			return fmt.Errorf("dra: %w", err)
		}
		kube, err := kubernetes.NewForConfig(kc)
		if err != nil {
			return fmt.Errorf("dra: %w", err)
		}
		if err := driver.Start(ctx, kube); err != nil {
			return err
		}
		defer driver.Stop()
		log.WithFields(logrus.Fields{"driver": cfg.DRA.DriverName, "prepared_claims": len(driver.Prepared())}).
			Info("DRA kubelet plugin registered; ResourceSlices published")
	}
	if inv := p.Inventory(); inv != nil {
		log.WithFields(logrus.Fields{"driver_version": inv.DriverVersion, "gpus": len(inv.GPUs),
			"warnings": len(inv.Warnings)}).Info("host inventory loaded")
		for _, w := range inv.Warnings {
			log.Debug("inventory: " + w)
		}
	} else {
		log.Warn("no NVIDIA driver found; GPU requests fail until one appears")
	}
	if cfg.Metrics.Address != "" {
		go func() {
			if err := metrics.Serve(ctx, cfg.Metrics.Address, m.Handler(p.Ready)); err != nil && !errors.Is(err, context.Canceled) {
				log.WithError(err).Error("metrics endpoint stopped")
			}
		}()
	}
	if err := p.Run(ctx); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	log.Info("shut down")
	return nil
}
