package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/gpu-nri/gpu-nri/pkg/hook"
)

// errHookFailed is returned after hook.Main printed its error.
var errHookFailed = errors.New("hook failed")

func newHookCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hook [flags]",
		Short: "OCI createContainer hook: make injected driver libraries loadable",
		Long: `Run by the container runtime (runc, crun) as an OCI createContainer hook that
gpu-nri's adjustment adds. It reads the container state from stdin, creates the
SONAME and development links of the injected libraries inside the container
root, writes /etc/ld.so.conf.d/00-gpu-nri.conf and regenerates the container's
/etc/ld.so.cache with the HOST's ldconfig in an isolated context. It ignores
its inherited environment and works on file descriptors only; see
docs/threat-model.md. Flags are written by the plugin (pkg/hookproto.Options).`,
		Example:            `  gpu-nri hook --ldconfig /sbin/ldconfig --folder /usr/lib/x86_64-linux-gnu --link libcuda.so.550.54.14::/usr/lib/x86_64-linux-gnu/libcuda.so.1 < state.json`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "--help" || a == "-h" {
					return cmd.Help()
				}
			}
			if code := hook.Main(args, cmd.InOrStdin(), cmd.ErrOrStderr()); code != 0 {
				return errHookFailed
			}
			return nil
		},
	}
}
