package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"github.com/spf13/cobra"

	"github.com/gpu-nri/gpu-nri/pkg/engine"
	"github.com/gpu-nri/gpu-nri/pkg/explain"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
	"github.com/gpu-nri/gpu-nri/pkg/libdir"
	"github.com/gpu-nri/gpu-nri/pkg/nriadjust"
	"github.com/gpu-nri/gpu-nri/plugin"
)

// criContainerConfig is the part of a CRI ContainerConfig (k8s.io/cri-api
// runtime/v1, JSON as crictl reads it) that gpu-nri looks at.
type criContainerConfig struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Envs []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"envs"`
	Mounts []struct {
		ContainerPath string `json:"container_path"`
		HostPath      string `json:"host_path"`
	} `json:"mounts"`
	Annotations map[string]string `json:"annotations"`
	CDIDevices  []struct {
		Name string `json:"name"`
	} `json:"CDI_devices"`
}

// criPodConfig is the part of a CRI PodSandboxConfig gpu-nri looks at.
type criPodConfig struct {
	Metadata struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Annotations map[string]string `json:"annotations"`
}

type explainFlags struct {
	host                      hostFlags
	env, annotations, mounts  []string
	ctrAnnotations, cdiDevs   []string
	namespace, pod, container string
	containerConfig           string
	podConfig                 string
	output                    string
	oci                       bool
	runtime, runtimeVersion   string
}

// newExplainCmd builds `gpu-nri explain`; host are extra host options (none
// in the binary; tests read a simulated host's node table).
func newExplainCmd(host ...hostsrc.Option) *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Show what gpu-nri would inject into a container, and why (offline)",
		Long: `Evaluate a container's GPU request offline, with the daemon's own decision
function, against this host's inventory (or the one --host-root/--driver-root/
--dev-root/--proc-root or --config name) and the active configuration. Prints
the parsed request, the policy decision with the rule that decided it, and the
exact edits: device nodes, mounts, environment and hooks.

The request comes from flags (--env, --annotation, --mount, --cdi-device) or
from the CRI JSON crictl takes (--container-config, --pod-config); flags add
to the files. --oci applies the NRI adjustment to a minimal OCI spec with NRI's
runtime-tools generator (the code containerd and CRI-O run) and prints the
spec diff.

Exit status: 0 when the container would be created (with or without GPUs),
1 when the daemon would fail it (the report is still printed).`,
		Example: `  gpu-nri explain --env NVIDIA_VISIBLE_DEVICES=0 --env NVIDIA_DRIVER_CAPABILITIES=compute,utility
  gpu-nri explain --namespace team-a --pod trainer --container main --annotation gpus.gpu-nri.io/container.main=0,1
  gpu-nri explain --container-config ctr.json --pod-config pod.json -o json
  gpu-nri explain --env NVIDIA_VISIBLE_DEVICES=all --oci
  gpu-nri explain --config /etc/gpu-nri/config.yaml --env NVIDIA_VISIBLE_DEVICES=1 --env NVIDIA_REQUIRE_CUDA="cuda>=12.4"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, host)
		},
	}
	fl := cmd.Flags()
	f.host.register(fl)
	fl.StringArrayVarP(&f.env, "env", "e", nil, "container environment KEY=VALUE (repeatable)")
	fl.StringArrayVarP(&f.annotations, "annotation", "a", nil, "pod annotation KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.ctrAnnotations, "container-annotation", nil, "container annotation KEY=VALUE, as the runtime passes it to NRI (repeatable)")
	fl.StringArrayVar(&f.mounts, "mount", nil, "container mount HOSTPATH:CONTAINERPATH (repeatable; device-plugin volume-mounts)")
	fl.StringArrayVar(&f.cdiDevs, "cdi-device", nil, "CRI CDI device name, e.g. nvidia.com/gpu=0 (repeatable)")
	fl.StringVarP(&f.namespace, "namespace", "n", "default", "pod namespace")
	fl.StringVar(&f.pod, "pod", "explain", "pod name")
	fl.StringVar(&f.container, "container", "main", "container name")
	fl.StringVar(&f.containerConfig, "container-config", "", "CRI ContainerConfig JSON file (as for crictl create)")
	fl.StringVar(&f.podConfig, "pod-config", "", "CRI PodSandboxConfig JSON file (as for crictl runp)")
	fl.StringVarP(&f.output, "output", "o", explain.FormatText, "output: text, json or yaml")
	fl.BoolVar(&f.oci, "oci", false, "apply the NRI adjustment to a minimal OCI spec and print the diff")
	fl.StringVar(&f.runtime, "runtime", "containerd", "runtime assumed for injection.deviceCgroupRules=auto (containerd or cri-o)")
	fl.StringVar(&f.runtimeVersion, "runtime-version", "2.2", "runtime version assumed for injection.deviceCgroupRules=auto")
	return cmd
}

