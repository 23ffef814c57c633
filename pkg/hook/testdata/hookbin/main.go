// Command hookbin is a minimal static stand-in for `gpu-nri hook`, used by
// the hook package's timing test to measure a whole hook process (Go start
// included) the way runc runs it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gpu-nri/gpu-nri/pkg/hook"
)

func main() {
	o, err := hook.ParseArgs(os.Args[2:])
	if err == nil {
		err = hook.Run(context.Background(), os.Stdin, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
