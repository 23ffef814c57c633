package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/gpu-nri/gpu-nri/config"
	"github.com/gpu-nri/gpu-nri/pkg/cdispec"
	"github.com/gpu-nri/gpu-nri/pkg/dra"
	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/inventory"
	"github.com/gpu-nri/gpu-nri/pkg/libdir"
	"github.com/gpu-nri/gpu-nri/pkg/metrics"
	"github.com/gpu-nri/gpu-nri/pkg/nriadjust"
	"github.com/gpu-nri/gpu-nri/pkg/request"
)

// Options configure a Plugin.
type Options struct {
	// Config is the initial configuration (config.Default() when nil).
	Config *config.Config
	// Logger receives the plugin's logs (a new logrus logger when nil).
	Logger *logrus.Logger
	// Metrics, when set, is updated on every event.
	Metrics *metrics.Metrics
	// HostOptions say how the host is read for every configuration the
	// plugin runs (none: the real host, with NVML or nvidia-smi facts).
	HostOptions []hostsrc.Option
	// DRA, when set, is the DRA driver whose prepared claims decide the
	// containers that name claim devices; the watcher republishes its
	// ResourceSlices on every inventory change.
	DRA *dra.Driver
}

// Plugin is the NRI plugin. Create it with New, run it with Run.
type Plugin struct {
	opts  Options
	log   *logrus.Logger
	state atomic.Pointer[state]

	cgroupRules atomic.Bool
	registered  atomic.Bool
	// connectedAt is when the runtime accepted this connection's
	// registration (unix ns), 0 while not connected.
	connectedAt atomic.Int64

	// swapped tells the watcher loop that Configure replaced the state.
	swapped chan struct{}
}

// state is one configuration's worth of immutable machinery.
type state struct {
	cfg    *config.Config
	engine *engine.Engine
	host   *hostsrc.Host
	libdir *libdir.Manager // nil unless injection.libraryDir is set
}

// New builds the plugin and discovers the host once. A host without a driver
// is allowed: GPU requests then fail until a driver appears.
func New(o Options) (*Plugin, error) {
	if o.Config == nil {
		o.Config = config.Default()
	}
	if o.Logger == nil {
		o.Logger = logrus.New()
	}
	p := &Plugin{opts: o, log: o.Logger, swapped: make(chan struct{}, 1)}
	st, err := p.newState(o.Config)
	if err != nil {
		return nil, err
	}
	p.state.Store(st)
	return p, nil
}

func (p *Plugin) newState(cfg *config.Config) (*state, error) {
	eng, err := engine.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("plugin: %w", err)
	}
	hostOpts := append([]hostsrc.Option{hostsrc.WithCDIAutoRefresh()}, p.opts.HostOptions...)
	var ld *libdir.Manager
	if dir := cfg.Injection.LibraryDir; dir != "" {
		ld, err = libdir.New(dir, cfg.Host.View, libdir.WithSets(libdirSets(cfg)...))
		if err != nil {
			return nil, fmt.Errorf("plugin: injection.libraryDir: %w", err)
		}
		hostOpts = append(hostOpts, hostsrc.WithLibraryDirs(ld))
	}
	h, err := hostsrc.Open(cfg, hostOpts...)
	if err != nil {
		return nil, fmt.Errorf("plugin: %w", err)
	}
	if err := h.CDIErr(); err != nil {
		p.log.WithError(err).Warn("some CDI specs could not be loaded; the valid ones are served")
	}
	return &state{cfg: cfg, engine: eng, host: h, libdir: ld}, nil
}

// Ready reports whether the plugin is registered with a runtime and has an
// inventory; the error says what is missing.
func (p *Plugin) Ready() error {
	if !p.registered.Load() {
		if at := p.connectedAt.Load(); at != 0 {
			return fmt.Errorf("connected to the container runtime %s ago, but it has not synchronized gpu-nri (the last registration step), so it sends gpu-nri no containers",
				time.Since(time.Unix(0, at)).Round(time.Second))
		}
		return errors.New("not registered with the container runtime")
	}
	if st := p.state.Load(); st.host.Inventory() == nil {
		return fmt.Errorf("no inventory: %w", st.host.Err())
	}
	return nil
}

