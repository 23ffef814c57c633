// Command hookbin is a minimal static stand-in for `gpu-nri hook`, used by
// the hook package's timing test to measure a whole hook process (Go start
// included) the way runc runs it.
package main

import (
	"os"

	"github.com/gpu-nri/gpu-nri/pkg/hook"
)

func main() {
	os.Exit(hook.Main(os.Args[2:], os.Stdin, os.Stderr))
}
