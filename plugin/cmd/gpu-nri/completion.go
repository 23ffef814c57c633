package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompletionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print the completion script for bash, zsh or fish (cobra's generator). Load it
in the current shell, or install it where the shell looks for completions.`,
		Example: `  source <(gpu-nri completion bash)
  gpu-nri completion bash > /etc/bash_completion.d/gpu-nri
  gpu-nri completion zsh > "${fpath[1]}/_gpu-nri"
  gpu-nri completion fish > ~/.config/fish/completions/gpu-nri.fish`,
		Args:                  cobra.ExactArgs(1),
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			out := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return fmt.Errorf("unsupported shell %q: want bash, zsh or fish", args[0])
		},
	}
}