// Inventory returns the current inventory (nil when the host has none).
func (p *Plugin) Inventory() *inventory.Inventory { return p.state.Load().host.Inventory() }

// Configure is called by the runtime on registration. Pre-registered plugins
// receive their configuration file's text here.
func (p *Plugin) Configure(_ context.Context, cfgText, runtime, version string) (api.EventMask, error) {
	log := p.log.WithFields(logrus.Fields{"runtime": runtime, "runtime_version": version})
	if cfgText != "" {
		cfg, err := config.Parse([]byte(cfgText))
		if err != nil {
			log.WithError(err).Error("invalid configuration from the runtime")
			return 0, err
		}
		st, err := p.newState(cfg)
		if err != nil {
			return 0, err
		}
		p.swapState(st)
		log = log.WithField("config", "from runtime")
	}
	cfg := p.state.Load().cfg
	rules := nriadjust.CgroupRules(cfg.Injection.DeviceCgroupRules, runtime, version)
	p.cgroupRules.Store(rules)
	log.WithField("device_cgroup_rules", rules).Info("configured by runtime")
	return api.MustParseEventMask("CreateContainer,RemoveContainer"), nil
}

func (p *Plugin) swapState(st *state) {
	p.state.Store(st)
	select {
	case p.swapped <- struct{}{}:
	default: // a swap is already pending; the loop reloads the latest state
	}
}

// Synchronize is the runtime's last registration step: from here on it
// sends this plugin every CreateContainer. gpu-nri keeps no per-container
// state, so there is nothing to reconcile.
func (p *Plugin) Synchronize(context.Context, []*api.PodSandbox, []*api.Container) ([]*api.ContainerUpdate, error) {
	p.registered.Store(true)
	entry := p.log.WithFields(nil)
	if at := p.connectedAt.Load(); at != 0 {
		entry = entry.WithField("sync_wait_ms", float64(time.Since(time.Unix(0, at)).Microseconds())/1000)
	}
	entry.Info("registered with the container runtime")
	return nil, nil
}

// CreateContainer answers the runtime with the container's GPU adjustment.
//
// ctx carries the runtime's deadline for the request (ttrpc passes it on).
// An answer ready only after it is an answer nobody waits for: the runtime
// has already created the container without it or failed it. Such an
// answer is logged and counted as late, never as granted.
func (p *Plugin) CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	start := time.Now()
	p.opts.Metrics.CreateStarted(start)
	st := p.state.Load()
	in := InputFromNRI(pod, ctr)
	var a nriadjust.Answer
	if err := unseenCDIMarkers(in); err != nil {
		a.Fail(err)
	} else {
		a = p.decide(st, pod, ctr, in)
	}
	if err := ctx.Err(); err != nil {
		a = late(in, a, err, time.Since(start))
	}
	d := time.Since(start)
	p.audit(in, &a, d)
	p.opts.Metrics.CreateDone(d)
	if a.Err != nil {
		return nil, nil, a.Err
	}
	return a.Adjustment, nil, nil
}

// decide answers one container: a container that names DRA claim devices
// gets exactly those (engine.Grant; its own device requests are ignored)
// and loses its claim specs' guard mounts (dra.GuardDir), every other one
// what it asks for.
func (p *Plugin) decide(st *state, pod *api.PodSandbox, ctr *api.Container, in *request.Input) nriadjust.Answer {
	o := nriadjust.Options{CgroupRules: p.cgroupRules.Load(), Container: ctr}
	if d := p.opts.DRA; d != nil {
		g, ok, err := d.Grant(pod.GetUid(), in)
		if err != nil {
			var a nriadjust.Answer
			a.Fail(err)
			return a
		}
		if ok {
			a := nriadjust.DecideQuery(st.engine, st.host, engine.Query{Input: in, Grant: g}, o)
			if a.Adjustment != nil {
				for _, p := range dra.GuardMounts(in.Env) { // the claim specs' guards: injected now
					a.Adjustment.RemoveMount(p)
				}
			}
			return a
		}
	}
	return nriadjust.Decide(st.engine, st.host, in, o)
}

