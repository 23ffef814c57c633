package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set through the Makefile's -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
)

func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit and the NRI/CDI versions built in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "gpu-nri %s\ncommit: %s\nnri: %s\ncdi: %s\n", version, commit,
				depVersion("github.com/containerd/nri"), depVersion("tags.cncf.io/container-device-interface"))
			return err
		},
	}
}