func splitKV(flag, s, sep string) (string, string, error) {
	k, v, ok := strings.Cut(s, sep)
	if !ok || k == "" {
		return "", "", fmt.Errorf("--%s %q: want KEY%sVALUE", flag, s, sep)
	}
	return k, v, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// nri builds the NRI pod and container the runtime would send.
func (f *explainFlags) nri(cmd *cobra.Command) (*api.PodSandbox, *api.Container, error) {
	flags := cmd.Flags()
	pod := &api.PodSandbox{Id: "explain-pod", Name: f.pod, Namespace: f.namespace, Annotations: map[string]string{}}
	ctr := &api.Container{Id: "explain-container", PodSandboxId: pod.Id, Name: f.container, Annotations: map[string]string{}}
	if f.podConfig != "" {
		var pc criPodConfig
		if err := readJSON(f.podConfig, &pc); err != nil {
			return nil, nil, fmt.Errorf("--pod-config: %w", err)
		}
		if pc.Metadata.Name != "" && !flags.Changed("pod") {
			pod.Name = pc.Metadata.Name
		}
		if pc.Metadata.Namespace != "" && !flags.Changed("namespace") {
			pod.Namespace = pc.Metadata.Namespace
		}
		pod.Uid = pc.Metadata.UID
		for k, v := range pc.Annotations {
			pod.Annotations[k] = v
		}
	}
	if f.containerConfig != "" {
		var cc criContainerConfig
		if err := readJSON(f.containerConfig, &cc); err != nil {
			return nil, nil, fmt.Errorf("--container-config: %w", err)
		}
		if cc.Metadata.Name != "" && !flags.Changed("container") {
			ctr.Name = cc.Metadata.Name
		}
		for _, e := range cc.Envs {
			ctr.Env = append(ctr.Env, e.Key+"="+e.Value)
		}
		for _, m := range cc.Mounts {
			ctr.Mounts = append(ctr.Mounts, &api.Mount{Source: m.HostPath, Destination: m.ContainerPath, Type: "bind"})
		}
		for k, v := range cc.Annotations {
			ctr.Annotations[k] = v
		}
		for _, d := range cc.CDIDevices {
			ctr.CDIDevices = append(ctr.CDIDevices, &api.CDIDevice{Name: d.Name})
		}
	}
	for _, e := range f.env {
		if _, _, err := splitKV("env", e, "="); err != nil {
			return nil, nil, err
		}
		ctr.Env = append(ctr.Env, e)
	}
	for _, a := range f.annotations {
		k, v, err := splitKV("annotation", a, "=")
		if err != nil {
			return nil, nil, err
		}
		pod.Annotations[k] = v
	}
	for _, a := range f.ctrAnnotations {
		k, v, err := splitKV("container-annotation", a, "=")
		if err != nil {
			return nil, nil, err
		}
		ctr.Annotations[k] = v
	}
	for _, m := range f.mounts {
		src, dst, err := splitKV("mount", m, ":")
		if err != nil {
			return nil, nil, err
		}
		ctr.Mounts = append(ctr.Mounts, &api.Mount{Source: src, Destination: dst, Type: "bind"})
	}
	for _, d := range f.cdiDevs {
		ctr.CDIDevices = append(ctr.CDIDevices, &api.CDIDevice{Name: d})
	}
	return pod, ctr, nil
}

func (f *explainFlags) run(cmd *cobra.Command, base []hostsrc.Option) error {
	switch f.output {
	case explain.FormatText, explain.FormatJSON, explain.FormatYAML:
	default:
		return fmt.Errorf("--output %q: want text, json or yaml", f.output)
	}
	cfg, err := f.host.load(cmd.Flags())
	if err != nil {
		return err
	}
	pod, ctr, err := f.nri(cmd)
	if err != nil {
		return err
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return err
	}
	// The host as the daemon reads it. A host without a driver is a valid
	// answer: GPU requests then fail with the daemon's "no NVIDIA driver"
	// error. Broken third-party CDI specs do not stop gpu-nri's own
	// devices; the valid ones are served, as in the daemon.
	hostOpts := f.host.hostOptions(base)
	if dir := cfg.Injection.LibraryDir; dir != "" { // the daemon's directories, as they are on disk now
		hostOpts = append(hostOpts, hostsrc.WithLibraryDirs(libdir.Disk{Root: dir, View: cfg.Host.View}))
	}
	h, err := hostsrc.Open(cfg, hostOpts...)
	if err != nil {
		return err
	}
	rules := nriadjust.CgroupRules(cfg.Injection.DeviceCgroupRules, f.runtime, f.runtimeVersion)
	rep := explain.Build(eng, h, plugin.InputFromNRI(pod, ctr), explain.Options{CgroupRules: rules, OCI: f.oci})
	if err := rep.Write(cmd.OutOrStdout(), f.output); err != nil {
		return err
	}
	if rep.Err() != nil {
		return fmt.Errorf("the daemon would fail this container (%s)", rep.Outcome)
	}
	return nil
}