// audit counts the answer and logs its one audit line (docs/logging.md).
// RemoveContainer is the backstop for a driver file that vanished between
// two inventory refreshes: a container removed without ever starting whose
// runtime error says a file of the current inventory was missing (runc's
// "error mounting ...: no such file or directory") makes the watcher
// rediscover now. The runtime sends no event when the start itself fails,
// so this is the first one that carries the error. String work only.
func (p *Plugin) RemoveContainer(_ context.Context, _ *api.PodSandbox, ctr *api.Container) error {
	if ctr.GetStartedAt() != 0 {
		return nil
	}
	st := p.state.Load()
	w := st.host.Watcher()
	f, ok := w.Current().VanishedFile(ctr.GetStatusMessage())
	if !ok {
		return nil
	}
	p.log.WithFields(logrus.Fields{"container": ctr.GetName(), "file": f.HostPath, "queued": w.Kick()}).
		Warn("a container failed to start because a driver file vanished; rediscovering the host")
	return nil
}

// late turns a into the answer to a request whose deadline passed while it
// was decided: no adjustment, no devices, an error saying what happened and
// what the decision would have been.
func late(in *request.Input, a nriadjust.Answer, ctxErr error, d time.Duration) nriadjust.Answer {
	decided := a.Outcome
	a.Outcome = engine.OutcomeLate
	a.Adjustment = nil
	a.Err = fmt.Errorf("gpu-nri: container %s: answered after %s, past the runtime's deadline for the request (decision: %s); "+
		"the runtime no longer waits for this answer and has created or failed the container without gpu-nri: %w",
		in.Who(), d.Round(time.Millisecond), decided, ctxErr)
	return a
}

func (p *Plugin) audit(in *request.Input, a *nriadjust.Answer, d time.Duration) {
	if m := p.opts.Metrics; m != nil {
		n := 0
		if a.Outcome == engine.OutcomeInjected && a.Result != nil {
			n = len(a.Result.Devices)
		}
		m.ObserveCreate(a.Outcome, n, d)
		if r := a.Result; a.Outcome == engine.OutcomeInjected && r != nil && len(r.Selection.Capabilities) > 0 &&
			p.state.Load().cfg.Injection.LibraryDir != "" {
			m.ObserveLibraryMounts(r.Selection.LibraryDir != nil)
		}
	}
	if a.Outcome == engine.OutcomeNotGPU {
		if p.log.IsLevelEnabled(logrus.DebugLevel) { // the common case costs no fields
			p.log.WithFields(logrus.Fields(a.AuditFields(in))).Debug("not a GPU container")
		}
		return
	}
	fields := logrus.Fields(a.AuditFields(in))
	fields["duration_ms"] = float64(d.Microseconds()) / 1000
	entry := p.log.WithFields(fields)
	for _, w := range a.Warnings {
		entry.Warn(w)
	}
	switch a.Outcome {
	case engine.OutcomeInjected:
		entry.Info("GPU request granted")
	case engine.OutcomeRefused:
		entry.WithError(a.Err).Warn("GPU request refused")
	case engine.OutcomeLate:
		entry.WithError(a.Err).Error("GPU request answered late")
	default:
		entry.WithError(a.Err).Error("GPU request failed")
	}
}

// InputFromNRI extracts the request input from an NRI pod and container.
// The container's name is NRI's; CRI-O takes that from the label
// io.kubernetes.container.name, which only the kubelet sets, so for a plain
// CRI client (crictl, a test harness) it is empty and the name falls back
// to the CRI metadata name CRI-O records in the io.kubernetes.cri-o.Metadata
// annotation (JSON, {"name": ...}); without it annotations by container
// name would silently match nothing.
func InputFromNRI(pod *api.PodSandbox, ctr *api.Container) *request.Input {
	name := ctr.GetName()
	if name == "" {
		var md struct {
			Name string `json:"name"`
		}
		if raw := ctr.GetAnnotations()["io.kubernetes.cri-o.Metadata"]; raw != "" && json.Unmarshal([]byte(raw), &md) == nil {
			name = md.Name
		}
	}
	in := &request.Input{
		Namespace:      pod.GetNamespace(),
		Pod:            pod.GetName(),
		Container:      name,
		Env:            ctr.GetEnv(),
		PodAnnotations: pod.GetAnnotations(),
		Annotations:    ctr.GetAnnotations(),
	}
	for _, m := range ctr.GetMounts() {
		in.Mounts = append(in.Mounts, request.Mount{Source: m.GetSource(), Destination: m.GetDestination()})
	}
	for _, d := range ctr.GetCDIDevices() {
		in.CDIDevices = append(in.CDIDevices, d.GetName())
	}
	return in
}

