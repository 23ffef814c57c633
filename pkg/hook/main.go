package hook

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gpu-nri/gpu-nri/pkg/hookproto"
)

// Deadline bounds one hook run even when the runtime sets no timeout.
const Deadline = 30 * time.Second

// Main is the whole `hook` command: args are the arguments after "hook"
// (argv[2:]), the container state comes on stdin, errors go to stderr. It
// returns the process exit status. Both `gpu-nri hook` and the small
// `gpu-nri-hook` binary run it, so they accept the same argv.
func Main(args []string, stdin io.Reader, stderr io.Writer) int {
	o, err := hookproto.ParseArgs(args)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), Deadline)
		defer cancel()
		err = Run(ctx, stdin, o)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gpu-nri:", err)
		return 1
	}
	return 0
}
