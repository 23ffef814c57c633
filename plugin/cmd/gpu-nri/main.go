// Command gpu-nri is the gpu-nri NRI plugin daemon and its tools.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := newRootCmd()
	// Pre-registered mode: the runtime starts <plugin_path>/NN-gpu-nri with
	// no arguments and NRI_PLUGIN_SOCKET set; the configuration arrives
	// through NRI's Configure.
	if len(os.Args) == 1 && os.Getenv("NRI_PLUGIN_SOCKET") != "" {
		root.SetArgs([]string{"run"})
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gpu-nri:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "gpu-nri",
		Short:         "Give containers NVIDIA GPUs through NRI, with stock runc or crun",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(subcommands()...)
	root.CompletionOptions.HiddenDefaultCmd = true
	return root
}