// warmUp runs the create path once on a synthetic request before the
// daemon registers: the NRI request decoded from its wire form, a decision
// for all GPUs with the default capabilities, the answer's audit fields
// formatted and the adjustment encoded. The first real container then does
// not pay the path's first-use costs (its code's page faults, protobuf's
// lazily built coders): 0.3 ms of gpu-nri's own after a restart, measured
// by nrirtt's cold mode (docs/benchmarks.md). Nothing is logged, counted
// or kept; errors only mean less is warmed.
func (p *Plugin) warmUp() {
	req := &api.CreateContainerRequest{
		Pod: &api.PodSandbox{Id: "warm-up", Name: "gpu-nri-warm-up", Uid: "warm-up", Namespace: "gpu-nri-warm-up",
			Labels: map[string]string{"k": "v"}, Annotations: map[string]string{"k": "v"}},
		Container: &api.Container{Id: "warm-up", PodSandboxId: "warm-up", Name: "warm-up",
			Labels: map[string]string{"k": "v"}, Annotations: map[string]string{"k": "v"},
			Env: []string{"NVIDIA_VISIBLE_DEVICES=all"}, Args: []string{"true"},
			Mounts: []*api.Mount{{Destination: "/etc/hosts", Source: "/etc/hosts", Type: "bind", Options: []string{"rbind", "ro"}}}},
	}
	if data, err := proto.Marshal(req); err == nil {
		_ = proto.Unmarshal(data, req)
	}
	st := p.state.Load()
	in := InputFromNRI(req.GetPod(), req.GetContainer())
	a := nriadjust.Decide(st.engine, st.host, in, nriadjust.Options{CgroupRules: p.cgroupRules.Load(), Container: req.GetContainer()})
	fields := logrus.Fields(a.AuditFields(in))
	fields["duration_ms"] = 0.0
	_, _ = p.log.Formatter.Format(p.log.WithFields(fields))
	if a.Adjustment != nil {
		_, _ = proto.Marshal(&api.CreateContainerResponse{Adjust: a.Adjustment})
	}
}

// watchLoop keeps the current state's inventory fresh until ctx ends,
// moving to the new state's watcher whenever Configure replaces it.
func (p *Plugin) watchLoop(ctx context.Context) {
	for {
		st := p.state.Load()
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.runWatcher(wctx, st)
		}()
		select {
		case <-ctx.Done():
		case <-p.swapped:
		}
		cancel()
		<-done
		if ctx.Err() != nil {
			return
		}
	}
}

// libdirSets are the capability sets whose library directories are built
// for every inventory before a container asks: the configured defaults,
// NVIDIA's images' compute,utility, and every supported capability (what
// NVIDIA_DRIVER_CAPABILITIES=all asks for).
func libdirSets(cfg *config.Config) [][]inventory.Capability {
	conv := func(in []string) []inventory.Capability {
		out := make([]inventory.Capability, len(in))
		for i, c := range in {
			out[i] = inventory.Capability(c)
		}
		return out
	}
	return [][]inventory.Capability{conv(cfg.Injection.DefaultCapabilities),
		{inventory.Compute, inventory.Utility}, conv(cfg.Injection.SupportedCapabilities)}
}

