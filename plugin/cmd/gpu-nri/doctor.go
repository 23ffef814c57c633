package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gpu-nri/gpu-nri/pkg/doctor"
	"github.com/gpu-nri/gpu-nri/pkg/hostsrc"
)

// errUnhealthy makes the command exit 1 after the report was printed.
var errUnhealthy = errors.New("the node needs attention (see the findings above)")

// newDoctorCmd builds `gpu-nri doctor`; base are extra host options (none
// in the binary; tests read a simulated host's node table).
func newDoctorCmd(base ...hostsrc.Option) *cobra.Command {
	var (
		host             hostFlags
		containerd, crio string
		criSocket        string
		output           string
		timeout          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this node's set-up for gpu-nri and print each finding with its fix",
		Long: `Check the NVIDIA driver and its version, device nodes against the GPUs found,
the container runtime's NRI configuration (containerd config version 2, 3 or 4,
or CRI-O with crio.conf.d): NRI enabled, socket path, plugin directories,
request timeout; whether the NRI socket accepts connections and, when
metrics.address is configured, whether gpu-nri is registered (/readyz); the hook
binary and ldconfig at the host paths the configuration names; a leftover
nvidia-container-runtime that would inject twice; and the runtime's default
validator (required_plugins for fail-closed, reject_oci_hook_adjustment needing
injection.loader: hookless). Whether required_plugins really fails closed
depends on the runtime's version (containerd 2.2+, CRI-O 1.35+), which doctor
reads with the CRI Version call on the runtime's CRI socket (--cri-socket).

Runtime config paths are host paths, read under host.root (--host-root).
Exit status: 0 when healthy, 1 when any finding is a warning or a failure.`,
		Example: `  gpu-nri doctor
  gpu-nri doctor --config /etc/gpu-nri/config.yaml -o json
  gpu-nri doctor --host-root /host --containerd-config /etc/containerd/config.toml
  gpu-nri doctor --crio-config /etc/crio/crio.conf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			cfg, err := host.load(cmd.Flags())
			if err != nil {
				return err
			}
			invOpts, err := hostsrc.InventoryOptions(cfg, host.hostOptions(base)...)
			if err != nil {
				return err
			}
			r := doctor.Run(cmd.Context(), doctor.Options{Config: cfg, ContainerdConfig: containerd, CRIOConfig: crio,
				Inventory: invOpts, Timeout: timeout, CRISocket: criSocket})
			out := cmd.OutOrStdout()
			if output == "json" {
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				if _, err := out.Write(append(b, '\n')); err != nil {
					return err
				}
			} else if _, err := fmt.Fprint(out, r.Text()); err != nil {
				return err
			}
			if !r.Healthy {
				return errUnhealthy
			}
			return nil
		},
	}
	f := cmd.Flags()
	host.register(f)
	f.StringVar(&containerd, "containerd-config", doctor.DefaultContainerdConfig, "host path of containerd's config.toml")
	f.StringVar(&crio, "crio-config", doctor.DefaultCRIOConfig, "host path of crio.conf (drop-ins from <path>.d)")
	f.StringVar(&criSocket, "cri-socket", "", "host path of the runtime's CRI socket, asked for its version (default "+doctor.DefaultContainerdCRISocket+" or "+doctor.DefaultCRIOCRISocket+")")
	f.StringVarP(&output, "output", "o", "text", "output: text or json")
	f.DurationVar(&timeout, "timeout", 2*time.Second, "timeout of each connection attempt")
	return cmd
}
