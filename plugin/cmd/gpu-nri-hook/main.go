// Command gpu-nri-hook is `gpu-nri hook` alone: a small static binary that a
// runtime starts as gpu-nri's createContainer hook. It accepts the same argv
// as `gpu-nri hook` (argv[1] is "hook"), so injection.hookPath may name
// either binary; this one starts in about a third of the time because it
// links nothing but the hook (see docs/hook.md).
package main

import (
	"fmt"
	"os"

	"github.com/gpu-nri/gpu-nri/pkg/hook"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "hook" {
		fmt.Fprintln(os.Stderr, "usage: gpu-nri-hook hook [flags] < container-state.json (written by gpu-nri into the OCI hook entry)")
		os.Exit(2)
	}
	os.Exit(hook.Main(os.Args[2:], os.Stdin, os.Stderr))
}