// runWatcher polls the host for st until ctx ends (no polling when
// host.refreshInterval is 0), and keeps st's library directories.
func (p *Plugin) runWatcher(ctx context.Context, st *state) {
	if st.libdir != nil {
		log := p.log.WithField("dir", st.cfg.Injection.LibraryDir)
		built := make(chan struct{})
		go func() {
			defer close(built)
			st.libdir.Run(ctx, st.host.Inventory, func(err error) {
				log.WithError(err).Error("library directory not built; those containers get per-file mounts")
			})
		}()
		defer func() { <-built }() // detached when ctx ends
	}
	p.opts.Metrics.SetComputeReady(st.host.Inventory()) // the state's inventory, refreshed or not
	p.writeOwnSpec(st)
	p.publishDRA(ctx, st)
	interval := st.cfg.Host.RefreshInterval.Std()
	if interval <= 0 {
		<-ctx.Done()
		return
	}
	st.host.Watcher().Run(ctx, interval, func(old, cur *inventory.Inventory, err error) {
		if errors.Is(err, inventory.ErrWatchUnavailable) { // the inventory is fine; only the watch is down
			p.log.WithError(err).Warn("inventory watch unavailable; polling the fingerprint every 250ms and host.refreshInterval")
			return
		}
		if m := p.opts.Metrics; m != nil {
			m.InventoryRefresh(err)
			m.SetComputeReady(st.host.Inventory())
		}
		switch {
		case err != nil:
			p.log.WithError(err).Error("inventory refresh failed; GPU requests fail until the driver is back")
		case cur != nil:
			prev := ""
			if old != nil {
				prev = old.DriverVersion
			}
			p.log.WithFields(logrus.Fields{"driver_version": cur.DriverVersion, "previous_driver_version": prev,
				"gpus": len(cur.GPUs)}).Info("host inventory changed")
			p.writeOwnSpec(st)
			p.publishDRA(ctx, st)
		}
	})
}

// publishDRA republishes the DRA driver's ResourceSlices from st's
// inventory (nothing when DRA is off).
func (p *Plugin) publishDRA(ctx context.Context, st *state) {
	d := p.opts.DRA
	if d == nil {
		return
	}
	inv := st.host.Inventory()
	if err := d.Publish(ctx, inv); err != nil {
		p.log.WithError(err).Error("cannot publish the DRA ResourceSlices")
		return
	}
	n := len(dra.Devices(inv))
	p.log.WithField("devices", n).Info("published the DRA ResourceSlices")
}

// writeOwnSpec keeps the marker spec of gpu-nri's CDI kind
// (cdispec.Markers: the names by index and UUID, no host edits) in
// injection.cdiOwnSpecDir when that is set: a runtime that resolves CDI
// before NRI then accepts gpu-nri's names and injects nothing itself.
func (p *Plugin) writeOwnSpec(st *state) {
	dir := st.cfg.Injection.CDIOwnSpecDir
	if dir == "" {
		return
	}
	log := p.log.WithField("dir", dir)
	inv := st.host.Inventory()
	if inv == nil {
		log.Warn("no GPU inventory: gpu-nri's own CDI spec is not written (the runtime fails containers that name its devices)")
		return
	}
	full, _, err := cdispec.Generate(st.engine, inv, cdispec.Options{Kind: st.cfg.Injection.CDIKind, NameStrategy: cdispec.NameBoth})
	var m *specs.Spec
	if err == nil {
		m, err = cdispec.Markers(full)
	}
	path := ""
	if err == nil {
		path, err = cdispec.Write(m, dir, cdispec.FormatYAML)
	}
	if err != nil {
		log.WithError(err).Error("cannot write gpu-nri's own CDI spec (injection.cdiOwnSpecDir)")
		return
	}
	log.WithFields(logrus.Fields{"path": path, "devices": len(m.Devices)}).Info("wrote gpu-nri's own CDI spec (names only, no host edits)")
}

