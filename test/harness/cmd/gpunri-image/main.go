// Command gpunri-image writes the gpu-nri image that the Kubernetes suite
// runs (harness.GPUNRIImage: the static binaries, entrypoint, command, user and
// labels of deploy/image/Dockerfile) as an OCI archive, so that
// test/image/run.sh can compare it with the image the Dockerfile builds.
//
//	go run ./test/harness/cmd/gpunri-image -bin bin/gpu-nri -hook bin/gpu-nri-hook -name localhost/gpu-nri:x -out x.tar
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gpu-nri/gpu-nri/test/harness"
)

func main() {
	bin := flag.String("bin", "", "the static gpu-nri binary")
	hook := flag.String("hook", "", "the static gpu-nri-hook binary")
	name := flag.String("name", "", "image name, e.g. localhost/gpu-nri:test")
	out := flag.String("out", "", "OCI archive to write")
	flag.Parse()
	if err := run(*bin, *hook, *name, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gpunri-image:", err)
		os.Exit(1)
	}
}

func run(bin, hook, name, out string) error {
	if bin == "" || hook == "" || name == "" || out == "" {
		return fmt.Errorf("-bin, -hook, -name and -out are required")
	}
	arch, err := harness.HostArch()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gpunri-image")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	im, err := harness.GPUNRIImage(dir, name, bin, hook)
	if err != nil {
		return err
	}
	return harness.WriteOCIArchive(out, arch, im)
}
