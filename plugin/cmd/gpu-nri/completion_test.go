package main

import (
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "__start_gpu-nri", "zsh": "#compdef gpu-nri", "fish": "complete -c gpu-nri"} {
		root := &cobra.Command{Use: "gpu-nri"}
		root.AddCommand(newCompletionCmd(), newCDICmd())
		out, _, err := execute(root, "completion", shell)
		require.NoError(t, err, shell)
		require.Contains(t, out, marker, shell)
	}
	root := &cobra.Command{Use: "gpu-nri", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(newCompletionCmd())
	_, _, err := execute(root, "completion", "tcsh")
	require.ErrorContains(t, err, "unsupported shell")
	_, _, err = execute(root, "completion")
	require.Error(t, err)
}