// Run connects to the runtime and serves until ctx ends. In external mode it
// reconnects with backoff whenever the runtime closes the connection; in
// pre-registered mode (NRI_PLUGIN_SOCKET set by the runtime) it returns when
// the connection closes, since the runtime starts a new instance.
func (p *Plugin) Run(ctx context.Context) error {
	preRegistered := os.Getenv("NRI_PLUGIN_SOCKET") != ""
	ctx, cancel := context.WithCancel(ctx)
	watching := make(chan struct{})
	go func() { defer close(watching); p.watchLoop(ctx) }()
	defer func() { cancel(); <-watching }() // the library directories are detached before Run returns
	p.warmUp()
	cfg := p.state.Load().cfg
	backoff := cfg.Plugin.ReconnectMin.Std()
	for {
		var opts []stub.Option
		if !preRegistered {
			opts = append(opts, stub.WithPluginName(cfg.Plugin.Name), stub.WithPluginIdx(cfg.Plugin.Index),
				stub.WithSocketPath(cfg.Plugin.Socket))
		}
		closed := make(chan struct{})
		var once sync.Once
		opts = append(opts, stub.WithLogger(nriLogger{p.log}),
			stub.WithOnClose(func() { once.Do(func() { close(closed) }) }),
			stub.WithFailurePolicy(failurePolicy()))
		s, err := stub.New(p, opts...)
		if err != nil {
			return fmt.Errorf("plugin: %w", err)
		}
		connectedAt := time.Now()
		err = s.Start(ctx)
		if err == nil {
			p.setConnected(true)
			at := time.Now()
			p.connectedAt.Store(at.UnixNano())
			p.log.WithField("socket", cfg.Plugin.Socket).Info("connected to the container runtime")
			syncWait := time.AfterFunc(cfg.Plugin.SyncTimeout.Std(), func() { p.syncOverdue(at) })
			select {
			case <-closed:
			case <-ctx.Done():
				s.Stop()
			}
			syncWait.Stop()
			p.connectedAt.Store(0)
			p.registered.Store(false)
			p.setConnected(false)
		}
		if ctx.Err() != nil {
			return nil
		}
		if preRegistered {
			if err != nil {
				return fmt.Errorf("plugin: pre-registered start: %w", err)
			}
			p.log.Info("runtime closed the connection; exiting (the runtime restarts pre-registered plugins)")
			return nil
		}
		if err == nil && time.Since(connectedAt) > cfg.Plugin.ReconnectMax.Std() {
			backoff = cfg.Plugin.ReconnectMin.Std()
		}
		entry := p.log.WithField("retry_in", backoff.String())
		if err != nil {
			entry.WithError(err).Warn("cannot connect to the container runtime")
		} else {
			entry.Warn("container runtime closed the connection")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		if m := p.opts.Metrics; m != nil {
			m.Reconnect()
		}
		backoff = min(2*backoff, cfg.Plugin.ReconnectMax.Std())
	}
}

// failurePolicy is what gpu-nri asks of a runtime whose NRI knows failure
// policies (NRI v0.12.4+; older runtimes ignore it): a request gpu-nri
// cannot answer in time or loses on a dropped connection fails, instead of
// going on without gpu-nri (fail_request), since a GPU container must not
// start without its GPUs; and a plugin past the request timeout is
// disconnected (keep_connected false), so a stalled gpu-nri delays one
// request by the timeout, not every request on the node, and reconnects
// once it runs again. The failed container is retried by the kubelet.
func failurePolicy() *api.FailurePolicy {
	return &api.FailurePolicy{FailRequest: true, KeepConnected: false}
}

// syncOverdue reports a runtime that accepted the registration made at at
// but has not synchronized gpu-nri within plugin.syncTimeout. Until it
// does, the runtime sends gpu-nri no containers. containerd 2.x can
// deadlock at this step (docs/deploy.md): the wait then never ends, and
// every pod and container start on the node waits with it.
func (p *Plugin) syncOverdue(at time.Time) {
	if p.registered.Load() || p.connectedAt.Load() != at.UnixNano() {
		return
	}
	p.log.WithField("waited", time.Since(at).Round(time.Second).String()).Error(
		"the container runtime accepted gpu-nri's registration but has not synchronized it: until it does it sends gpu-nri no containers; " +
			"if pod and container starts on this node hang too, containerd 2.x's plugin-sync deadlock is likely (docs/deploy.md), which only a containerd restart ends")
}

func (p *Plugin) setConnected(v bool) {
	if m := p.opts.Metrics; m != nil {
		m.SetConnected(v)
	}
}

// nriLogger routes the NRI stub's logs through logrus.
type nriLogger struct{ l *logrus.Logger }

func (n nriLogger) Debugf(_ context.Context, f string, a ...any) { n.l.Debugf("nri: "+f, a...) }
func (n nriLogger) Infof(_ context.Context, f string, a ...any)  { n.l.Debugf("nri: "+f, a...) }
func (n nriLogger) Warnf(_ context.Context, f string, a ...any)  { n.l.Warnf("nri: "+f, a...) }
func (n nriLogger) Errorf(_ context.Context, f string, a ...any) { n.l.Errorf("nri: "+f, a...) }
