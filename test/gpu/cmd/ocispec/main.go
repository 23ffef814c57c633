// Command ocispec turns `gpu-nri explain --oci -o json` (on stdin) into a
// runc bundle's config.json: the spec gpu-nri's NRI adjustment produced
// (oci.after: NRI's runtime-tools generator applied to explain's minimal
// spec), with the bundle's root file system and the process to run. It is
// the GPU check's way to start a container with gpu-nri's adjustment
// without containerd (test/gpu/check.sh); test code, never shipped.
//
//	gpu-nri explain --oci -o json ... | ocispec -rootfs rootfs -o bundle/config.json -- /vectoradd
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	if err := run(os.Stdin, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ocispec:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, args []string) error {
	fs := flag.NewFlagSet("ocispec", flag.ContinueOnError)
	rootfs := fs.String("rootfs", "rootfs", "the bundle's root file system (relative to the bundle)")
	out := fs.String("o", "config.json", "where config.json is written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("want the process to run after --")
	}
	var rep struct {
		Outcome string `json:"outcome"`
		OCI     *struct {
			After *rspec.Spec `json:"after"`
		} `json:"oci"`
	}
	if err := json.NewDecoder(in).Decode(&rep); err != nil {
		return fmt.Errorf("reading explain's JSON: %w", err)
	}
	if rep.OCI == nil || rep.OCI.After == nil {
		return fmt.Errorf("explain's report has no oci.after (outcome %q; was --oci given?)", rep.Outcome)
	}
	s := rep.OCI.After
	s.Root = &rspec.Root{Path: *rootfs}
	if s.Process == nil {
		s.Process = &rspec.Process{}
	}
	s.Process.Args = fs.Args()
	s.Process.Terminal = false
	if s.Process.Cwd == "" {
		s.Process.Cwd = "/"
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}
