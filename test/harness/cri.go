package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI is a CRI v1 client (RuntimeService and ImageService) over
// containerd's gRPC socket.
type CRI struct {
	conn    *grpc.ClientConn
	Runtime runtime.RuntimeServiceClient
	Image   runtime.ImageServiceClient
}

// DialCRI connects to a CRI socket (no I/O until the first call).
func DialCRI(socket string) (*CRI, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("harness: CRI %s: %w", socket, err)
	}
	return &CRI{conn: conn, Runtime: runtime.NewRuntimeServiceClient(conn), Image: runtime.NewImageServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// Version asks the runtime's CRI version (the readiness probe).
func (c *CRI) Version(ctx context.Context) (*runtime.VersionResponse, error) {
	return c.Runtime.Version(ctx, &runtime.VersionRequest{Version: "v1"})
}

// PodConfig describes a host-network pod sandbox.
type PodConfig struct {
	Name, Namespace string
	Annotations     map[string]string
	// RuntimeHandler picks containerd's runtime ("" = the default, runc).
	RuntimeHandler string
	// CgroupParent is the cgroupfs parent (e.g. /gpu-nri-e2e).
	CgroupParent string
	// LogDir is where the pod's container logs go.
	LogDir string
	// PID is the PID namespace mode of the pod and its containers
	// (CRIRuntime.PodPID; the zero value is CRI's default, a pod namespace).
	PID runtime.NamespaceMode
}

// Pod is a running pod sandbox.
type Pod struct {
	ID     string
	Config *runtime.PodSandboxConfig
	cri    *CRI
}

// namespaces are the pod's namespace options (host network, the pod's PID
// mode), also given to each of its containers.
func (p *Pod) namespaces() *runtime.NamespaceOption {
	if p.Config == nil || p.Config.Linux == nil || p.Config.Linux.SecurityContext == nil {
		return nil
	}
	return p.Config.Linux.SecurityContext.NamespaceOptions
}

// RunPod starts a pod sandbox (host network: no CNI needed).
func (c *CRI) RunPod(ctx context.Context, pc PodConfig) (*Pod, error) {
	if err := os.MkdirAll(pc.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("harness: pod %s: %w", pc.Name, err)
	}
	cfg := &runtime.PodSandboxConfig{
		Metadata: &runtime.PodSandboxMetadata{
			Name: pc.Name, Namespace: pc.Namespace,
			Uid: fmt.Sprintf("uid-%s-%d", pc.Name, time.Now().UnixNano()),
		},
		LogDirectory: pc.LogDir,
		Annotations:  pc.Annotations,
		Linux: &runtime.LinuxPodSandboxConfig{
			CgroupParent: pc.CgroupParent,
			SecurityContext: &runtime.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE, Pid: pc.PID},
			},
		},
	}
	resp, err := c.Runtime.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg, RuntimeHandler: pc.RuntimeHandler})
	if err != nil {
		return nil, fmt.Errorf("harness: run pod %s: %w", pc.Name, err)
	}
	return &Pod{ID: resp.PodSandboxId, Config: cfg, cri: c}, nil
}

// Remove stops the pod, removes its containers and then the pod, in the
// kubelet's order: the kubelet's garbage collector removes a sandbox only
// once it has no containers left.
//
// Removing a sandbox that still has containers is what a plain CRI client
// may do, but on containerd 2.x it can deadlock the node: RemovePodSandbox
// takes NRI's plugin-sync read lock and, holding it, calls RemoveContainer,
// which takes it again; a plugin that registers in between queues the
// write side, the inner read waits behind it and the writer waits for the
// outer read, and every later CRI lifecycle call queues too, until
// containerd restarts (docs/faults.md, docs/deploy.md).
func (p *Pod) Remove(ctx context.Context) error {
	_, errStop := p.cri.Runtime.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.ID})
	errs := []error{errStop}
	resp, err := p.cri.Runtime.ListContainers(ctx, &runtime.ListContainersRequest{
		Filter: &runtime.ContainerFilter{PodSandboxId: p.ID}})
	errs = append(errs, err)
	if err == nil {
		for _, c := range resp.Containers {
			_, err := p.cri.Runtime.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: c.Id})
			errs = append(errs, err)
		}
	}
	_, err = p.cri.Runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.ID})
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("harness: remove pod %s: %w", p.ID, err)
	}
	return nil
}

// Status is the pod's CRI status.
func (p *Pod) Status(ctx context.Context) (*runtime.PodSandboxStatus, error) {
	resp, err := p.cri.Runtime.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{PodSandboxId: p.ID})
	if err != nil {
		return nil, fmt.Errorf("harness: pod %s status: %w", p.ID, err)
	}
	return resp.Status, nil
}

// Container describes a container of a pod.
type Container struct {
	Name, Image string
	// Command is the full argv (image entrypoint and cmd are replaced).
	Command     []string
	Env         map[string]string
	Mounts      []*runtime.Mount
	Annotations map[string]string
	// CDIDevices are CRI CDIDevices (the kubelet's, for a device plugin's
	// cdi-cri strategy or DRA): resolved by the runtime before NRI.
	CDIDevices []string
	// NoKubeletLabels leaves out the labels the kubelet puts on every
	// container (io.kubernetes.container.name, io.kubernetes.pod.*): a plain
	// CRI client such as crictl. CRI-O names the NRI container after
	// io.kubernetes.container.name.
	NoKubeletLabels bool
}

