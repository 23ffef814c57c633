package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/gpu-nri/gpu-nri/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the default configuration or check a configuration file",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "default",
		Short:   "Print the built-in defaults as YAML (the standalone profile)",
		Example: "  gpu-nri config default > /etc/gpu-nri/config.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := yaml.Marshal(config.Default())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}, &cobra.Command{
		Use:     "check FILE",
		Short:   "Parse and validate a configuration file; print the effective configuration",
		Example: "  gpu-nri config check /etc/gpu-nri/config.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(args[0])
			if err != nil {
				return err
			}
			b, err := yaml.Marshal(c)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "# %s is valid; effective configuration:\n%s", args[0], b)
			return err
		},
	})
	return cmd
}
