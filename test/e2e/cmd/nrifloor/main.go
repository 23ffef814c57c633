// Command nrifloor is the smallest NRI plugin that injects GPUs: a bench
// fixture (BENCH_EXPERIMENT=nrifloor), never deployed. It measures what any
// NRI plugin pays on the container start path, so that gpu-nri's own share
// of NRI's CreateContainer round trip can be told from NRI's and the
// runtime's.
//
// At start it reads one CDI spec (NRIFLOOR_SPEC), merges the spec's own
// container edits with those of the devices named in NRIFLOOR_DEVICES
// (comma-separated), and converts them once with the converter the daemon
// uses (pkg/nriadjust, device-cgroup rules on); or, with
// NRIFLOOR_ADJUSTMENT instead, it reads the adjustment itself (protobuf
// JSON, as test/e2e/cmd/nrirtt captures it from gpu-nri's answer) and
// returns exactly those bytes' edits. Every CreateContainer whose
// pod carries the annotation NRIFLOOR_ANNOTATION gets that adjustment, with
// no request parsing, policy, audit or metrics; any other gets none. It
// subscribes to the same events as gpu-nri (CreateContainer,
// RemoveContainer), so the runtime makes the same calls.
//
// It is started like gpu-nri (`nrifloor run --config FILE`, the harness's
// config file: plugin.socket, plugin.name, plugin.index and metrics.address
// are read, the rest ignored) and serves /readyz, true once the runtime
// has synchronized with it, so the harness's StartPlugin and WaitReady work
// unchanged.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
	cdi "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/pkg/nriadjust"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nrifloor:", err)
		os.Exit(1)
	}
}

// fileConfig is the part of the harness's gpu-nri config file read here.
type fileConfig struct {
	Plugin struct {
		Name   string `json:"name"`
		Index  string `json:"index"`
		Socket string `json:"socket"`
	} `json:"plugin"`
	Metrics struct {
		Address string `json:"address"`
	} `json:"metrics"`
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "run" {
		return errors.New("usage: nrifloor run --config FILE")
	}
	fl := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "the harness's gpu-nri config file")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	var fc fileConfig
	data, err := os.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, &fc); err != nil {
		return fmt.Errorf("%s: %w", *cfgPath, err)
	}
	if fc.Plugin.Socket == "" || fc.Metrics.Address == "" {
		return fmt.Errorf("%s: plugin.socket and metrics.address are needed", *cfgPath)
	}
	ann := os.Getenv("NRIFLOOR_ANNOTATION")
	if ann == "" {
		return errors.New("NRIFLOOR_ANNOTATION is not set")
	}
	var adj *api.ContainerAdjustment
	if path := os.Getenv("NRIFLOOR_ADJUSTMENT"); path != "" {
		adj, err = readAdjustment(path)
	} else {
		adj, err = adjustment(os.Getenv("NRIFLOOR_SPEC"), strings.Split(os.Getenv("NRIFLOOR_DEVICES"), ","))
	}
	if err != nil {
		return err
	}
	p := &floor{adj: adj, annotation: ann}

	ln, err := net.Listen("tcp", fc.Metrics.Address)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.synced.Load() {
			http.Error(w, "not registered", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	closed := make(chan struct{})
	var once sync.Once
	s, err := stub.New(p, stub.WithPluginName(fc.Plugin.Name), stub.WithPluginIdx(fc.Plugin.Index),
		stub.WithSocketPath(fc.Plugin.Socket), stub.WithOnClose(func() { once.Do(func() { close(closed) }) }))
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		s.Stop()
		return nil
	case <-closed:
		return errors.New("the runtime closed the connection")
	}
}

// adjustment merges the spec's edits with those of the named devices and
// converts them once.
func adjustment(specPath string, devices []string) (*api.ContainerAdjustment, error) {
	data, err := os.ReadFile(specPath)
	if err != nil {
		return nil, fmt.Errorf("NRIFLOOR_SPEC: %w", err)
	}
	var spec cdi.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", specPath, err)
	}
	edits := spec.ContainerEdits
	for _, name := range devices {
		found := false
		for _, d := range spec.Devices {
			if d.Name == name {
				found = true
				edits.Env = append(edits.Env, d.ContainerEdits.Env...)
				edits.DeviceNodes = append(edits.DeviceNodes, d.ContainerEdits.DeviceNodes...)
				edits.Mounts = append(edits.Mounts, d.ContainerEdits.Mounts...)
				edits.Hooks = append(edits.Hooks, d.ContainerEdits.Hooks...)
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: no device %q", specPath, name)
		}
	}
	adj, warnings, err := nriadjust.ToAdjustment(&edits, nriadjust.Options{CgroupRules: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", specPath, err)
	}
	if len(warnings) > 0 {
		return nil, fmt.Errorf("%s: %s", specPath, strings.Join(warnings, "; "))
	}
	return adj, nil
}

// readAdjustment reads an adjustment written as protobuf JSON.
func readAdjustment(path string) (*api.ContainerAdjustment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("NRIFLOOR_ADJUSTMENT: %w", err)
	}
	adj := &api.ContainerAdjustment{}
	if err := protojson.Unmarshal(data, adj); err != nil {
		return nil, fmt.Errorf("NRIFLOOR_ADJUSTMENT %s: %w", path, err)
	}
	return adj, nil
}

// floor is the plugin.
type floor struct {
	adj        *api.ContainerAdjustment
	annotation string
	synced     atomic.Bool
}

func (p *floor) Configure(context.Context, string, string, string) (api.EventMask, error) {
	return api.MustParseEventMask("CreateContainer,RemoveContainer"), nil
}

func (p *floor) Synchronize(context.Context, []*api.PodSandbox, []*api.Container) ([]*api.ContainerUpdate, error) {
	p.synced.Store(true)
	return nil, nil
}

func (p *floor) CreateContainer(_ context.Context, pod *api.PodSandbox, _ *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	if _, ok := pod.GetAnnotations()[p.annotation]; !ok {
		return nil, nil, nil
	}
	return p.adj, nil, nil
}

func (p *floor) RemoveContainer(context.Context, *api.PodSandbox, *api.Container) error { return nil }