// CreateError is a refused CreateContainer: Message is the runtime's text
// (the gRPC status message, where gpu-nri's error ends up).
type CreateError struct {
	Container string
	Message   string
	Err       error
}

func (e *CreateError) Error() string {
	return fmt.Sprintf("harness: create container %s: %s", e.Container, e.Message)
}

func (e *CreateError) Unwrap() error { return e.Err }

// Create creates a container; a refusal is a *CreateError.
func (p *Pod) Create(ctx context.Context, c Container) (string, error) {
	cfg := &runtime.ContainerConfig{
		Metadata:    &runtime.ContainerMetadata{Name: c.Name},
		Image:       &runtime.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}, // as the kubelet sets it (CRI-O checks signatures against it)
		Command:     c.Command,
		Mounts:      c.Mounts,
		Annotations: c.Annotations,
		LogPath:     c.Name + ".log",
	}
	if !c.NoKubeletLabels && p.Config != nil && p.Config.Metadata != nil {
		md := p.Config.Metadata
		cfg.Labels = map[string]string{
			"io.kubernetes.container.name": c.Name, "io.kubernetes.pod.name": md.Name,
			"io.kubernetes.pod.namespace": md.Namespace, "io.kubernetes.pod.uid": md.Uid,
		}
	}
	if ns := p.namespaces(); ns != nil && ns.Pid != runtime.NamespaceMode_POD {
		cfg.Linux = &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Network: ns.Network, Pid: ns.Pid},
		}}
	}
	for _, n := range c.CDIDevices {
		cfg.CDIDevices = append(cfg.CDIDevices, &runtime.CDIDevice{Name: n})
	}
	for _, k := range sortedKeys(c.Env) {
		cfg.Envs = append(cfg.Envs, &runtime.KeyValue{Key: k, Value: []byte(c.Env[k])})
	}
	resp, err := p.cri.Runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: p.ID, Config: cfg, SandboxConfig: p.Config})
	if err != nil {
		msg := err.Error()
		if s, ok := status.FromError(err); ok {
			msg = s.Message()
		}
		return "", &CreateError{Container: c.Name, Message: msg, Err: err}
	}
	return resp.ContainerId, nil
}

// Start starts a created container.
func (p *Pod) Start(ctx context.Context, id string) error {
	if _, err := p.cri.Runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("harness: start container %s: %w", id, err)
	}
	return nil
}

// WaitExit polls the container until it exits (or ctx ends) and returns
// its final status.
func (p *Pod) WaitExit(ctx context.Context, id string) (*runtime.ContainerStatus, error) {
	for {
		resp, err := p.cri.Runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			return nil, fmt.Errorf("harness: container %s status: %w", id, err)
		}
		if resp.Status.State == runtime.ContainerState_CONTAINER_EXITED {
			return resp.Status, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("harness: container %s still %s: %w", id, resp.Status.State, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Logs reads a container's CRI log file (stdout and stderr, in order).
func (p *Pod) Logs(st *runtime.ContainerStatus) (string, error) {
	data, err := os.ReadFile(st.LogPath)
	if err != nil {
		return "", fmt.Errorf("harness: container log: %w", err)
	}
	return ParseCRILog(string(data)), nil
}

// ParseCRILog turns CRI log lines ("TIME STREAM P|F TEXT") into the text the
// container wrote; partial (P) lines are joined with the next.
func ParseCRILog(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		parts := strings.SplitN(line, " ", 4)
		if len(parts) < 3 {
			continue
		}
		text := ""
		if len(parts) == 4 {
			text = parts[3]
		}
		b.WriteString(text)
		if parts[2] != "P" {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Spec is the container's final OCI spec as the runtime holds it (after
// NRI's adjustments): the runtimeSpec of ContainerStatus's verbose info.
func (c *CRI) Spec(ctx context.Context, id string) (*rspec.Spec, error) {
	resp, err := c.Runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("harness: container %s status: %w", id, err)
	}
	var info struct {
		RuntimeSpec *rspec.Spec `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		return nil, fmt.Errorf("harness: container %s verbose info: %w", id, err)
	}
	if info.RuntimeSpec == nil {
		return nil, fmt.Errorf("harness: container %s: no runtimeSpec in verbose info", id)
	}
	return info.RuntimeSpec, nil
}

// Result is one container run to completion.
type Result struct {
	ID       string
	Output   string
	ExitCode int32
	Spec     *rspec.Spec
}

// Run creates, starts and waits for a container (up to timeout) and
// returns its output and final spec. A refused create is a *CreateError.
func (p *Pod) Run(ctx context.Context, c Container, timeout time.Duration) (Result, error) {
	id, err := p.Create(ctx, c)
	if err != nil {
		return Result{}, err
	}
	res := Result{ID: id}
	if res.Spec, err = p.cri.Spec(ctx, id); err != nil {
		return res, err
	}
	if err := p.Start(ctx, id); err != nil {
		return res, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := p.WaitExit(wctx, id)
	if err != nil {
		return res, err
	}
	res.ExitCode = st.ExitCode
	res.Output, err = p.Logs(st)
	return res, err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}
